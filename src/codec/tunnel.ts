// The TUN transmitter's encapsulation (spec §6.3) and the real-server agent's decapsulation.
//
// encapsulate() builds the outer headers in place *in front of* the inner packet, in headroom
// the caller left when it copied the frame into its transmit buffer: no copy of the inner
// packet and no allocation. Outer fields as ip_vs_tunnel_xmit sets them: TOS/traffic class =
// inner DSCP with ECN per RFC 6040 (CE becomes ECT(0)), TTL = inner TTL (already decremented),
// DF = inner DF when pmtu_disc (always 0 for an IPv6 inner packet), IPv6 flow label 0, the
// IPv4 ID from the caller's counter.

import { rd16, wr16 } from './bytes.js';
import { addrWordsSum, internetChecksum, pseudoSum4 } from './checksum.js';
import { IP_DF, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN, UDP_HLEN } from './constants.js';
import { parseL4 } from './frame.js';
import { greProtocol, parseGre, writeGreHeader } from './gre.js';
import { applyGueRemoteChecksum, GUE_HLEN, GUE_REMCSUM_OPTLEN, GueHeader, parseGue, writeGueHeader } from './gue.js';
import type { AddrWords, PacketInfo } from './info.js';
import { parseIpv4, writeIpv4Header } from './ipv4.js';
import { parseIpv6, writeIpv6Header } from './ipv6.js';
import { verifyL4Checksum } from './nat.js';
import { Reason } from './reasons.js';
import { UDP_CHECK } from './udp.js';

/** Tunnel types, the kernel's IP_VS_CONN_F_TUNNEL_TYPE_* values. */
export const TunnelType = { Ipip: 0, Gue: 1, Gre: 2 } as const;
export type TunnelType = (typeof TunnelType)[keyof typeof TunnelType];

/** Tunnel flags, the kernel's IP_VS_TUNNEL_ENCAP_FLAG_* values. */
export const TUNNEL_ENCAP_FLAG_CSUM = 1;
export const TUNNEL_ENCAP_FLAG_REMCSUM = 2;

/** One real server's tunnel: built when the destination is configured, reused per packet. */
export class TunnelSpec {
  type: TunnelType;
  /** Family of the outer header: the real server's. */
  outerVersion: 4 | 6;
  /** Outer source (the director's address toward the real server) and destination. */
  src: AddrWords;
  dst: AddrWords;
  /** GUE destination port (tun_port). */
  port: number;
  /** TUNNEL_ENCAP_FLAG_CSUM / _REMCSUM. */
  flags: number;
  /** sysctl pmtu_disc: copy the inner DF bit to the outer header. */
  pmtuDisc: boolean;

  constructor(type: TunnelType, outerVersion: 4 | 6, src: AddrWords, dst: AddrWords, port = 0, flags = 0, pmtuDisc = true) {
    this.type = type;
    this.outerVersion = outerVersion;
    this.src = src;
    this.dst = dst;
    this.port = port;
    this.flags = flags;
    this.pmtuDisc = pmtuDisc;
  }
}

/**
 * Bytes the tunnel adds in front of the inner packet: outer IP header + UDP/GUE (with the
 * remote checksum option when `partialInner` and REMCSUM) or GRE (8 with checksum, else 4).
 */
export function tunnelHeaderLength(spec: TunnelSpec, partialInner = false): number {
  return (spec.outerVersion === 6 ? IPV6_HLEN : IPV4_HLEN) + encapLength(spec, partialInner && (spec.flags & TUNNEL_ENCAP_FLAG_REMCSUM) !== 0);
}

function encapLength(spec: TunnelSpec, remcsum: boolean): number {
  if (spec.type === TunnelType.Gue) return UDP_HLEN + GUE_HLEN + (remcsum ? GUE_REMCSUM_OPTLEN : 0);
  if (spec.type === TunnelType.Gre) return spec.flags & TUNNEL_ENCAP_FLAG_CSUM ? 8 : 4;
  return 0;
}

/**
 * MTU left for the inner packet (for the DF check and the frag-needed / packet-too-big MTU):
 * the route MTU minus the tunnel overhead. The kernel drops silently when this is below 68
 * (IPv6 inner: 1280); that check is the caller's.
 */
export function tunnelMtu(routeMtu: number, spec: TunnelSpec, partialInner = false): number {
  return routeMtu - tunnelHeaderLength(spec, partialInner);
}

/** RFC 6040 normal-mode encapsulation of the DS field: copy DSCP and ECN, except CE -> ECT(0). */
export function ecnEncapsulate(dsfield: number): number {
  const ecn = dsfield & 3;
  return (dsfield & 0xfc) | (ecn === 3 ? 2 : ecn);
}

/**
 * Encapsulates the parsed IP packet `inner` (at inner.l3off .. inner.ipEnd) per `spec`, writing
 * the outer headers in the headroom before it. Returns the outer header's offset (where the
 * caller puts the Ethernet header, see prependEthernet), or NoRoom / TooBig / Unsupported.
 *
 * `udpSrcPort` is the GUE source port (a flow hash in the ephemeral range, as
 * udp_flow_src_port); `csumStart`/`csumOffset` describe a pending partial inner checksum
 * (csumStart relative to the inner packet, -1 when the inner checksum is complete): with
 * REMCSUM it is announced in the GUE option, as ipvs_gue_encap does.
 */
export function encapsulate(
  buf: Uint8Array,
  inner: PacketInfo,
  spec: TunnelSpec,
  ipId: number,
  udpSrcPort: number,
  csumStart = -1,
  csumOffset = 0,
): number {
  const innerOff = inner.l3off;
  const innerLen = inner.ipEnd - innerOff;
  const v = inner.ipVersion;
  if (v !== 4 && v !== 6) return Reason.BadVersion;
  const remcsum = spec.type === TunnelType.Gue && (spec.flags & TUNNEL_ENCAP_FLAG_REMCSUM) !== 0 && csumStart >= 0;
  if (remcsum && csumStart + csumOffset + 2 > innerLen) return Reason.Unsupported;
  const ipHl = spec.outerVersion === 6 ? IPV6_HLEN : IPV4_HLEN;
  const encLen = encapLength(spec, remcsum);
  const outerOff = innerOff - ipHl - encLen;
  if (outerOff < 0) return Reason.NoRoom;
  const payloadLen = encLen + innerLen;
  if (spec.outerVersion === 4 ? ipHl + payloadLen > 0xffff : payloadLen > 0xffff) return Reason.TooBig;

  let dsfield: number;
  let ttl: number;
  let df = 0;
  if (v === 4) {
    dsfield = buf[innerOff + 1];
    ttl = buf[innerOff + 8];
    if (spec.pmtuDisc) df = rd16(buf, innerOff + 6) & IP_DF;
  } else {
    dsfield = ((buf[innerOff] & 0x0f) << 4) | (buf[innerOff + 1] >> 4);
    ttl = buf[innerOff + 7];
  }
  dsfield = ecnEncapsulate(dsfield);

  const innerProto = v === 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
  let next = innerProto;
  const encOff = outerOff + ipHl;
  if (spec.type === TunnelType.Gue) {
    writeGueHeader(buf, encOff + UDP_HLEN, innerProto, remcsum ? csumStart : -1, csumOffset);
    wr16(buf, encOff, udpSrcPort);
    wr16(buf, encOff + 2, spec.port);
    wr16(buf, encOff + 4, payloadLen);
    wr16(buf, encOff + UDP_CHECK, 0);
    if (spec.flags & (TUNNEL_ENCAP_FLAG_CSUM | TUNNEL_ENCAP_FLAG_REMCSUM)) {
      const pseudo =
        spec.outerVersion === 4
          ? pseudoSum4(spec.src.w0 | 0, spec.dst.w0 | 0, IPPROTO_UDP, payloadLen)
          : addrWordsSum(spec.src) + addrWordsSum(spec.dst) + IPPROTO_UDP + payloadLen;
      const c = internetChecksum(buf, encOff, payloadLen, pseudo);
      wr16(buf, encOff + UDP_CHECK, c === 0 ? 0xffff : c);
    }
    next = IPPROTO_UDP;
  } else if (spec.type === TunnelType.Gre) {
    const withCsum = (spec.flags & TUNNEL_ENCAP_FLAG_CSUM) !== 0;
    writeGreHeader(buf, encOff, v === 4 ? 0x0800 : 0x86dd, withCsum);
    if (withCsum) wr16(buf, encOff + 4, internetChecksum(buf, encOff, payloadLen));
    next = IPPROTO_GRE;
  }
  if (spec.outerVersion === 4) {
    writeIpv4Header(buf, outerOff, dsfield, ipHl + payloadLen, ipId & 0xffff, df, ttl, next, spec.src.w0 | 0, spec.dst.w0 | 0);
  } else {
    writeIpv6Header(buf, outerOff, dsfield, 0, payloadLen, next, ttl, spec.src, spec.dst);
  }
  return outerOff;
}

const gueScratch = new GueHeader();

/**
 * Strips an IPIP (4), IPv6-in-IP (41), GUE (UDP to `guePort`; 0 = no GUE expected) or GRE (47)
 * packet, parsed into `outer`, and parses the inner packet into `inner` (inner.l3off ..
 * inner.ipEnd is what the real server's stack should receive). NotTunnel when `outer` is
 * not such a packet.
 *
 * Received packets (quoted = false): the outer UDP checksum (when non-zero) and a present GRE
 * checksum are verified when `verify`; the inner packet is parsed strictly; a GUE remote
 * checksum is applied to the inner packet. Quoted packets (the tunnel packet inside an ICMP
 * error, spec §7.3): lengths are lenient, nothing is verified or modified.
 */
export function decapsulate(
  buf: Uint8Array,
  outer: PacketInfo,
  inner: PacketInfo,
  guePort: number,
  verify = true,
  quoted = false,
): number {
  const l4 = outer.l4off;
  if (l4 < 0) return Reason.NotTunnel;
  if (!quoted && outer.isFragment) return Reason.Unsupported;
  let innerOff: number;
  let innerEnd = outer.ipEnd;
  let expect: number;
  let remStart = -1;
  let remField = -1;
  switch (outer.protocol) {
    case IPPROTO_IPIP:
      innerOff = l4;
      expect = 4;
      break;
    case IPPROTO_IPV6:
      innerOff = l4;
      expect = 6;
      break;
    case IPPROTO_UDP: {
      if (guePort === 0 || outer.dport !== guePort) return Reason.NotTunnel;
      if (!quoted) {
        innerEnd = l4 + outer.udpLength;
        if (verify && rd16(buf, l4 + UDP_CHECK) !== 0 && !verifyL4Checksum(buf, outer)) return Reason.BadChecksum;
      }
      const r = parseGue(buf, l4 + UDP_HLEN, innerEnd, gueScratch);
      if (r < 0) return r;
      innerOff = gueScratch.innerOff;
      expect = gueScratch.innerProto === IPPROTO_IPIP ? 4 : gueScratch.innerProto === IPPROTO_IPV6 ? 6 : 0;
      if (expect === 0) return Reason.BadTunnel;
      remStart = gueScratch.remcsumStart;
      remField = gueScratch.remcsumField;
      break;
    }
    case IPPROTO_GRE: {
      const hl = parseGre(buf, l4, innerEnd, verify && !quoted);
      if (hl < 0) return hl;
      const proto = greProtocol(buf, l4);
      expect = proto === 0x0800 ? 4 : proto === 0x86dd ? 6 : 0;
      if (expect === 0) return Reason.BadTunnel;
      innerOff = l4 + hl;
      break;
    }
    default:
      return Reason.NotTunnel;
  }
  inner.reset();
  if (innerOff >= innerEnd) return Reason.Truncated;
  if (buf[innerOff] >> 4 !== expect) return Reason.BadTunnel;
  const r = expect === 4 ? parseIpv4(buf, innerOff, innerEnd, inner, quoted) : parseIpv6(buf, innerOff, innerEnd, inner, quoted);
  if (r < 0) return r;
  if (remStart >= 0 && !quoted) {
    const rc = applyGueRemoteChecksum(buf, innerOff, inner.ipEnd, remStart, remField);
    if (rc < 0) return rc;
  }
  return parseL4(buf, inner, quoted);
}
