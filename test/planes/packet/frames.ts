// Hand-built Ethernet/IPv4/IPv6/UDP frames for frame I/O tests (complete checksums, so the
// receiving kernel accepts them). Test-only: the codec module owns this for the plane.

import { isIPv4, isIPv6 } from 'node:net';

export function macBytes(text: string): Buffer {
  return Buffer.from(text.replaceAll(':', ''), 'hex');
}

export function v4Bytes(text: string): Buffer {
  if (!isIPv4(text)) throw new Error(`not IPv4: ${text}`);
  return Buffer.from(text.split('.').map(Number));
}

export function v6Bytes(text: string): Buffer {
  if (!isIPv6(text)) throw new Error(`not IPv6: ${text}`);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return b;
}

function sum16(buf: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i < end; i += 2) acc += (buf[i]! << 8) | (i + 1 < end ? buf[i + 1]! : 0);
  return acc;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export interface UdpFrame {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  /** 4 or 16 bytes; both the same family. */
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  payload: Uint8Array;
}

/** Writes the frame at buf[off]; returns its length. */
export function buildUdpFrame(buf: Buffer, off: number, f: UdpFrame): number {
  const v6 = f.src.length === 16;
  buf.set(f.dstMac, off);
  buf.set(f.srcMac, off + 6);
  buf.writeUInt16BE(v6 ? 0x86dd : 0x0800, off + 12);
  const ip = off + 14;
  const udpLen = 8 + f.payload.length;
  const ipLen = v6 ? 40 : 20;
  if (v6) {
    buf.writeUInt32BE(0x60000000, ip);
    buf.writeUInt16BE(udpLen, ip + 4);
    buf[ip + 6] = 17;
    buf[ip + 7] = 64;
    buf.set(f.src, ip + 8);
    buf.set(f.dst, ip + 24);
  } else {
    buf[ip] = 0x45;
    buf[ip + 1] = 0;
    buf.writeUInt16BE(20 + udpLen, ip + 2);
    buf.writeUInt32BE(0x00004000, ip + 4); // id 0, don't fragment
    buf[ip + 8] = 64;
    buf[ip + 9] = 17;
    buf.writeUInt16BE(0, ip + 10);
    buf.set(f.src, ip + 12);
    buf.set(f.dst, ip + 16);
    buf.writeUInt16BE(~fold(sum16(buf, ip, ip + 20)) & 0xffff, ip + 10);
  }
  const udp = ip + ipLen;
  buf.writeUInt16BE(f.sport, udp);
  buf.writeUInt16BE(f.dport, udp + 2);
  buf.writeUInt16BE(udpLen, udp + 4);
  buf.writeUInt16BE(0, udp + 6);
  buf.set(f.payload, udp + 8);
  // pseudo-header: addresses, protocol, UDP length
  let s = sum16(f.src, 0, f.src.length) + sum16(f.dst, 0, f.dst.length) + 17 + udpLen;
  s = fold(sum16(buf, udp, udp + udpLen, s));
  buf.writeUInt16BE(~s & 0xffff || 0xffff, udp + 6);
  return 14 + ipLen + udpLen;
}
