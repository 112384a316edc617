// The TCP reset a host sends for a segment that belongs to no connection (RFC 793 "reset
// generation", as tcp_v4_send_reset / tcp_v6_send_reset build it). IPVS accepts a non-SYN
// segment without a connection into the director's own stack, which answers it this way when
// nothing listens on the virtual address and port; the packet plane keeps that stack away from
// the VIP and answers in its place.

import {
  ETH_P_IP,
  ETH_P_IPV6,
  internetChecksum,
  IPPROTO_TCP,
  type PacketInfo,
  pseudoSum4,
  pseudoSum6,
  Reason,
  rd16,
  rd32,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  wr16,
  wr32,
  writeEthernetHeader,
  writeIpv4Header,
  writeIpv6Fixed,
} from '../../codec/index.js';

const TCP_HLEN = 20;

/**
 * Builds, at out[off], the reset answering the parsed segment `seg` in `buf` (back to its
 * sender's MAC, from myMac). Returns the frame length, or IcmpSuppressed for a segment that
 * must not be answered (a reset, or a non-first fragment).
 */
export function buildTcpReset(out: Uint8Array, off: number, outEnd: number, buf: Uint8Array, seg: PacketInfo, myMac: Uint8Array, ipId: number): number {
  if (seg.protocol !== IPPROTO_TCP || seg.l4off < 0 || seg.l2off < 0) return Reason.Unsupported;
  const flags = seg.tcpFlags;
  if (flags & TCP_RST) return Reason.IcmpSuppressed;
  const v6 = seg.ipVersion === 6;
  const ipHl = v6 ? 40 : 20;
  const total = 14 + ipHl + TCP_HLEN;
  if (off < 0 || off + total > outEnd) return Reason.NoRoom;
  const payload = seg.ipEnd - seg.l4off - seg.l4HeaderLen;
  let seq = 0;
  let ack = 0;
  let outFlags = TCP_RST;
  if (flags & TCP_ACK) seq = seg.tcpAck;
  else {
    ack = (seg.tcpSeq + payload + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0;
    outFlags |= TCP_ACK;
  }
  // Ethernet: back to the sender (its MAC is at +6 of the received frame).
  writeEthernetHeader(out, off, buf, seg.l2off + 6, myMac, 0, v6 ? ETH_P_IPV6 : ETH_P_IP, -1);
  const ip = off + 14;
  const tcp = ip + ipHl;
  if (v6) {
    writeIpv6Fixed(out, ip, 0, 0, TCP_HLEN, IPPROTO_TCP, 64);
    for (let i = 0; i < 16; i++) {
      out[ip + 8 + i] = buf[seg.daddrOff + i]!;
      out[ip + 24 + i] = buf[seg.saddrOff + i]!;
    }
  } else {
    writeIpv4Header(out, ip, 0, ipHl + TCP_HLEN, ipId, 0x4000, 64, IPPROTO_TCP, seg.daddr4 | 0, seg.saddr4 | 0);
  }
  wr16(out, tcp, rd16(buf, seg.l4off + 2));
  wr16(out, tcp + 2, rd16(buf, seg.l4off));
  wr32(out, tcp + 4, seq);
  wr32(out, tcp + 8, ack);
  out[tcp + 12] = (TCP_HLEN / 4) << 4;
  out[tcp + 13] = outFlags;
  wr16(out, tcp + 14, 0);
  wr16(out, tcp + 16, 0);
  wr16(out, tcp + 18, 0);
  const pseudo = v6 ? pseudoSum6(out, ip + 8, ip + 24, IPPROTO_TCP, TCP_HLEN) : pseudoSum4(rd32(out, ip + 12) | 0, rd32(out, ip + 16) | 0, IPPROTO_TCP, TCP_HLEN);
  wr16(out, tcp + 16, internetChecksum(out, tcp, TCP_HLEN, pseudo));
  return total;
}
