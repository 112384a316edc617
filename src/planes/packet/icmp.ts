// ICMP in the packet plane (spec §7): which ICMP errors concern the plane and what the core must
// be asked about them, their NAT translation both ways, and the errors the director sends
// (port unreachable, frag-needed / packet-too-big, time exceeded, host unreachable, and those
// relayed to a client about its tunnelled packets).

import {
  type AddrWords,
  buildIcmpError,
  buildIcmpErrorFrame,
  decapsulate,
  ETH_P_IP,
  ETH_P_IPV6,
  IcmpErrorKind,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  isIcmpError,
  natIcmpIn,
  natIcmpOut,
  type PacketInfo,
  parseIcmpError,
  Reason,
  rd32,
  verifyL4Checksum,
  wr16,
  writeEthernetHeader,
} from '../../codec/index.js';
import { Kind, Q } from './records.js';
import type { ServedIndex } from './served.js';

export { IcmpErrorKind };

function writeWords(rec: Int32Array, at: number, buf: Uint8Array, info: PacketInfo, off: number): void {
  if (info.ipVersion === 4) {
    rec[at] = rd32(buf, off);
    rec[at + 1] = 0;
    rec[at + 2] = 0;
    rec[at + 3] = 0;
  } else {
    rec[at] = rd32(buf, off);
    rec[at + 1] = rd32(buf, off + 4);
    rec[at + 2] = rd32(buf, off + 8);
    rec[at + 3] = rd32(buf, off + 12);
  }
}

const hasPorts = (p: number): boolean => p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP;

/**
 * Decides what an ICMP error (parsed into `outer`) is to the plane, and fills the request record
 * at rec[b] when the core must be asked. Returns the Kind, 0 when it is none of the plane's
 * business, or a negative Reason (a malformed error sent to an address the plane owns).
 * `inner` receives the quoted packet; `inner2` the client packet inside a quoted tunnel packet.
 */
export function classifyIcmpError(
  buf: Uint8Array,
  outer: PacketInfo,
  inner: PacketInfo,
  inner2: PacketInfo,
  served: ServedIndex,
  rec: Int32Array,
  b: number,
  port: number,
): number {
  if (!isIcmpError(outer)) return 0;
  const r = parseIcmpError(buf, outer, inner);
  if (r < 0) return r;
  const fam = inner.ipVersion;
  const p = inner.protocol;
  const q = (off: number, i: number) => rd32(buf, off + i * 4);
  const s = inner.saddrOff;
  const d = inner.daddrOff;
  const w = (off: number) => (fam === 4 ? [rd32(buf, off), 0, 0, 0] : [q(off, 0), q(off, 1), q(off, 2), q(off, 3)]) as [number, number, number, number];
  if (hasPorts(p) && inner.l4off >= 0) {
    const sw = w(s);
    const dw = w(d);
    // The quoted packet left a VIP:port for a client: an error from the client side (§7.1).
    if (served.matchIn(fam, p, sw[0], sw[1], sw[2], sw[3], inner.sport) >= 0) {
      fillRecord(rec, b, Kind.IcmpIn, fam, p, 0, outer.ipEnd - outer.l3off, buf, inner, d, inner.dport, s, inner.sport, port);
      return Kind.IcmpIn;
    }
    // The quoted packet went from a client to a NAT real server: an error from that server (§7.2).
    if (served.matchNatServer(fam, p, dw[0], dw[1], dw[2], dw[3], inner.dport)) {
      fillRecord(rec, b, Kind.IcmpOut, fam, p, 0, outer.ipEnd - outer.l3off, buf, inner, d, inner.dport, s, inner.sport, port);
      return Kind.IcmpOut;
    }
    return 0;
  }
  // An error about one of our tunnel packets, sent to this host (§7.3, IPv4 only).
  if (outer.ipVersion !== 4 || fam !== 4 || inner.fragOffset !== 0) return 0;
  if (p !== IPPROTO_IPIP && p !== IPPROTO_IPV6 && p !== IPPROTO_GRE && p !== IPPROTO_UDP) return 0;
  if (!served.isLocal(4, outer.daddr4, 0, 0, 0)) return 0;
  const t = served.tunnelFor(4, p, inner.daddr4, 0, 0, 0, inner.dport);
  if (!t) return 0;
  if (decapsulate(buf, inner, inner2, t.port, false, true) < 0 || inner2.ipVersion !== 4 || inner2.l4off < 0 || !hasPorts(inner2.protocol)) return 0;
  fillRecord(rec, b, Kind.TunnelIcmp, 4, inner2.protocol, (outer.icmpType << 8) | outer.icmpCode, outer.icmpMtu, buf, inner2, inner2.saddrOff, inner2.sport, inner2.daddrOff, inner2.dport, port);
  rec[b + Q.MARK] = inner2.dontFragment ? 1 : 0;
  return Kind.TunnelIcmp;
}

function fillRecord(
  rec: Int32Array,
  b: number,
  kind: number,
  fam: number,
  proto: number,
  flags: number,
  len: number,
  buf: Uint8Array,
  info: PacketInfo,
  sOff: number,
  sport: number,
  dOff: number,
  dport: number,
  port: number,
): void {
  rec[b + Q.KIND] = kind;
  rec[b + Q.FAMPROTO] = fam | (proto << 8);
  rec[b + Q.FLAGS] = flags;
  rec[b + Q.LEN] = len;
  writeWords(rec, b + Q.S0, buf, info, sOff);
  rec[b + Q.SPORT] = sport;
  writeWords(rec, b + Q.D0, buf, info, dOff);
  rec[b + Q.DPORT] = dport;
  rec[b + Q.MARK] = 0;
  rec[b + Q.PORT] = port;
}

/**
 * §7.1 for a NAT connection: the error goes on to the real server with its destination and the
 * quoted source rewritten (checksum verified first, as ip_vs_in_icmp does).
 */
export function translateIcmpIn(buf: Uint8Array, outer: PacketInfo, inner: PacketInfo, daddr: AddrWords, dport: number): number {
  if (outer.ipVersion === 4 && !verifyL4Checksum(buf, outer)) return Reason.BadChecksum;
  return natIcmpIn(buf, outer, inner, daddr, dport);
}

/** §7.2 for a NAT connection: the real server's error reaches the client from the VIP. */
export function translateIcmpOut(buf: Uint8Array, outer: PacketInfo, inner: PacketInfo, vaddr: AddrWords, vport: number): number {
  if (!verifyL4Checksum(buf, outer)) return Reason.BadChecksum;
  return natIcmpOut(buf, outer, inner, vaddr, vport);
}

/** An error back to the sender of a received frame (to its MAC, on the link it came from). */
export function errorToSender(
  out: Uint8Array,
  off: number,
  end: number,
  buf: Uint8Array,
  info: PacketInfo,
  kind: IcmpErrorKind,
  mtu: number,
  src: AddrWords,
  ipId: number,
  myMac: Uint8Array,
): number {
  return buildIcmpErrorFrame(out, off, end, buf, info, kind, mtu, src, ipId, myMac);
}

/**
 * An ICMP error of any type/code about `orig` (a packet parsed without link header, such as the
 * client packet inside a quoted tunnel packet), sent to `dstMac` (the next hop toward the
 * client). Used for §7.3: the kernel sends the client the same type and code it got about the
 * tunnel packet (frag-needed with the inner MTU). Returns the frame length.
 */
export function errorViaNextHop(
  out: Uint8Array,
  off: number,
  end: number,
  buf: Uint8Array,
  orig: PacketInfo,
  type: number,
  code: number,
  mtu: number,
  src: AddrWords,
  ipId: number,
  dstMacs: Uint8Array,
  dstMacOff: number,
  myMac: Uint8Array,
): number {
  const v6 = orig.ipVersion === 6;
  // Build as port unreachable (same layout), then set the real type/code and info word.
  const n = buildIcmpError(out, off + 14, end, buf, orig, IcmpErrorKind.PortUnreachable, 0, src, ipId);
  if (n < 0) return n;
  const l4 = off + 14 + (v6 ? 40 : 20);
  const oldType = out[l4]!;
  const oldCode = out[l4 + 1]!;
  out[l4] = type;
  out[l4 + 1] = code;
  if (!v6 && type === 3 && code === 4) {
    wr16(out, l4 + 4, 0);
    wr16(out, l4 + 6, mtu);
  }
  // Patch the checksum for the changed words (type/code, and the MTU word).
  let sum = (out[l4 + 2]! << 8) | out[l4 + 3]!;
  sum = adjust(sum, (oldType << 8) | oldCode, (type << 8) | code);
  if (!v6 && type === 3 && code === 4) sum = adjust(sum, 0, mtu & 0xffff);
  out[l4 + 2] = sum >>> 8;
  out[l4 + 3] = sum & 0xff;
  writeEthernetHeader(out, off, dstMacs, dstMacOff, myMac, 0, v6 ? ETH_P_IPV6 : ETH_P_IP, -1);
  return 14 + n;
}

function adjust(check: number, oldWord: number, newWord: number): number {
  let s = (~check & 0xffff) + (~oldWord & 0xffff) + newWord;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Whether a parsed packet is an ICMPv4 echo request or an ICMPv6 echo request. */
export function isEchoRequest(info: PacketInfo): boolean {
  return info.ipVersion === 4 ? info.protocol === IPPROTO_ICMP && info.icmpType === 8 : info.protocol === 58 && info.icmpType === 128;
}

