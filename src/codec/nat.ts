// NAT rewrites for the masquerading transmitter (spec §6.1) and ICMP error translation
// (§7.1, §7.2), in place on a parsed packet.
//
// L4 checksums follow ip_vs_proto_{tcp,udp,sctp}.c:
// - TCP: incremental RFC 1624 update for address (pseudo-header) and port.
// - UDP: incremental when the checksum is present; when it is 0 (absent, IPv4) the full
//   checksum is computed; in both cases a result of 0 is sent as 0xffff.
// - SCTP: port rewritten and CRC32c recomputed over the packet.
// - CHECKSUM_PARTIAL (frames from the local stack, AF_PACKET TP_STATUS_CSUMNOTREADY): the field
//   holds the uncomplemented pseudo-header sum the NIC will finish; only the address change is
//   folded in, uncomplemented.
// For a non-first fragment only the IP header changes (the L4 header is in the first one);
// a first fragment gets the incremental update, which stays right for the whole datagram.

import { rd16, rd32s, wr16, wr32 } from './bytes.js';
import {
  csumAdjust,
  csumAdjustPartial,
  crc32c,
  diff16,
  diff32,
  internetChecksum,
  onesSum,
  pseudoSum4,
  pseudoSum6,
} from './checksum.js';
import { IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, SCTP_HLEN, TCP_HLEN, UDP_HLEN } from './constants.js';
import { ICMP_CHECK } from './icmp.js';
import type { AddrWords, PacketInfo } from './info.js';
import { setIpv4HeaderChecksum } from './ipv4.js';
import { Reason } from './reasons.js';
import { TCP_CHECK } from './tcp.js';
import { SCTP_CHECK, UDP_CHECK } from './udp.js';

const PORT_SOURCE = 0;
const PORT_DEST = 2;

// IPv4 addresses are accepted signed or unsigned (only the 32 bits count). Callers on the hot
// path pass `addr.w0 | 0`: a small integer crosses a call without being boxed, while an
// unsigned value above 2^31 is a double that may be.

/** DNAT (client -> real server): IPv4 destination address and L4 destination port. */
export function natRewriteDest4(buf: Uint8Array, info: PacketInfo, daddr: number, dport: number, csumPartial = false): number {
  const diff = replaceAddr4(buf, info, info.daddrOff, daddr);
  info.daddr4 = daddr >>> 0;
  return rewriteL4(buf, info, diff, PORT_DEST, dport, csumPartial);
}

/** SNAT (real server -> client): IPv4 source address and L4 source port. */
export function natRewriteSource4(buf: Uint8Array, info: PacketInfo, saddr: number, sport: number, csumPartial = false): number {
  const diff = replaceAddr4(buf, info, info.saddrOff, saddr);
  info.saddr4 = saddr >>> 0;
  return rewriteL4(buf, info, diff, PORT_SOURCE, sport, csumPartial);
}

/** DNAT for IPv6; the new address as four words in network order. */
export function natRewriteDest6(
  buf: Uint8Array,
  info: PacketInfo,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  dport: number,
  csumPartial = false,
): number {
  const diff = replaceAddr6(buf, info.daddrOff, w0, w1, w2, w3);
  return rewriteL4(buf, info, diff, PORT_DEST, dport, csumPartial);
}

/** SNAT for IPv6. */
export function natRewriteSource6(
  buf: Uint8Array,
  info: PacketInfo,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  sport: number,
  csumPartial = false,
): number {
  const diff = replaceAddr6(buf, info.saddrOff, w0, w1, w2, w3);
  return rewriteL4(buf, info, diff, PORT_SOURCE, sport, csumPartial);
}

/** DNAT for either family, the address as a connection entry holds it (core's IpAddr fits). */
export function natRewriteDest(buf: Uint8Array, info: PacketInfo, addr: AddrWords, port: number, csumPartial = false): number {
  if (info.ipVersion === 4) return natRewriteDest4(buf, info, addr.w0 | 0, port, csumPartial);
  if (info.ipVersion === 6) return natRewriteDest6(buf, info, addr.w0 | 0, addr.w1 | 0, addr.w2 | 0, addr.w3 | 0, port, csumPartial);
  return Reason.BadVersion;
}

/** SNAT for either family. */
export function natRewriteSource(buf: Uint8Array, info: PacketInfo, addr: AddrWords, port: number, csumPartial = false): number {
  if (info.ipVersion === 4) return natRewriteSource4(buf, info, addr.w0 | 0, port, csumPartial);
  if (info.ipVersion === 6) return natRewriteSource6(buf, info, addr.w0 | 0, addr.w1 | 0, addr.w2 | 0, addr.w3 | 0, port, csumPartial);
  return Reason.BadVersion;
}

/** Writes the new IPv4 address, fixes the header checksum, returns the pseudo-header diff. */
function replaceAddr4(buf: Uint8Array, info: PacketInfo, at: number, addr: number): number {
  const diff = diff32(rd32s(buf, at), addr);
  wr32(buf, at, addr);
  const c = info.l3off + 10;
  wr16(buf, c, csumAdjust(rd16(buf, c), diff));
  return diff;
}

function replaceAddr6(buf: Uint8Array, at: number, w0: number, w1: number, w2: number, w3: number): number {
  const diff = diff32(rd32s(buf, at), w0) + diff32(rd32s(buf, at + 4), w1) + diff32(rd32s(buf, at + 8), w2) + diff32(rd32s(buf, at + 12), w3);
  wr32(buf, at, w0);
  wr32(buf, at + 4, w1);
  wr32(buf, at + 8, w2);
  wr32(buf, at + 12, w3);
  return diff;
}

/**
 * The L4 half of a NAT rewrite, after the address changed by `addrDiff` (an RFC 1624 term).
 * Expects a packet the parsers accepted, so the transport header is complete; protocols
 * without ports keep their header (ICMPv6 still gets the pseudo-header change).
 */
function rewriteL4(buf: Uint8Array, info: PacketInfo, addrDiff: number, portAt: number, port: number, csumPartial: boolean): number {
  const l4 = info.l4off;
  if (l4 < 0) return Reason.Ok;
  const end = info.ipEnd;
  const proto = info.protocol;
  if (proto === IPPROTO_ICMPV6 && info.ipVersion === 6) {
    // ICMPv6 covers the pseudo-header too (ICMPv4 does not).
    if (l4 + 4 > end) return Reason.Truncated;
    const c = l4 + ICMP_CHECK;
    wr16(buf, c, csumAdjust(rd16(buf, c), addrDiff));
    return Reason.Ok;
  }
  if (proto === IPPROTO_TCP) {
    if (l4 + TCP_HLEN > end) return Reason.Truncated;
    const oldPort = rd16(buf, l4 + portAt);
    wr16(buf, l4 + portAt, port);
    const c = l4 + TCP_CHECK;
    if (csumPartial) wr16(buf, c, csumAdjustPartial(rd16(buf, c), addrDiff));
    else wr16(buf, c, csumAdjust(rd16(buf, c), addrDiff + diff16(oldPort, port)));
  } else if (proto === IPPROTO_UDP) {
    if (l4 + UDP_HLEN > end) return Reason.Truncated;
    const oldPort = rd16(buf, l4 + portAt);
    wr16(buf, l4 + portAt, port);
    const c = l4 + UDP_CHECK;
    const check = rd16(buf, c);
    if (csumPartial) {
      wr16(buf, c, csumAdjustPartial(check, addrDiff));
    } else if (check !== 0) {
      const n = csumAdjust(check, addrDiff + diff16(oldPort, port));
      wr16(buf, c, n === 0 ? 0xffff : n);
    } else if (!info.isFragment) {
      setL4Checksum(buf, info, c);
    }
    // else: the first fragment of an IPv4 datagram without a checksum; it stays absent.
  } else if (proto === IPPROTO_SCTP) {
    if (l4 + SCTP_HLEN > end) return Reason.Truncated;
    wr16(buf, l4 + portAt, port);
    if (!csumPartial && !info.isFragment) setSctpChecksum(buf, l4, end);
  } else {
    return Reason.Ok;
  }
  if (portAt === PORT_DEST) info.dport = port;
  else info.sport = port;
  return Reason.Ok;
}

/**
 * Computes the TCP/UDP/ICMPv6 checksum of the whole L4 segment (pseudo-header over the IP
 * payload length, as the kernel's full-checksum path does) and stores it at `checkOff`; a UDP
 * result of 0 is stored as 0xffff.
 */
function setL4Checksum(buf: Uint8Array, info: PacketInfo, checkOff: number): void {
  wr16(buf, checkOff, 0);
  const l4 = info.l4off;
  const len = info.ipEnd - l4;
  const pseudo =
    info.ipVersion === 4
      ? pseudoSum4(info.saddr4 | 0, info.daddr4 | 0, info.protocol, len)
      : pseudoSum6(buf, info.saddrOff, info.daddrOff, info.protocol, len);
  const c = internetChecksum(buf, l4, len, pseudo);
  wr16(buf, checkOff, c === 0 && info.protocol === IPPROTO_UDP ? 0xffff : c);
}

/** Computes and stores the CRC32c of the SCTP packet buf[l4, end) (little-endian on the wire). */
export function setSctpChecksum(buf: Uint8Array, l4: number, end: number): void {
  wr32(buf, l4 + SCTP_CHECK, 0);
  const crc = crc32c(buf, l4, end - l4);
  buf[l4 + SCTP_CHECK] = crc;
  buf[l4 + SCTP_CHECK + 1] = crc >>> 8;
  buf[l4 + SCTP_CHECK + 2] = crc >>> 16;
  buf[l4 + SCTP_CHECK + 3] = crc >>> 24;
}

/**
 * Recomputes the transport checksum of a parsed, unfragmented packet from scratch (TCP, UDP
 * with the 0 -> 0xffff rule, SCTP, ICMP, ICMPv6): for packets whose payload the director
 * changed, and to repair CHECKSUM_PARTIAL frames before sending them to the wire.
 */
export function recomputeL4Checksum(buf: Uint8Array, info: PacketInfo): number {
  const l4 = info.l4off;
  if (l4 < 0 || info.isFragment) return Reason.Unsupported;
  const end = info.ipEnd;
  switch (info.protocol) {
    case IPPROTO_TCP:
      if (l4 + TCP_HLEN > end) return Reason.Truncated;
      setL4Checksum(buf, info, l4 + TCP_CHECK);
      return Reason.Ok;
    case IPPROTO_UDP:
      if (l4 + UDP_HLEN > end) return Reason.Truncated;
      setL4Checksum(buf, info, l4 + UDP_CHECK);
      return Reason.Ok;
    case IPPROTO_SCTP:
      if (l4 + SCTP_HLEN > end) return Reason.Truncated;
      setSctpChecksum(buf, l4, end);
      return Reason.Ok;
    case IPPROTO_ICMPV6:
      if (info.ipVersion !== 6) return Reason.Unsupported;
      if (l4 + 4 > end) return Reason.Truncated;
      setL4Checksum(buf, info, l4 + ICMP_CHECK);
      return Reason.Ok;
    default:
      if (info.ipVersion !== 4 || info.protocol !== 1) return Reason.Unsupported;
      if (l4 + 4 > end) return Reason.Truncated;
      wr16(buf, l4 + ICMP_CHECK, 0);
      wr16(buf, l4 + ICMP_CHECK, internetChecksum(buf, l4, end - l4));
      return Reason.Ok;
  }
}

/**
 * Verifies the transport checksum of a parsed, unfragmented packet: TCP, UDP (0 = absent is
 * accepted on IPv4 only), SCTP CRC32c, ICMP, ICMPv6. Other protocols and fragments: true.
 */
export function verifyL4Checksum(buf: Uint8Array, info: PacketInfo): boolean {
  const l4 = info.l4off;
  if (l4 < 0 || info.isFragment) return true;
  const len = info.ipEnd - l4;
  const proto = info.protocol;
  if (proto === IPPROTO_SCTP) {
    if (len < SCTP_HLEN) return false;
    const stored = (buf[l4 + 8] | (buf[l4 + 9] << 8) | (buf[l4 + 10] << 16) | (buf[l4 + 11] << 24)) >>> 0;
    wr32(buf, l4 + SCTP_CHECK, 0);
    const crc = crc32c(buf, l4, len);
    buf[l4 + 8] = stored;
    buf[l4 + 9] = stored >>> 8;
    buf[l4 + 10] = stored >>> 16;
    buf[l4 + 11] = stored >>> 24;
    return crc === stored;
  }
  if (info.ipVersion === 4 && proto === 1) return onesSum(buf, l4, len) === 0xffff;
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && !(proto === IPPROTO_ICMPV6 && info.ipVersion === 6)) return true;
  let n = len;
  if (proto === IPPROTO_UDP) {
    if (len < UDP_HLEN) return false;
    if (info.ipVersion === 4 && rd16(buf, l4 + UDP_CHECK) === 0) return true;
    // A receiver trims to the UDP length before checking (bytes after it are not covered).
    const ulen = rd16(buf, l4 + 4);
    if (ulen >= UDP_HLEN && ulen <= len) n = ulen;
  }
  const pseudo =
    info.ipVersion === 4
      ? pseudoSum4(info.saddr4 | 0, info.daddr4 | 0, proto, n)
      : pseudoSum6(buf, info.saddrOff, info.daddrOff, proto, n);
  return onesSum(buf, l4, n, pseudo) === 0xffff;
}

/**
 * §7.1, an ICMP error from the client side about a packet of a NAT connection (it quotes the
 * director's reply: VIP -> client). The ICMP checksum is recomputed from scratch, so check it
 * first with verifyL4Checksum (ip_vs_in_icmp drops a bad one once the connection is found). Rewrites the outer destination to the real server, the
 * quoted source address to the real server and the quoted source port (TCP/UDP/SCTP) to its
 * port, then recomputes the outer and quoted IPv4 header checksums and the whole ICMP
 * checksum (ip_vs_nat_icmp with inout = 0). `inner` comes from parseIcmpError.
 */
export function natIcmpIn(buf: Uint8Array, outer: PacketInfo, inner: PacketInfo, daddr: AddrWords, dport: number): number {
  return natIcmp(buf, outer, inner, daddr, dport, false);
}

/**
 * §7.2, an ICMP error from a NAT real server (it quotes the client's request: client ->
 * real server); verify its checksum first, as handle_response_icmp does. Rewrites the outer source to the VIP, the quoted destination address and
 * port to the VIP and virtual port, and recomputes the checksums (inout = 1).
 */
export function natIcmpOut(buf: Uint8Array, outer: PacketInfo, inner: PacketInfo, vaddr: AddrWords, vport: number): number {
  return natIcmp(buf, outer, inner, vaddr, vport, true);
}

function natIcmp(buf: Uint8Array, outer: PacketInfo, inner: PacketInfo, addr: AddrWords, port: number, out: boolean): number {
  if (outer.l4off < 0 || inner.ipVersion !== outer.ipVersion || outer.isFragment) return Reason.BadIcmp;
  const outerAt = out ? outer.saddrOff : outer.daddrOff;
  const innerAt = out ? inner.daddrOff : inner.saddrOff;
  if (outer.ipVersion === 4) {
    if (inner.ipHeaderLen < IPV4_HLEN || inner.l3off + inner.ipHeaderLen > outer.ipEnd) return Reason.Truncated;
    wr32(buf, outerAt, addr.w0 | 0);
    wr32(buf, innerAt, addr.w0 | 0);
    if (out) {
      outer.saddr4 = addr.w0 >>> 0;
      inner.daddr4 = addr.w0 >>> 0;
    } else {
      outer.daddr4 = addr.w0 >>> 0;
      inner.saddr4 = addr.w0 >>> 0;
    }
    setIpv4HeaderChecksum(buf, outer.l3off);
    setIpv4HeaderChecksum(buf, inner.l3off);
  } else {
    writeWords(buf, outerAt, addr);
    writeWords(buf, innerAt, addr);
  }
  const p = inner.protocol;
  if (inner.l4off >= 0 && inner.l4off + 4 <= outer.ipEnd && (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP)) {
    wr16(buf, inner.l4off + (out ? PORT_DEST : PORT_SOURCE), port);
    if (out) inner.dport = port;
    else inner.sport = port;
  }
  const l4 = outer.l4off;
  const len = outer.ipEnd - l4;
  wr16(buf, l4 + ICMP_CHECK, 0);
  const pseudo = outer.ipVersion === 6 ? pseudoSum6(buf, outer.saddrOff, outer.daddrOff, IPPROTO_ICMPV6, len) : 0;
  wr16(buf, l4 + ICMP_CHECK, internetChecksum(buf, l4, len, pseudo));
  return Reason.Ok;
}

function writeWords(buf: Uint8Array, at: number, a: AddrWords): void {
  wr32(buf, at, a.w0 | 0);
  wr32(buf, at + 4, a.w1 | 0);
  wr32(buf, at + 8, a.w2 | 0);
  wr32(buf, at + 12, a.w3 | 0);
}
