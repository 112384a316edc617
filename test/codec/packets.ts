// Test-side packet construction, written independently of src/codec (plain arrays, a naive
// checksum) so the codec is checked against something it did not compute itself.

import { IpAddr } from '../../src/core/addr.js';

export const MAC_CLIENT = Uint8Array.from([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
export const MAC_DIRECTOR = Uint8Array.from([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
export const MAC_SERVER = Uint8Array.from([0x02, 0x00, 0x00, 0x00, 0x00, 0x03]);

export function v4(text: string): number {
  return IpAddr.parse(text).w0;
}

export function addr(text: string): IpAddr {
  return IpAddr.parse(text);
}

export function v6bytes(text: string): number[] {
  return Array.from(IpAddr.parse(text).toBytes());
}

function u16(n: number): number[] {
  return [(n >>> 8) & 255, n & 255];
}

function u32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** Naive ones' complement sum, folded (not complemented). */
export function refSum(bytes: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += bytes[i] * 256 + (i + 1 < bytes.length ? bytes[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

export function refChecksum(bytes: ArrayLike<number>): number {
  return ~refSum(bytes) & 0xffff;
}

export interface L4Spec {
  proto: number;
  /** Transport header + payload with the checksum field zero. */
  bytes: number[];
  /** Offset of the 16-bit checksum field in `bytes`, -1 for none (ICMPv4 has no pseudo-header; see `pseudo`). */
  checkAt: number;
  /** Whether the checksum covers a pseudo-header (TCP, UDP, ICMPv6). */
  pseudo: boolean;
  /** Leave the UDP checksum 0. */
  zeroChecksum?: boolean;
}

export function tcp(sport: number, dport: number, opts: { seq?: number; ack?: number; flags?: number; payload?: number[]; options?: number[] } = {}): L4Spec {
  const options = opts.options ?? [];
  const doff = 5 + options.length / 4;
  const bytes = [
    ...u16(sport),
    ...u16(dport),
    ...u32(opts.seq ?? 1000),
    ...u32(opts.ack ?? 0),
    doff << 4,
    opts.flags ?? 0x02,
    ...u16(65535),
    0,
    0,
    0,
    0,
    ...options,
    ...(opts.payload ?? []),
  ];
  return { proto: 6, bytes, checkAt: 16, pseudo: true };
}

export function udp(sport: number, dport: number, payload: number[] = [], zeroChecksum = false): L4Spec {
  const bytes = [...u16(sport), ...u16(dport), ...u16(8 + payload.length), 0, 0, ...payload];
  return { proto: 17, bytes, checkAt: 6, pseudo: true, zeroChecksum };
}

export function icmpEcho(v6: boolean, id: number, seq: number, payload: number[] = []): L4Spec {
  const bytes = [v6 ? 128 : 8, 0, 0, 0, ...u16(id), ...u16(seq), ...payload];
  return { proto: v6 ? 58 : 1, bytes, checkAt: 2, pseudo: v6 };
}

/** SCTP common header + one DATA chunk; CRC32c filled by `finishSctp`. */
export function sctp(sport: number, dport: number, payload: number[] = [1, 2, 3, 4]): L4Spec {
  const chunkLen = 16 + payload.length;
  const pad = (4 - (chunkLen % 4)) % 4;
  const bytes = [
    ...u16(sport),
    ...u16(dport),
    ...u32(0x11223344),
    0,
    0,
    0,
    0,
    0,
    3,
    ...u16(chunkLen),
    ...u32(1),
    ...u16(0),
    ...u16(0),
    ...u32(0),
    ...payload,
    ...new Array(pad).fill(0),
  ];
  return { proto: 132, bytes, checkAt: -1, pseudo: false };
}

function refCrc32c(bytes: number[]): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (~c >>> 0) >>> 0;
}

function finishL4(l4: L4Spec, pseudo: number[]): number[] {
  const b = [...l4.bytes];
  if (l4.proto === 132) {
    const crc = refCrc32c(b);
    b[8] = crc & 255;
    b[9] = (crc >>> 8) & 255;
    b[10] = (crc >>> 16) & 255;
    b[11] = crc >>> 24;
    return b;
  }
  if (l4.checkAt < 0 || l4.zeroChecksum) return b;
  let c = refChecksum(l4.pseudo ? [...pseudo, ...b] : b);
  if (l4.proto === 17 && c === 0) c = 0xffff;
  b[l4.checkAt] = c >>> 8;
  b[l4.checkAt + 1] = c & 255;
  return b;
}

export interface Ip4Opts {
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  /** Flags + fragment offset word (default DF). */
  frag?: number;
  options?: number[];
}

export function ipv4(o: Ip4Opts, l4: L4Spec | { proto: number; raw: number[] }): number[] {
  const opts = o.options ?? [];
  const ihl = 5 + opts.length / 4;
  const src = u32(v4(o.src));
  const dst = u32(v4(o.dst));
  let payload: number[];
  if ('raw' in l4) payload = l4.raw;
  else payload = finishL4(l4, [...src, ...dst, 0, l4.proto, ...u16(l4.bytes.length)]);
  const total = ihl * 4 + payload.length;
  const h = [0x40 | ihl, o.tos ?? 0, ...u16(total), ...u16(o.id ?? 0x1234), ...u16(o.frag ?? 0x4000), o.ttl ?? 64, l4.proto, 0, 0, ...src, ...dst, ...opts];
  const c = refChecksum(h);
  h[10] = c >>> 8;
  h[11] = c & 255;
  return [...h, ...payload];
}

export interface Ip6Opts {
  src: string;
  dst: string;
  hop?: number;
  tclass?: number;
  flow?: number;
  /** Extension headers in order: next-header value and body (without the next-header byte). */
  ext?: { type: number; body: number[] }[];
}

export function ipv6(o: Ip6Opts, l4: L4Spec | { proto: number; raw: number[] }): number[] {
  const src = v6bytes(o.src);
  const dst = v6bytes(o.dst);
  let payload: number[];
  if ('raw' in l4) payload = l4.raw;
  else payload = finishL4(l4, [...src, ...dst, ...u32(l4.bytes.length), 0, 0, 0, l4.proto]);
  const ext = o.ext ?? [];
  const extBytes: number[] = [];
  for (let i = 0; i < ext.length; i++) {
    const next = i + 1 < ext.length ? ext[i + 1]!.type : l4.proto;
    extBytes.push(next, ...ext[i]!.body);
  }
  const first = ext.length ? ext[0]!.type : l4.proto;
  const tc = o.tclass ?? 0;
  const flow = o.flow ?? 0;
  const h = [0x60 | (tc >> 4), ((tc & 15) << 4) | ((flow >> 16) & 15), ...u16(flow & 0xffff), ...u16(extBytes.length + payload.length), first, o.hop ?? 64, ...src, ...dst];
  return [...h, ...extBytes, ...payload];
}

/** Hop-by-hop / destination options header body with PadN to `len` bytes total (multiple of 8). */
export function optionsExt(type: number, len = 8): { type: number; body: number[] } {
  const body = [len / 8 - 1, 1, len - 4, ...new Array(len - 4).fill(0)];
  return { type, body };
}

export function fragmentExt(offset: number, more: boolean, id: number): { type: number; body: number[] } {
  return { type: 44, body: [0, ...u16((offset & 0xfff8) | (more ? 1 : 0)), ...u32(id)] };
}

export function ether(dst: Uint8Array, src: Uint8Array, type: number, payload: number[], vlan = -1): Uint8Array {
  const h = [...dst, ...src];
  if (vlan >= 0) h.push(0x81, 0x00, ...u16(vlan));
  h.push(...u16(type));
  return Uint8Array.from([...h, ...payload]);
}

export function frame4(o: Ip4Opts, l4: L4Spec, vlan = -1): Uint8Array {
  return ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4(o, l4), vlan);
}

export function frame6(o: Ip6Opts, l4: L4Spec, vlan = -1): Uint8Array {
  return ether(MAC_DIRECTOR, MAC_CLIENT, 0x86dd, ipv6(o, l4), vlan);
}

/** A copy of `frame` at offset `at` of a bigger buffer filled with `fill` (headroom, junk after). */
export function placed(frame: Uint8Array, at: number, extra = 64, fill = 0xa5): Uint8Array {
  const b = new Uint8Array(at + frame.length + extra).fill(fill);
  b.set(frame, at);
  return b;
}

export function hex(b: Uint8Array, off = 0, len = b.length - off): string {
  return Buffer.from(b.buffer, b.byteOffset + off, len).toString('hex');
}

/** An ICMP/ICMPv6 message with arbitrary type, code, 32-bit rest and body (quoted packet). */
export function icmpMessage(v6: boolean, type: number, code: number, rest: number, body: number[]): L4Spec {
  return { proto: v6 ? 58 : 1, bytes: [type, code, 0, 0, ...u32(rest), ...body], checkAt: 2, pseudo: v6 };
}
