// IPv4 header: validated parse (the checks ip_rcv makes before netfilter would see the
// packet), header checksum, TTL decrement with an incremental checksum update, and a writer.

import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { checksumValid, csumReplace16, internetChecksum } from './checksum.js';
import { IP_DF, IP_MF, IP_OFFSET, IPV4_HLEN } from './constants.js';
import type { PacketInfo } from './info.js';
import { Reason } from './reasons.js';

/**
 * Parses the IPv4 header at `off`, the packet ending at most at `end`.
 *
 * Strict mode (a received packet): IHL >= 5, header checksum good, IHL*4 <= total length <=
 * captured length, and no fragment reaching past 65535 bytes. ipEnd is off + total length,
 * so Ethernet padding is excluded.
 *
 * Quoted mode (the packet inside an ICMP error, or a tunnel packet quoted by one): only the
 * header itself must be complete; the total length may exceed what was quoted and ipEnd is
 * clamped to `end`; the checksum is not checked.
 */
export function parseIpv4(buf: Uint8Array, off: number, end: number, info: PacketInfo, quoted = false): number {
  const avail = end - off;
  if (avail < IPV4_HLEN) return Reason.Truncated;
  const b0 = buf[off];
  if (b0 >> 4 !== 4) return Reason.BadVersion;
  const hl = (b0 & 0x0f) << 2;
  if (hl < IPV4_HLEN) return Reason.BadHeaderLength;
  if (hl > avail) return Reason.Truncated;
  const total = rd16(buf, off + 2);
  const frag = rd16(buf, off + 6);
  const fragOffset = (frag & IP_OFFSET) << 3;
  let ipEnd: number;
  if (quoted) {
    ipEnd = off + (total < hl ? hl : Math.min(total, avail));
  } else {
    if (total < hl) return Reason.BadTotalLength;
    if (total > avail) return Reason.Truncated;
    if (!checksumValid(buf, off, hl)) return Reason.BadChecksum;
    if (fragOffset + total - hl > 0xffff) return Reason.BadFragment;
    ipEnd = off + total;
  }
  info.l3off = off;
  info.ipVersion = 4;
  info.ipHeaderLen = hl;
  info.ipEnd = ipEnd;
  info.tos = buf[off + 1];
  info.flowLabel = 0;
  info.ipId = rd16(buf, off + 4);
  info.fragOffset = fragOffset;
  info.moreFragments = (frag & IP_MF) !== 0;
  info.dontFragment = (frag & IP_DF) !== 0;
  info.fragHeaderOff = -1;
  info.ttl = buf[off + 8];
  info.protocol = buf[off + 9];
  info.saddrOff = off + 12;
  info.daddrOff = off + 16;
  info.saddr4 = rd32(buf, off + 12);
  info.daddr4 = rd32(buf, off + 16);
  info.resetL4();
  if (fragOffset === 0) info.l4off = off + hl;
  return Reason.Ok;
}

/** Header checksum field value for the header at `off` (the field is treated as zero). */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number): number {
  const hl = (buf[off] & 0x0f) << 2;
  return internetChecksum(buf, off, hl, 0xffff - rd16(buf, off + 10));
}

/** Recomputes and stores the header checksum (ip_send_check). */
export function setIpv4HeaderChecksum(buf: Uint8Array, off: number): void {
  wr16(buf, off + 10, 0);
  wr16(buf, off + 10, internetChecksum(buf, off, (buf[off] & 0x0f) << 2));
}

export function verifyIpv4HeaderChecksum(buf: Uint8Array, off: number): boolean {
  return checksumValid(buf, off, (buf[off] & 0x0f) << 2);
}

/**
 * Forwarding TTL decrement: returns TtlExceeded (packet untouched) when TTL <= 1, else the new
 * TTL, with the header checksum updated incrementally (ip_decrease_ttl).
 */
export function decrementTtl4(buf: Uint8Array, info: PacketInfo): number {
  const o = info.l3off;
  const ttl = buf[o + 8];
  if (ttl <= 1) return Reason.TtlExceeded;
  const proto = buf[o + 9];
  buf[o + 8] = ttl - 1;
  wr16(buf, o + 10, csumReplace16(rd16(buf, o + 10), (ttl << 8) | proto, ((ttl - 1) << 8) | proto));
  info.ttl = ttl - 1;
  return ttl - 1;
}

/** Sets the TTL keeping the header checksum right (incremental update). */
export function setTtl4(buf: Uint8Array, l3off: number, ttl: number): void {
  const old = rd16(buf, l3off + 8);
  const now = (ttl << 8) | (old & 0xff);
  buf[l3off + 8] = ttl;
  wr16(buf, l3off + 10, csumReplace16(rd16(buf, l3off + 10), old, now));
}

/**
 * Writes a 20-byte IPv4 header (no options) with its checksum. `fragField` is the flags and
 * fragment-offset word (IP_DF or 0 for packets the director originates).
 */
export function writeIpv4Header(
  out: Uint8Array,
  off: number,
  tos: number,
  totalLength: number,
  id: number,
  fragField: number,
  ttl: number,
  protocol: number,
  saddr: number,
  daddr: number,
): void {
  out[off] = 0x45;
  out[off + 1] = tos;
  wr16(out, off + 2, totalLength);
  wr16(out, off + 4, id);
  wr16(out, off + 6, fragField);
  out[off + 8] = ttl;
  out[off + 9] = protocol;
  wr16(out, off + 10, 0);
  wr32(out, off + 12, saddr);
  wr32(out, off + 16, daddr);
  wr16(out, off + 10, internetChecksum(out, off, IPV4_HLEN));
}

/** 224.0.0.0/4 */
export function isMulticast4(a: number): boolean {
  return a >>> 28 === 0xe;
}

/** 255.255.255.255 (subnet broadcasts depend on the interface; the caller knows those). */
export function isLimitedBroadcast4(a: number): boolean {
  return a >>> 0 === 0xffffffff;
}

/** 0.0.0.0/8 ("this network", never a valid source or destination on the wire). */
export function isZeroNet4(a: number): boolean {
  return a >>> 24 === 0;
}
