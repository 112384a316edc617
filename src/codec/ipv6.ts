// IPv6 fixed header and the walk over extension headers to the upper layer (as the kernel's
// ipv6_skip_exthdr does: hop-by-hop, routing, fragment, destination options, AH), plus a
// writer and the hop-limit decrement.

import { rd16, rd32, wr16, wr32 } from './bytes.js';
import {
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPV6_HLEN,
} from './constants.js';
import type { AddrWords, PacketInfo } from './info.js';
import { Reason } from './reasons.js';

/** Extension headers walked before giving up (each is at least 8 bytes; this bounds the CPU). */
export const MAX_EXTENSION_HEADERS = 16;

/**
 * Parses the IPv6 header at `off` and walks its extension headers. Sets protocol to the
 * upper-layer protocol and l4off to its header, or l4off = -1 when a fragment header with a
 * non-zero offset means the upper-layer header is in another fragment.
 *
 * Strict mode: payload length must fit the captured bytes (jumbograms are refused) and every
 * extension header must lie inside the packet. Quoted mode (inside an ICMPv6 error): ipEnd is
 * clamped to `end`, and an extension header cut off by the quote just leaves l4off = -1.
 */
export function parseIpv6(buf: Uint8Array, off: number, end: number, info: PacketInfo, quoted = false): number {
  const avail = end - off;
  if (avail < IPV6_HLEN) return Reason.Truncated;
  const b0 = buf[off];
  if (b0 >> 4 !== 6) return Reason.BadVersion;
  const payload = rd16(buf, off + 4);
  let next = buf[off + 6];
  let ipEnd: number;
  if (quoted) {
    ipEnd = off + Math.min(IPV6_HLEN + payload, avail);
  } else {
    if (payload === 0 && next === IPPROTO_HOPOPTS) return Reason.BadTotalLength;
    if (IPV6_HLEN + payload > avail) return Reason.Truncated;
    ipEnd = off + IPV6_HLEN + payload;
  }
  const b1 = buf[off + 1];
  info.l3off = off;
  info.ipVersion = 6;
  info.tos = ((b0 & 0x0f) << 4) | (b1 >> 4);
  info.flowLabel = ((b1 & 0x0f) << 16) | rd16(buf, off + 2);
  info.ttl = buf[off + 7];
  info.ipEnd = ipEnd;
  info.saddrOff = off + 8;
  info.daddrOff = off + 24;
  info.saddr4 = 0;
  info.daddr4 = 0;
  info.ipId = 0;
  info.fragOffset = 0;
  info.moreFragments = false;
  info.dontFragment = false;
  info.fragHeaderOff = -1;
  info.resetL4();

  let p = off + IPV6_HLEN;
  let walked = 0;
  for (;;) {
    if (next === IPPROTO_HOPOPTS || next === IPPROTO_ROUTING || next === IPPROTO_DSTOPTS || next === IPPROTO_AH) {
      if (++walked > MAX_EXTENSION_HEADERS) return Reason.TooManyExtensionHeaders;
      if (p + 2 > ipEnd) return cutOff(info, p, next, off, quoted);
      const len = next === IPPROTO_AH ? (buf[p + 1] + 2) << 2 : (buf[p + 1] + 1) << 3;
      if (p + len > ipEnd) return cutOff(info, p, next, off, quoted);
      next = buf[p];
      p += len;
    } else if (next === IPPROTO_FRAGMENT) {
      if (++walked > MAX_EXTENSION_HEADERS) return Reason.TooManyExtensionHeaders;
      if (p + 8 > ipEnd) return cutOff(info, p, next, off, quoted);
      const fo = rd16(buf, p + 2);
      info.fragHeaderOff = p;
      info.fragOffset = fo & 0xfff8;
      info.moreFragments = (fo & 1) !== 0;
      info.ipId = rd32(buf, p + 4);
      next = buf[p];
      p += 8;
      if (!quoted && info.fragOffset + (ipEnd - p) > 0xffff) return Reason.BadFragment;
      if (info.fragOffset !== 0) {
        // The upper-layer header travels in the first fragment only.
        info.protocol = next;
        info.ipHeaderLen = p - off;
        return Reason.Ok;
      }
    } else {
      break;
    }
  }
  info.protocol = next;
  info.ipHeaderLen = p - off;
  if (next !== IPPROTO_NONE) info.l4off = p;
  return Reason.Ok;
}

function cutOff(info: PacketInfo, p: number, next: number, off: number, quoted: boolean): number {
  if (!quoted) return Reason.BadExtensionHeader;
  info.protocol = next;
  info.ipHeaderLen = p - off;
  return Reason.Ok;
}

/** Forwarding hop-limit decrement: TtlExceeded (untouched) when <= 1, else the new value. */
export function decrementHopLimit6(buf: Uint8Array, info: PacketInfo): number {
  const o = info.l3off + 7;
  const hl = buf[o];
  if (hl <= 1) return Reason.TtlExceeded;
  buf[o] = hl - 1;
  info.ttl = hl - 1;
  return hl - 1;
}

/** Writes a 40-byte IPv6 header. */
export function writeIpv6Header(
  out: Uint8Array,
  off: number,
  trafficClass: number,
  flowLabel: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
  saddr: AddrWords,
  daddr: AddrWords,
): void {
  writeIpv6Fixed(out, off, trafficClass, flowLabel, payloadLength, nextHeader, hopLimit);
  writeAddr6(out, off + 8, saddr);
  writeAddr6(out, off + 24, daddr);
}

/** The first 8 bytes of an IPv6 header; the caller writes the addresses at +8 and +24. */
export function writeIpv6Fixed(
  out: Uint8Array,
  off: number,
  trafficClass: number,
  flowLabel: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
): void {
  out[off] = 0x60 | ((trafficClass >> 4) & 0x0f);
  out[off + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >> 16) & 0x0f);
  wr16(out, off + 2, flowLabel & 0xffff);
  wr16(out, off + 4, payloadLength);
  out[off + 6] = nextHeader;
  out[off + 7] = hopLimit;
}

export function writeAddr6(out: Uint8Array, off: number, a: AddrWords): void {
  wr32(out, off, a.w0 | 0);
  wr32(out, off + 4, a.w1 | 0);
  wr32(out, off + 8, a.w2 | 0);
  wr32(out, off + 12, a.w3 | 0);
}

/** ff00::/8 */
export function isMulticast6(buf: Uint8Array, off: number): boolean {
  return buf[off] === 0xff;
}

/** :: */
export function isUnspecified6(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[off + i] !== 0) return false;
  return true;
}

/** The address at `off` equals the words `a`. */
export function addr6Equals(buf: Uint8Array, off: number, a: AddrWords): boolean {
  return rd32(buf, off) === a.w0 >>> 0 && rd32(buf, off + 4) === a.w1 >>> 0 && rd32(buf, off + 8) === a.w2 >>> 0 && rd32(buf, off + 12) === a.w3 >>> 0;
}
