// Builds the proxy relay addon (binding.gyp beside this file) with node-gyp.
// Run by package.json's install script, so a fresh clone gets it with `npm ci`.
//
// - Only on Linux (epoll, splice, eventfd); elsewhere it says so and exits 0: the proxy plane
//   then uses its pure-JavaScript relay.
// - Skips the build when build/Release/tsvs_proxy.node is newer than its sources (--force rebuilds).
// - Uses the Node headers installed beside the running node when present (--nodedir), so no
//   header download is needed; otherwise node-gyp's usual lookup applies.
// - A failed build is a warning (the JS relay takes over) unless TSVS_REQUIRE_NATIVE=1 or CI is
//   set, where it fails the install: a CI that silently tested only the JS relay would hide it.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'build', 'Release', 'tsvs_proxy.node');
const sources = ['relay.cc', 'binding.gyp'].map((f) => join(here, f));
const force = process.argv.includes('--force');
const strict = process.env.TSVS_REQUIRE_NATIVE === '1' || Boolean(process.env.CI);

function done(code, msg) {
  if (msg) console.error(`tsvs proxy relay addon: ${msg}`);
  process.exit(code);
}

if (process.platform !== 'linux') done(0, `not built on ${process.platform} (epoll/splice are Linux only); the JS relay is used`);
if (process.env.TSVS_SKIP_NATIVE === '1') done(0, 'skipped (TSVS_SKIP_NATIVE=1)');

if (!force && existsSync(output)) {
  const built = statSync(output).mtimeMs;
  if (sources.every((s) => statSync(s).mtimeMs <= built)) done(0);
}

// npm hands lifecycle scripts the path of its bundled node-gyp; the devDependency is the fallback.
const require = createRequire(import.meta.url);
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    gyp = undefined;
  }
}
if (!gyp) done(strict ? 1 : 0, 'node-gyp not found; the proxy plane will use its JS relay');

const args = [gyp, 'rebuild', '-C', here];
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  const tail = (r.stderr ?? '').split('\n').filter((l) => !l.startsWith('gyp info')).slice(-25).join('\n');
  done(strict ? 1 : 0, `build failed; the proxy plane will use its JS relay\n${tail}`);
}
done(0, `built ${output}`);
