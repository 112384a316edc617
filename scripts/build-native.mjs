// Builds the native addons of the data planes (each plane's native/build.mjs decides whether it
// can and must build: Linux only, skipped when current). Run by npm's install step.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
for (const plane of ['proxy', 'packet']) {
  const script = join(root, 'src', 'planes', plane, 'native', 'build.mjs');
  if (!existsSync(script)) continue;
  const r = spawnSync(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
