// ICMP errors the director originates (spec §2.2 port unreachable, §6 time exceeded and
// frag-needed / packet-too-big, §7.3 errors relayed to clients), built as Linux's icmp_send /
// icmp6_send build them: IPv4 quotes the offending packet from its IP header up to a 576-byte
// error (TOS = original TOS bits | precedence internetwork control, TTL 64, DF clear); ICMPv6
// quotes up to the 1280-byte minimum MTU (traffic class 0, hop limit 64).

import { copyBytes, rd16, wr16, wr32 } from './bytes.js';
import { internetChecksum, pseudoSum6 } from './checksum.js';
import {
  DEFAULT_TTL,
  ETH_P_IP,
  ETH_P_IPV6,
  ICMP_DEST_UNREACH,
  ICMP_ERROR_MAX_V4,
  ICMP_ERROR_MAX_V6,
  ICMP_EXC_TTL,
  ICMP_FRAG_NEEDED,
  ICMP_HLEN,
  ICMP_HOST_UNREACH,
  ICMP_MAX_KNOWN_TYPE,
  ICMP_PORT_UNREACH,
  ICMP_TIME_EXCEEDED,
  ICMPV6_ADDR_UNREACH,
  ICMPV6_DEST_UNREACH,
  ICMPV6_EXC_HOPLIMIT,
  ICMPV6_PKT_TOOBIG,
  ICMPV6_PORT_UNREACH,
  ICMPV6_TIME_EXCEED,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPV4_HLEN,
  IPV6_HLEN,
} from './constants.js';
import { ethernetHeaderLength, writeEthernetHeader } from './ethernet.js';
import { isIcmpErrorType } from './icmp.js';
import type { AddrWords, PacketInfo } from './info.js';
import { isLimitedBroadcast4, isMulticast4, isZeroNet4, writeIpv4Header } from './ipv4.js';
import { isMulticast6, isUnspecified6, writeAddr6, writeIpv6Fixed } from './ipv6.js';
import { Reason } from './reasons.js';

/** What to tell the sender; mapped to the ICMPv4 or ICMPv6 type/code by the packet's family. */
export const IcmpErrorKind = {
  /** No real server for the service (ip_vs_leave): v4 3/3, v6 1/4. */
  PortUnreachable: 0,
  /** No route to the destination: v4 3/1, v6 1/3 (address unreachable). */
  HostUnreachable: 1,
  /** DF packet larger than the path MTU: v4 3/4 with the MTU, v6 packet too big (2/0). */
  FragNeeded: 2,
  /** TTL / hop limit exhausted in forwarding: v4 11/0, v6 3/0. */
  TimeExceeded: 3,
} as const;
export type IcmpErrorKind = (typeof IcmpErrorKind)[keyof typeof IcmpErrorKind];

/** Largest part of the offending packet an IPv4 error quotes. */
export const ICMP_QUOTE_MAX_V4 = ICMP_ERROR_MAX_V4 - IPV4_HLEN - ICMP_HLEN;
/** Largest part an ICMPv6 error quotes. */
export const ICMP_QUOTE_MAX_V6 = ICMP_ERROR_MAX_V6 - IPV6_HLEN - ICMP_HLEN;

/**
 * Whether an ICMP error about this parsed packet may be sent (RFC 1122 3.2.2, RFC 4443 2.4,
 * as icmp_send/icmp6_send decide): not about a non-first IPv4 fragment, not about an ICMP
 * error (or unknown ICMPv4 type), not about or to a non-unicast address (ICMPv6 packet too big
 * to a multicast destination is allowed). Ok or IcmpSuppressed.
 */
export function icmpErrorAllowed(buf: Uint8Array, info: PacketInfo, kind: IcmpErrorKind): number {
  if (info.ipVersion === 4) {
    if (info.fragOffset !== 0) return Reason.IcmpSuppressed;
    const d = info.daddr4;
    const s = info.saddr4;
    if (isMulticast4(d) || isLimitedBroadcast4(d)) return Reason.IcmpSuppressed;
    if (isZeroNet4(s) || isMulticast4(s) || isLimitedBroadcast4(s)) return Reason.IcmpSuppressed;
    if (info.protocol === IPPROTO_ICMP) {
      if (info.l4off < 0 || info.l4off >= info.ipEnd) return Reason.IcmpSuppressed;
      const type = buf[info.l4off];
      if (type > ICMP_MAX_KNOWN_TYPE || isIcmpErrorType(4, type)) return Reason.IcmpSuppressed;
    }
    return Reason.Ok;
  }
  if (info.ipVersion === 6) {
    if (isUnspecified6(buf, info.saddrOff) || isMulticast6(buf, info.saddrOff)) return Reason.IcmpSuppressed;
    if (isMulticast6(buf, info.daddrOff) && kind !== IcmpErrorKind.FragNeeded) return Reason.IcmpSuppressed;
    if (info.protocol === IPPROTO_ICMPV6 && info.l4off >= 0) {
      if (info.l4off >= info.ipEnd || isIcmpErrorType(6, buf[info.l4off])) return Reason.IcmpSuppressed;
    }
    return Reason.Ok;
  }
  return Reason.BadVersion;
}

/**
 * Builds the IP packet of an ICMP error about the parsed packet `orig` at out[off]: returns
 * its length, IcmpSuppressed when no error may be sent about it, or NoRoom.
 *
 * `src` is the error's source (Linux: the original destination when it is local, such as a
 * VIP; otherwise the outgoing interface's address); `mtu` is used by FragNeeded only; `ipId`
 * is the IPv4 identification from the caller's counter (ignored for IPv6). The quote is the
 * packet as it is in `orig` now (the kernel quotes after the TTL decrement and before NAT).
 */
export function buildIcmpError(
  out: Uint8Array,
  off: number,
  outEnd: number,
  orig: Uint8Array,
  info: PacketInfo,
  kind: IcmpErrorKind,
  mtu: number,
  src: AddrWords,
  ipId: number,
): number {
  const allowed = icmpErrorAllowed(orig, info, kind);
  if (allowed < 0) return allowed;
  const origLen = info.ipEnd - info.l3off;
  if (info.ipVersion === 4) {
    const quote = Math.min(origLen, ICMP_QUOTE_MAX_V4);
    const total = IPV4_HLEN + ICMP_HLEN + quote;
    if (off < 0 || off + total > outEnd) return Reason.NoRoom;
    let type = ICMP_DEST_UNREACH;
    let code = ICMP_PORT_UNREACH;
    let rest = 0;
    if (kind === IcmpErrorKind.HostUnreachable) code = ICMP_HOST_UNREACH;
    else if (kind === IcmpErrorKind.FragNeeded) {
      code = ICMP_FRAG_NEEDED;
      rest = mtu & 0xffff;
    } else if (kind === IcmpErrorKind.TimeExceeded) {
      type = ICMP_TIME_EXCEEDED;
      code = ICMP_EXC_TTL;
    }
    const l4 = off + IPV4_HLEN;
    copyBytes(out, l4 + ICMP_HLEN, orig, info.l3off, quote);
    writeIpv4Header(out, off, (info.tos & 0x1e) | 0xc0, total, ipId, 0, DEFAULT_TTL, IPPROTO_ICMP, src.w0 | 0, info.saddr4 | 0);
    out[l4] = type;
    out[l4 + 1] = code;
    wr16(out, l4 + 2, 0);
    wr32(out, l4 + 4, rest);
    wr16(out, l4 + 2, internetChecksum(out, l4, ICMP_HLEN + quote));
    return total;
  }
  const quote = Math.min(origLen, ICMP_QUOTE_MAX_V6);
  const total = IPV6_HLEN + ICMP_HLEN + quote;
  if (off < 0 || off + total > outEnd) return Reason.NoRoom;
  let type = ICMPV6_DEST_UNREACH;
  let code = ICMPV6_PORT_UNREACH;
  let rest = 0;
  if (kind === IcmpErrorKind.HostUnreachable) code = ICMPV6_ADDR_UNREACH;
  else if (kind === IcmpErrorKind.FragNeeded) {
    type = ICMPV6_PKT_TOOBIG;
    code = 0;
    rest = mtu >>> 0;
  } else if (kind === IcmpErrorKind.TimeExceeded) {
    type = ICMPV6_TIME_EXCEED;
    code = ICMPV6_EXC_HOPLIMIT;
  }
  const l4 = off + IPV6_HLEN;
  copyBytes(out, l4 + ICMP_HLEN, orig, info.l3off, quote);
  // Destination = the original source; copied before the source is written (the error may be
  // built over the offending packet itself).
  copyBytes(out, off + 24, orig, info.saddrOff, 16);
  writeIpv6Fixed(out, off, 0, 0, ICMP_HLEN + quote, IPPROTO_ICMPV6, DEFAULT_TTL);
  writeAddr6(out, off + 8, src);
  out[l4] = type;
  out[l4 + 1] = code;
  wr16(out, l4 + 2, 0);
  wr32(out, l4 + 4, rest);
  const len = ICMP_HLEN + quote;
  wr16(out, l4 + 2, internetChecksum(out, l4, len, pseudoSum6(out, off + 8, off + 24, IPPROTO_ICMPV6, len)));
  return total;
}

/**
 * The same error as a whole Ethernet frame back to the sender of `orig` on its link: to the
 * frame's source MAC, from myMac, on the same VLAN. Returns the frame length.
 */
export function buildIcmpErrorFrame(
  out: Uint8Array,
  off: number,
  outEnd: number,
  orig: Uint8Array,
  info: PacketInfo,
  kind: IcmpErrorKind,
  mtu: number,
  src: AddrWords,
  ipId: number,
  myMac: Uint8Array,
): number {
  if (info.l2off < 0) return Reason.Unsupported;
  const h = ethernetHeaderLength(info.vlanTci);
  if (off < 0 || off + h > outEnd) return Reason.NoRoom;
  // Read the sender MAC before the IP builder may reuse the same memory.
  const srcMacOff = info.l2off + 6;
  const macHi = rd16(orig, srcMacOff);
  const macLo = ((orig[srcMacOff + 2] << 24) | (orig[srcMacOff + 3] << 16) | (orig[srcMacOff + 4] << 8) | orig[srcMacOff + 5]) >>> 0;
  const n = buildIcmpError(out, off + h, outEnd, orig, info, kind, mtu, src, ipId);
  if (n < 0) return n;
  writeEthernetHeader(out, off, myMac, 0, myMac, 0, info.ipVersion === 4 ? ETH_P_IP : ETH_P_IPV6, info.vlanTci);
  wr16(out, off, macHi);
  wr32(out, off + 2, macLo);
  return h + n;
}
