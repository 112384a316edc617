// A minimal pcap writer and a tshark runner for witness tests.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LINKTYPE_ETHERNET = 1;

/** Classic pcap (microsecond timestamps), one record per frame, timestamps 1 s apart. */
export function pcapFile(frames: Uint8Array[], linktype = LINKTYPE_ETHERNET): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(linktype, 20);
  const parts: Buffer[] = [header];
  frames.forEach((f, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000 + i, 0);
    rec.writeUInt32LE(f.length, 8);
    rec.writeUInt32LE(f.length, 12);
    parts.push(rec, Buffer.from(f));
  });
  return Buffer.concat(parts);
}

/** null when tshark can run here, else why not. */
export function tsharkUnavailable(): string | null {
  const r = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return 'tshark not installed (DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)';
  }
  return null;
}

const CHECKSUM_PREFS = [
  '-o',
  'ip.check_checksum:TRUE',
  '-o',
  'tcp.check_checksum:TRUE',
  '-o',
  'udp.check_checksum:TRUE',
  '-o',
  'sctp.checksum:CRC-32C',
];

/**
 * Runs tshark over the frames and returns, per frame, the requested fields; a field occurring
 * several times (inner and outer headers) gives its values joined by ','.
 */
export function tsharkFields(frames: Uint8Array[], fields: string[], extra: string[] = []): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-codec-'));
  const file = join(dir, 'frames.pcap');
  writeFileSync(file, pcapFile(frames));
  const args = ['-r', file, '-n', ...CHECKSUM_PREFS, ...extra, '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,'];
  for (const f of fields) args.push('-e', f);
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tshark failed (${r.status}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('|'));
}
