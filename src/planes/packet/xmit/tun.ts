// The tunneling transmitter (spec §6.3): the client's packet, unchanged but for its TTL, is
// wrapped in an outer IP header to the real server (IPIP / IPv6-in-IPv4, or GUE or GRE when the
// real server asks for them), written in headroom in front of the inner packet, so nothing is
// copied. The MTU it must fit is the route's minus the tunnel overhead; the sender of a DF
// packet that does not fit gets frag-needed (packet-too-big) with that MTU.

import { encapsulate, ETH_P_IP, ETH_P_IPV6, type PacketInfo, prependEthernet, Reason, rd16, recomputeL4Checksum, TunnelSpec, type TunnelType, tunnelHeaderLength } from '../../../codec/index.js';
import { IPV4_MIN_MTU, IPV6_MIN_MTU } from './common.js';

interface Words {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
}

/** Ephemeral range of udp_flow_src_port (net.ipv4.ip_local_port_range defaults). */
const PORT_MIN = 32768;
const PORT_MAX = 60999;

export class TunnelTx {
  private readonly src: Words = { w0: 0, w1: 0, w2: 0, w3: 0 };
  private readonly dst: Words = { w0: 0, w1: 0, w2: 0, w3: 0 };
  readonly spec = new TunnelSpec(0, 4, this.src, this.dst);
  private readonly dstMac = new Uint8Array(6);
  private ipId = (Math.random() * 0x10000) | 0;

  /** Sets the tunnel for the next packet (the real server's, from the core's answer). */
  configure(type: number, flags: number, port: number, outerFamily: 4 | 6, src: Int32Array, srcAt: number, dst: Int32Array, dstAt: number, pmtuDisc: boolean): void {
    const s = this.spec;
    s.type = type as TunnelType;
    s.flags = flags;
    s.port = port;
    s.outerVersion = outerFamily;
    s.pmtuDisc = pmtuDisc;
    this.src.w0 = src[srcAt]!;
    this.src.w1 = src[srcAt + 1]!;
    this.src.w2 = src[srcAt + 2]!;
    this.src.w3 = src[srcAt + 3]!;
    this.dst.w0 = dst[dstAt]!;
    this.dst.w1 = dst[dstAt + 1]!;
    this.dst.w2 = dst[dstAt + 2]!;
    this.dst.w3 = dst[dstAt + 3]!;
  }

  /** Bytes the tunnel adds in front of the inner packet. */
  get overhead(): number {
    return tunnelHeaderLength(this.spec);
  }

  /**
   * The MTU the inner packet must fit (route MTU minus overhead), or -1 when that is below the
   * minimum (68, or 1280 for an IPv6 inner packet): the kernel then drops silently.
   */
  innerMtu(routeMtu: number, innerVersion: number): number {
    const m = routeMtu - this.overhead;
    return m < (innerVersion === 6 ? IPV6_MIN_MTU : IPV4_MIN_MTU) ? -1 : m;
  }

  /**
   * Encapsulates the inner packet (info.l3off..ipEnd) in place and prepends the Ethernet header
   * to the next hop; returns the new frame start (the frame runs to info.ipEnd). The caller made
   * sure `overhead + 14` bytes in front of the inner packet are free.
   */
  encap(buf: Uint8Array, info: PacketInfo, macs: Uint8Array, macOff: number, srcMac: Uint8Array, partial: boolean): number {
    if (partial && !info.isFragment) {
      const r = recomputeL4Checksum(buf, info);
      if (r < 0) return r;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    const outer = encapsulate(buf, info, this.spec, this.ipId, this.flowPort(buf, info));
    if (outer < 0) return outer;
    for (let i = 0; i < 6; i++) this.dstMac[i] = macs[macOff + i]!;
    const start = prependEthernet(buf, outer, this.dstMac, srcMac, this.spec.outerVersion === 4 ? ETH_P_IP : ETH_P_IPV6);
    return start < 0 ? Reason.NoRoom : start;
  }

  /** GUE source port: a hash of the inner flow mapped into the ephemeral range (udp_flow_src_port). */
  private flowPort(buf: Uint8Array, info: PacketInfo): number {
    let h = info.saddr4 ^ info.daddr4 ^ info.protocol;
    if (info.ipVersion === 6) {
      for (let i = 0; i < 16; i += 2) h ^= rd16(buf, info.saddrOff + i) ^ (rd16(buf, info.daddrOff + i) << 16);
    }
    h ^= (info.sport << 16) | info.dport;
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
    h = (h ^ (h >>> 16)) >>> 0;
    return PORT_MIN + Math.floor((h / 0x100000000) * (PORT_MAX - PORT_MIN));
  }
}
