// Builds the proxy relay addon (binding.gyp beside this file); see scripts/native-addon.mjs.
// Run by npm's install step (scripts/build-native.mjs), so a fresh clone gets it with `npm ci`.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../../../scripts/native-addon.mjs';

buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  target: 'tsvs_proxy',
  sources: ['relay.cc', 'binding.gyp'],
  label: 'proxy relay addon',
  linuxOnlyWhy: 'epoll/splice are Linux only',
  fallback: 'the proxy plane will use its JS relay',
});
