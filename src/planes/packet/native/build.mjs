// Builds the frame I/O addon (binding.gyp beside this file); see scripts/native-addon.mjs.
// Run by npm's install step (scripts/build-native.mjs), so a fresh clone gets it with `npm ci`.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../../../scripts/native-addon.mjs';

buildAddon({
  dir: dirname(fileURLToPath(import.meta.url)),
  target: 'tsvs_frameio',
  sources: ['frame_socket.cc', 'binding.gyp'],
  label: 'frame I/O addon',
  linuxOnlyWhy: 'AF_PACKET is Linux only',
  fallback: 'the packet data plane will be unavailable',
});
