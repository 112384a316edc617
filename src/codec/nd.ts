// IPv6 neighbour discovery (RFC 4861) for the director answering for its VIPs and resolving
// next hops: parse solicitations/advertisements with the RFC's validity checks, build NA
// (with the target link-layer address option) and NS.

import { copyBytes, rd16, wr16, wr32 } from './bytes.js';
import { internetChecksum, onesSum, pseudoSum6 } from './checksum.js';
import { ETH_ALEN, ETH_P_IPV6, ICMPV6_NDISC_NA, ICMPV6_NDISC_NS, IPPROTO_ICMPV6, IPV6_HLEN } from './constants.js';
import { ethernetHeaderLength, writeEthernetHeader } from './ethernet.js';
import type { AddrWords, PacketInfo } from './info.js';
import { isMulticast6, isUnspecified6, writeAddr6, writeIpv6Fixed } from './ipv6.js';
import { Reason } from './reasons.js';

/** NA flags (first byte after the checksum). */
export const ND_NA_ROUTER = 0x80;
export const ND_NA_SOLICITED = 0x40;
export const ND_NA_OVERRIDE = 0x20;
/** Option types. */
export const ND_OPT_SOURCE_LL_ADDR = 1;
export const ND_OPT_TARGET_LL_ADDR = 2;
/** NS/NA with one 8-byte link-layer address option. */
export const ND_MESSAGE_LEN = 32;
/** ND messages must arrive with hop limit 255 (proof they were not routed). */
export const ND_HOP_LIMIT = 255;

/**
 * Validates a parsed NS or NA (RFC 4861 7.1.1 / 7.1.2: hop limit 255, code 0, length, checksum,
 * target not multicast, options well formed, the unspecified-source and multicast-destination
 * rules) and sets ndTargetOff, ndLinkAddrOff (source LLA of an NS, target LLA of an NA) and
 * ndFlags.
 */
export function parseNeighborDiscovery(buf: Uint8Array, info: PacketInfo): number {
  const l4 = info.l4off;
  if (info.ipVersion !== 6 || info.protocol !== IPPROTO_ICMPV6 || l4 < 0) return Reason.BadNeighborDiscovery;
  const type = info.icmpType;
  if (type !== ICMPV6_NDISC_NS && type !== ICMPV6_NDISC_NA) return Reason.BadNeighborDiscovery;
  const len = info.ipEnd - l4;
  if (info.ttl !== ND_HOP_LIMIT || info.icmpCode !== 0 || len < 24 || info.isFragment) return Reason.BadNeighborDiscovery;
  if (onesSum(buf, l4, len, pseudoSum6(buf, info.saddrOff, info.daddrOff, IPPROTO_ICMPV6, len)) !== 0xffff) return Reason.BadChecksum;
  const target = l4 + 8;
  if (isMulticast6(buf, target)) return Reason.BadNeighborDiscovery;
  const wanted = type === ICMPV6_NDISC_NS ? ND_OPT_SOURCE_LL_ADDR : ND_OPT_TARGET_LL_ADDR;
  let lladdr = -1;
  let p = l4 + 24;
  while (p < info.ipEnd) {
    if (p + 2 > info.ipEnd) return Reason.BadNeighborDiscovery;
    const olen = buf[p + 1] << 3;
    if (olen === 0 || p + olen > info.ipEnd) return Reason.BadNeighborDiscovery;
    if (buf[p] === wanted && olen === 8) lladdr = p + 2;
    p += olen;
  }
  if (type === ICMPV6_NDISC_NS) {
    if (isUnspecified6(buf, info.saddrOff) && (!isSolicitedNodeMulticast(buf, info.daddrOff) || lladdr >= 0)) {
      return Reason.BadNeighborDiscovery;
    }
    info.ndFlags = 0;
  } else {
    info.ndFlags = buf[l4 + 4];
    if (isMulticast6(buf, info.daddrOff) && (info.ndFlags & ND_NA_SOLICITED) !== 0) return Reason.BadNeighborDiscovery;
  }
  info.ndTargetOff = target;
  info.ndLinkAddrOff = lladdr;
  return Reason.Ok;
}

/** ff02::1:ffXX:XXXX */
export function isSolicitedNodeMulticast(buf: Uint8Array, off: number): boolean {
  if (rd16(buf, off) !== 0xff02) return false;
  for (let i = 2; i < 11; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 11] === 1 && buf[off + 12] === 0xff;
}

const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);
const ALL_NODES_ADDR = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

function finishNd(out: Uint8Array, ip: number, type: number, flags: number, lladdrOpt: number, mac: Uint8Array, macOff: number): void {
  const l4 = ip + IPV6_HLEN;
  out[l4] = type;
  out[l4 + 1] = 0;
  wr16(out, l4 + 2, 0);
  wr32(out, l4 + 4, (flags & 0xff) * 0x1000000);
  out[l4 + 24] = lladdrOpt;
  out[l4 + 25] = 1;
  copyBytes(out, l4 + 26, mac, macOff, ETH_ALEN);
  wr16(out, l4 + 2, internetChecksum(out, l4, ND_MESSAGE_LEN, pseudoSum6(out, ip + 8, ip + 24, IPPROTO_ICMPV6, ND_MESSAGE_LEN)));
}

/**
 * Builds a neighbour advertisement for `target` with the target link-layer address option
 * (srcMac). For an unsolicited announcement send to ff02::1 / 33:33:00:00:00:01 with
 * ND_NA_OVERRIDE. Returns the frame length or NoRoom.
 */
export function buildNeighborAdvert(
  out: Uint8Array,
  off: number,
  outEnd: number,
  srcMac: Uint8Array,
  dstMac: Uint8Array,
  src: AddrWords,
  dst: AddrWords,
  target: AddrWords,
  flags: number,
  vlanTci = -1,
): number {
  const h = ethernetHeaderLength(vlanTci);
  const total = h + IPV6_HLEN + ND_MESSAGE_LEN;
  if (off < 0 || off + total > outEnd) return Reason.NoRoom;
  writeEthernetHeader(out, off, dstMac, 0, srcMac, 0, ETH_P_IPV6, vlanTci);
  const ip = off + h;
  writeIpv6Fixed(out, ip, 0, 0, ND_MESSAGE_LEN, IPPROTO_ICMPV6, ND_HOP_LIMIT);
  writeAddr6(out, ip + 8, src);
  writeAddr6(out, ip + 24, dst);
  writeAddr6(out, ip + IPV6_HLEN + 8, target);
  finishNd(out, ip, ICMPV6_NDISC_NA, flags, ND_OPT_TARGET_LL_ADDR, srcMac, 0);
  return total;
}

/**
 * Answers a parsed and validated solicitation (the caller decided it owns the target): the NA
 * comes from the target address and myMac; to the solicitor with the Solicited flag, or to
 * all nodes when the solicitation came from :: (duplicate address detection). `flags` may add
 * ND_NA_ROUTER and ND_NA_OVERRIDE. Returns the frame length.
 */
export function buildNeighborAdvertReply(
  out: Uint8Array,
  off: number,
  outEnd: number,
  ns: Uint8Array,
  info: PacketInfo,
  myMac: Uint8Array,
  flags: number,
): number {
  if (info.icmpType !== ICMPV6_NDISC_NS || info.ndTargetOff < 0) return Reason.BadNeighborDiscovery;
  const h = ethernetHeaderLength(info.vlanTci);
  const total = h + IPV6_HLEN + ND_MESSAGE_LEN;
  if (off < 0 || off + total > outEnd) return Reason.NoRoom;
  const dad = isUnspecified6(ns, info.saddrOff);
  let dstMac: Uint8Array = ALL_NODES_MAC;
  let dstMacOff = 0;
  if (!dad) {
    dstMac = ns;
    // The source link-layer option names the solicitor's MAC; without it, answer the frame's sender.
    dstMacOff = info.ndLinkAddrOff >= 0 ? info.ndLinkAddrOff : info.l2off + 6;
  }
  writeEthernetHeader(out, off, dstMac, dstMacOff, myMac, 0, ETH_P_IPV6, info.vlanTci);
  const ip = off + h;
  writeIpv6Fixed(out, ip, 0, 0, ND_MESSAGE_LEN, IPPROTO_ICMPV6, ND_HOP_LIMIT);
  copyBytes(out, ip + 8, ns, info.ndTargetOff, 16);
  if (dad) copyBytes(out, ip + 24, ALL_NODES_ADDR, 0, 16);
  else copyBytes(out, ip + 24, ns, info.saddrOff, 16);
  copyBytes(out, ip + IPV6_HLEN + 8, ns, info.ndTargetOff, 16);
  const f = dad ? flags & ~ND_NA_SOLICITED : flags | ND_NA_SOLICITED;
  finishNd(out, ip, ICMPV6_NDISC_NA, f, ND_OPT_TARGET_LL_ADDR, myMac, 0);
  return total;
}

/**
 * Builds a multicast neighbour solicitation for `target` (to its solicited-node group
 * ff02::1:ffXX:XXXX, MAC 33:33:ff:XX:XX:XX) with the source link-layer address option.
 */
export function buildNeighborSolicit(
  out: Uint8Array,
  off: number,
  outEnd: number,
  srcMac: Uint8Array,
  src: AddrWords,
  target: AddrWords,
  vlanTci = -1,
): number {
  const h = ethernetHeaderLength(vlanTci);
  const total = h + IPV6_HLEN + ND_MESSAGE_LEN;
  if (off < 0 || off + total > outEnd) return Reason.NoRoom;
  const low24 = target.w3 & 0xffffff;
  writeEthernetHeader(out, off, ALL_NODES_MAC, 0, srcMac, 0, ETH_P_IPV6, vlanTci);
  // Ethernet destination: 33:33 + the low 32 bits of the group address (RFC 2464).
  out[off + 2] = 0xff;
  out[off + 3] = low24 >>> 16;
  out[off + 4] = low24 >>> 8;
  out[off + 5] = low24;
  const ip = off + h;
  writeIpv6Fixed(out, ip, 0, 0, ND_MESSAGE_LEN, IPPROTO_ICMPV6, ND_HOP_LIMIT);
  writeAddr6(out, ip + 8, src);
  wr32(out, ip + 24, 0xff020000);
  wr32(out, ip + 28, 0);
  wr32(out, ip + 32, 1);
  wr32(out, ip + 36, (0xff000000 | low24) >>> 0);
  writeAddr6(out, ip + IPV6_HLEN + 8, target);
  finishNd(out, ip, ICMPV6_NDISC_NS, 0, ND_OPT_SOURCE_LL_ADDR, srcMac, 0);
  return total;
}
