// Builds one native addon (the binding.gyp in `dir`) with node-gyp: what each plane's
// native/build.mjs calls.
//
// - Only on Linux; elsewhere it says so and exits 0 (the plane has a fallback or is optional).
// - Skips the build when the output is newer than its sources (--force rebuilds).
// - Uses the Node headers installed beside the running node when present (--nodedir), so no
//   header download is needed; otherwise node-gyp's usual lookup applies.
// - A failed build is a warning unless TSVS_REQUIRE_NATIVE=1 or CI is set, where it fails the
//   install: a CI that silently skipped the native path would hide it.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * @param {{ dir: string, target: string, sources: string[], label: string, linuxOnlyWhy: string, fallback: string }} a
 *   target: the .node name; label: how messages name the addon; fallback: what happens without it.
 */
export function buildAddon({ dir, target, sources, label, linuxOnlyWhy, fallback }) {
  const output = join(dir, 'build', 'Release', `${target}.node`);
  const force = process.argv.includes('--force');
  const strict = process.env.TSVS_REQUIRE_NATIVE === '1' || Boolean(process.env.CI);
  const done = (code, msg) => {
    if (msg) console.error(`tsvs ${label}: ${msg}`);
    process.exit(code);
  };

  if (process.platform !== 'linux') done(0, `not built on ${process.platform} (${linuxOnlyWhy}); ${fallback}`);
  if (process.env.TSVS_SKIP_NATIVE === '1') done(0, 'skipped (TSVS_SKIP_NATIVE=1)');
  if (!force && existsSync(output)) {
    const built = statSync(output).mtimeMs;
    if (sources.every((s) => statSync(join(dir, s)).mtimeMs <= built)) done(0);
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
  if (!gyp) done(strict ? 1 : 0, `node-gyp not found; ${fallback}`);

  const args = [gyp, 'rebuild', '-C', dir];
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    const tail = (r.stderr ?? '').split('\n').filter((l) => !l.startsWith('gyp info')).slice(-25).join('\n');
    done(strict ? 1 : 0, `build failed; ${fallback}\n${tail}`);
  }
  done(0, `built ${output}`);
}
