// Installs dependencies and builds dist/ when they are missing or stale, so that
// `npm start` and `npm test` work on a fresh clone with nothing installed by hand.
// Uses only Node's standard library: it runs before node_modules exists.
import { execSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const run = (cmd) => execSync(cmd, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  console.error('tsvs: installing dependencies (npm ci)…');
  run('npm ci --no-audit --no-fund');
} else if (!existsSync(join(root, 'dist', 'index.js')) || statSync(join(root, 'dist', 'index.js')).mtimeMs < newestMtime(join(root, 'src'))) {
  console.error('tsvs: building dist/ (tsc)…');
  run('npm run --silent build');
}

// Native addons: rebuilt when their sources changed (a no-op when they are current).
run('node scripts/build-native.mjs');
