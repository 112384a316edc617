// Whole-frame parsing: Ethernet -> ARP or IPv4/IPv6 -> TCP/UDP/SCTP/ICMP, and the packet
// quoted inside an ICMP error. One call per received frame, results in a reused PacketInfo.

import { parseArp } from './arp.js';
import {
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ICMP_HLEN,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from './constants.js';
import { parseEthernet } from './ethernet.js';
import { isIcmpError, parseIcmp } from './icmp.js';
import type { PacketInfo } from './info.js';
import { parseIpv4 } from './ipv4.js';
import { parseIpv6 } from './ipv6.js';
import { Reason } from './reasons.js';
import { parseTcp } from './tcp.js';
import { parseSctp, parseUdp } from './udp.js';

/**
 * Parses the frame buf[off, end): Ethernet (one VLAN tag), then ARP, or IP with its transport
 * header. Frames of other EtherTypes return Ok with ipVersion 0 (not ours to judge).
 */
export function parseFrame(buf: Uint8Array, off: number, end: number, info: PacketInfo): number {
  info.reset();
  const r = parseEthernet(buf, off, end, info);
  if (r < 0) return r;
  const t = info.etherType;
  if (t === ETH_P_IP || t === ETH_P_IPV6) {
    const v = t === ETH_P_IP ? parseIpv4(buf, info.l3off, end, info) : parseIpv6(buf, info.l3off, end, info);
    return v < 0 ? v : parseL4(buf, info);
  }
  if (t === ETH_P_ARP) return parseArp(buf, end, info);
  return Reason.Ok;
}

/** Parses an IP packet at `off` (no link header): version from the first nibble, then L4. */
export function parseIp(buf: Uint8Array, off: number, end: number, info: PacketInfo): number {
  info.reset();
  if (off >= end) return Reason.Truncated;
  const version = buf[off] >> 4;
  let r: number;
  if (version === 4) r = parseIpv4(buf, off, end, info);
  else if (version === 6) r = parseIpv6(buf, off, end, info);
  else return Reason.BadVersion;
  return r < 0 ? r : parseL4(buf, info);
}

/** Parses the transport header at info.l4off according to info.protocol. */
export function parseL4(buf: Uint8Array, info: PacketInfo, quoted = false): number {
  switch (info.protocol) {
    case IPPROTO_TCP:
      return parseTcp(buf, info, quoted);
    case IPPROTO_UDP:
      return parseUdp(buf, info, quoted);
    case IPPROTO_SCTP:
      return parseSctp(buf, info, quoted);
    case IPPROTO_ICMP:
      return info.ipVersion === 4 ? parseIcmp(buf, info, quoted) : Reason.Ok;
    case IPPROTO_ICMPV6:
      return info.ipVersion === 6 ? parseIcmp(buf, info, quoted) : Reason.Ok;
    default:
      return Reason.Ok;
  }
}

/**
 * Locates the packet quoted by a parsed ICMP/ICMPv6 error and parses it into `inner` in
 * quoted mode: the IP header must be complete; ports (and what else of the first 8 L4 bytes
 * is there) are filled when present, inner.l4off = -1 otherwise. The quoted packet must be
 * of the same IP version as the error.
 */
export function parseIcmpError(buf: Uint8Array, outer: PacketInfo, inner: PacketInfo): number {
  if (!isIcmpError(outer) || outer.isFragment) return Reason.BadIcmp;
  const q = outer.l4off + ICMP_HLEN;
  inner.reset();
  if (q >= outer.ipEnd) return Reason.Truncated;
  const r =
    outer.ipVersion === 4 ? parseIpv4(buf, q, outer.ipEnd, inner, true) : parseIpv6(buf, q, outer.ipEnd, inner, true);
  if (r < 0) return r;
  return parseL4(buf, inner, true);
}
