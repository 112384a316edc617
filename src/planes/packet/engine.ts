// The packet plane's frame engine: everything done to frames, in the thread that holds them.
// One engine per thread (the main thread in "single" mode, each worker in "threads" mode).
//
// Per receive batch, in chunks of CHUNK frames:
//   1. classify: parse each frame (codec), drop what is malformed (counted by reason), hand
//      ARP/ND to the neighbour cache, answer for VIPs the host does not own (echo, reset), and
//      write a request record for every packet the core must decide (client packets, NAT
//      replies, ICMP errors about connections or tunnel packets);
//   2. ask the core for the whole chunk at once (CoreLink: a direct call in single mode, a
//      shared-memory round trip to the owner thread in threads mode);
//   3. apply each answer with the transmitter of the connection's method (xmit/nat, dr, tun),
//      rewriting the frame in place in the receive ring, and list it for forward() on the
//      egress port (one copy and one syscall per port per chunk). Frames the plane builds
//      (ICMP errors, resets, ARP answers, fragments) go out from a scratch area after them.

import {
  type AddrWords,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ICMPV6_NDISC_NA,
  ICMPV6_NDISC_NS,
  IcmpErrorKind,
  icmpEchoToReply,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  PacketInfo,
  parseFrame,
  Reason,
  rd16,
  rd32,
  recomputeL4Checksum,
  TCP_RST,
} from '../../codec/index.js';
import { FWD_DROUTE, FWD_MASQ, FWD_TUNNEL } from '../../core/constants.js';
import { C, Drop, dropIndex } from './counters.js';
import type { FramePort, RxBatch } from './frame-io.js';
import { RX_STATUS } from './frame-io.js';
import { classifyIcmpError, errorToSender, errorViaNextHop, isEchoRequest, translateIcmpIn, translateIcmpOut } from './icmp.js';
import { NH_INCOMPLETE, NH_VALID, type NextHops } from './neighbours.js';
import { A, Kind, Q, REQ_STRIDE, RESP_STRIDE, Refusal, Verdict } from './records.js';
import type { ServedIndex } from './served.js';
import { buildTcpReset } from './tcp-reset.js';
import { checkMtu, decrementTtl, fragment4, NEEDS_FRAGMENTS, setMacs, TOO_BIG } from './xmit/common.js';
import { directRoute } from './xmit/dr.js';
import { natToClient, natToRealServer } from './xmit/nat.js';
import { TunnelTx } from './xmit/tun.js';

/** Frames classified before the core is asked (bounds the per-engine record arrays). */
export const CHUNK = 256;
/** forward() calls carry at most this many frames (the tx path prefers moderate batches). */
const FORWARD_BATCH = 64;
const BUILT_BYTES = 1 << 19;
const BUILT_FRAMES = 512;
const PENDING_MAX = 512;
const PENDING_PER_HOP = 64;
const PENDING_MS = 3000;

export interface EnginePort {
  readonly index: number;
  readonly port: FramePort;
  /** The interface MAC (6 bytes). */
  readonly mac: Uint8Array;
  /** Interface MTU: larger frames are offload super-frames and are dropped. */
  mtu: number;
  /** Free bytes in front of each received frame (the ring's PACKET_RESERVE), for tunnel headers. */
  readonly headroom: number;
  /** The host's addresses on this interface, the source of errors sent as a router. */
  addr4: AddrWords | null;
  addr6: AddrWords | null;
}

/** Resolves request records into response records, synchronously. */
export interface CoreLink {
  resolve(reqs: Int32Array, resps: Int32Array, n: number): void;
}

export interface EngineOptions {
  ports: EnginePort[];
  core: CoreLink;
  nexthops: NextHops;
  counters: Float64Array;
  /** ARP frames and neighbour solicitations/advertisements, for the neighbour cache. */
  control: (port: number, buf: Uint8Array, off: number, len: number, info: PacketInfo) => void;
  /** sysctl pmtu_disc (copy DF into the tunnel header). */
  pmtuDisc?: () => boolean;
  now?: () => number;
  /** Request/response arrays to use (shared memory in threads mode); CHUNK records each. */
  records?: { reqs: Int32Array; resps: Int32Array };
}

interface Pending {
  nh: number;
  frame: Buffer;
  since: number;
}

class Words implements AddrWords {
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  fromRecord(r: Int32Array, at: number): this {
    this.w0 = r[at]!;
    this.w1 = r[at + 1]!;
    this.w2 = r[at + 2]!;
    this.w3 = r[at + 3]!;
    return this;
  }
  fromPacket(buf: Uint8Array, info: PacketInfo, off: number): this {
    if (info.ipVersion === 4) {
      this.w0 = rd32(buf, off);
      this.w1 = this.w2 = this.w3 = 0;
    } else {
      this.w0 = rd32(buf, off);
      this.w1 = rd32(buf, off + 4);
      this.w2 = rd32(buf, off + 8);
      this.w3 = rd32(buf, off + 12);
    }
    return this;
  }
}

export class Engine {
  served: ServedIndex | null = null;
  readonly ports: EnginePort[];
  private readonly core: CoreLink;
  private readonly nh: NextHops;
  private readonly cnt: Float64Array;
  private readonly control: EngineOptions['control'];
  private readonly pmtuDisc: () => boolean;
  private readonly now: () => number;

  readonly reqs: Int32Array;
  readonly resps: Int32Array;
  private readonly frameIdx = new Int32Array(CHUNK);
  private infos: PacketInfo[] = Array.from({ length: CHUNK }, () => new PacketInfo());
  private inners: PacketInfo[] = Array.from({ length: CHUNK }, () => new PacketInfo());
  private spare = new PacketInfo();
  private readonly scratchInfo = new PacketInfo();
  private readonly macHi: Int32Array;
  private readonly macLo: Int32Array;

  /** Per egress port: frames of the current rx batch listed for forward(). */
  private readonly fwdCount: Int32Array;
  private readonly fwdBytes: Float64Array;
  private readonly built = Buffer.alloc(BUILT_BYTES);
  private readonly builtPort = new Int32Array(BUILT_FRAMES);
  private readonly builtOff = new Int32Array(BUILT_FRAMES);
  private readonly builtLen = new Int32Array(BUILT_FRAMES);
  private builtCount = 0;
  private builtUsed = 0;
  private readonly frag = Buffer.alloc(1 << 16);
  private readonly tun = new TunnelTx();
  private readonly addr = new Words();
  private readonly src = new Words();
  private pending: Pending[] = [];
  private ipId = (Math.random() * 0x10000) | 0;
  private rxPort: EnginePort | null = null;

  constructor(o: EngineOptions) {
    this.ports = o.ports;
    this.core = o.core;
    this.nh = o.nexthops;
    this.cnt = o.counters;
    this.control = o.control;
    this.pmtuDisc = o.pmtuDisc ?? (() => true);
    this.now = o.now ?? Date.now;
    this.reqs = o.records?.reqs ?? new Int32Array(CHUNK * REQ_STRIDE);
    this.resps = o.records?.resps ?? new Int32Array(CHUNK * RESP_STRIDE);
    this.fwdCount = new Int32Array(o.ports.length);
    this.fwdBytes = new Float64Array(o.ports.length);
    this.macHi = new Int32Array(o.ports.length);
    this.macLo = new Int32Array(o.ports.length);
    o.ports.forEach((p, i) => {
      this.macHi[i] = (p.mac[0]! << 8) | p.mac[1]!;
      this.macLo[i] = (p.mac[2]! << 24) | (p.mac[3]! << 16) | (p.mac[4]! << 8) | p.mac[5]!;
    });
  }

  /** The receive callback for port `p`. */
  batchHandler(p: EnginePort): (rx: RxBatch) => void {
    return (rx) => this.processBatch(p, rx);
  }

  processBatch(p: EnginePort, rx: RxBatch): void {
    const count = rx.count;
    this.rxPort = p;
    try {
      let i = 0;
      while (i < count) {
        let n = 0;
        for (; i < count && n < CHUNK; i++) n = this.classify(p, rx, i, n);
        if (n > 0) {
          this.cnt[C.CORE_PACKETS] += n;
          this.core.resolve(this.reqs, this.resps, n);
          for (let j = 0; j < n; j++) this.apply(p, rx, j);
        }
        this.flushForwards(p);
        this.flushBuilt();
      }
    } finally {
      this.rxPort = null;
    }
  }

  private drop(code: number): void {
    this.cnt[dropIndex(code)]++;
  }

  // ---------------------------------------------------------------------------------------
  // 1. classify

  private classify(p: EnginePort, rx: RxBatch, i: number, n: number): number {
    const buf = rx.buffer;
    const off = rx.offsets[i]!;
    const len = rx.lengths[i]!;
    const c = this.cnt;
    c[C.RX_FRAMES]++;
    c[C.RX_BYTES] += len;
    if (rx.status[i]! & RX_STATUS.TRUNCATED) {
      this.drop(Drop.RingTruncated);
      return n;
    }
    // Frames for another host (a bridge floods unknown unicast) are none of ours.
    const multicast = len > 0 && (buf[off]! & 1) === 1;
    if (!multicast && len >= 6 && (rd16(buf, off) !== this.macHi[p.index] || (rd32(buf, off + 2) | 0) !== this.macLo[p.index])) {
      c[C.IGNORED]++;
      return n;
    }
    const info = this.infos[n]!;
    const r = parseFrame(buf, off, off + len, info);
    if (r < 0) {
      this.drop(r);
      return n;
    }
    if (info.vlanTci >= 0) {
      c[C.IGNORED]++;
      return n;
    }
    const et = info.etherType;
    if (et === ETH_P_ARP) {
      this.control(p.index, buf, off, len, info);
      return n;
    }
    if (et !== ETH_P_IP && et !== ETH_P_IPV6) {
      c[C.IGNORED]++;
      return n;
    }
    const served = this.served;
    const fam = info.ipVersion;
    const proto = info.protocol;
    if (fam === 6 && proto === IPPROTO_ICMPV6 && (info.icmpType === ICMPV6_NDISC_NS || info.icmpType === ICMPV6_NDISC_NA)) {
      this.control(p.index, buf, off, len, info);
      return n;
    }
    if (multicast || !served) {
      c[C.IGNORED]++;
      return n;
    }
    let d0: number;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    const da = info.daddrOff;
    if (fam === 4) d0 = info.daddr4;
    else {
      d0 = rd32(buf, da);
      d1 = rd32(buf, da + 4);
      d2 = rd32(buf, da + 8);
      d3 = rd32(buf, da + 12);
    }
    const probePort = served.probePort;
    if (probePort >= 0 && served.isProbeAddr(fam, d0, d1, d2, d3)) {
      // For a health-check probe source (virtual paths): a real server's reply, or an error
      // about the probe. The kernel takes it on the probe port's peer, where its route points.
      if (p.index === probePort) c[C.IGNORED]++;
      else this.toProbe(rx, i, info, len, probePort);
      return n;
    }
    const b = n * REQ_STRIDE;
    const rec = this.reqs;
    if (proto === (fam === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6) && info.l4off >= 0) {
      const k = classifyIcmpError(buf, info, this.inners[n]!, this.spare, served, rec, b, p.index);
      if (k > 0) {
        if (k === Kind.TunnelIcmp) {
          // The client packet inside the quoted tunnel packet is what the answer is about.
          const t = this.inners[n]!;
          this.inners[n] = this.spare;
          this.spare = t;
        }
        if (len > p.mtu + 14) {
          this.drop(Drop.Oversize);
          return n;
        }
        this.frameIdx[n] = i;
        return n + 1;
      }
      if (served.ownsAddress(fam, d0, d1, d2, d3)) {
        if (k < 0) this.drop(k);
        else this.answerAsHost(p, rx, i, info);
      } else c[C.IGNORED]++;
      return n;
    }
    if (info.l4off < 0) {
      // A later fragment: its ports are in the first one, which this plane does not keep.
      if (served.ownsAddress(fam, d0, d1, d2, d3)) this.drop(Drop.Fragment);
      else c[C.IGNORED]++;
      return n;
    }
    const mark = served.matchIn(fam, proto, d0, d1, d2, d3, info.dport);
    let kind = 0;
    if (mark >= 0) {
      // Probe sources are pinned to one real server: only the plane's own probes may use them.
      if (probePort >= 0 && p.index !== probePort) {
        const s = this.src.fromPacket(buf, info, info.saddrOff);
        if (served.isProbeAddr(fam, s.w0, s.w1, s.w2, s.w3)) {
          this.drop(Drop.ProbeSpoofed);
          return n;
        }
      }
      kind = Kind.In;
    } else if (served.ownsAddress(fam, d0, d1, d2, d3)) {
      this.answerAsHost(p, rx, i, info);
      return n;
    } else {
      let s0: number;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      const sa = info.saddrOff;
      if (fam === 4) s0 = info.saddr4;
      else {
        s0 = rd32(buf, sa);
        s1 = rd32(buf, sa + 4);
        s2 = rd32(buf, sa + 8);
        s3 = rd32(buf, sa + 12);
      }
      if (served.matchNatServer(fam, proto, s0, s1, s2, s3, info.sport) && !served.isLocal(fam, d0, d1, d2, d3)) kind = Kind.Out;
    }
    if (kind === 0) {
      c[C.IGNORED]++;
      return n;
    }
    if (len > p.mtu + 14) {
      this.drop(Drop.Oversize);
      return n;
    }
    rec[b + Q.KIND] = kind;
    rec[b + Q.FAMPROTO] = fam | (proto << 8);
    rec[b + Q.FLAGS] = proto === IPPROTO_TCP ? info.tcpFlags : proto === IPPROTO_SCTP ? sctpFirstChunk(buf, info) : 0;
    rec[b + Q.LEN] = info.ipEnd - info.l3off;
    const sa = info.saddrOff;
    if (fam === 4) {
      rec[b + Q.S0] = info.saddr4;
      rec[b + Q.S0 + 1] = 0;
      rec[b + Q.S0 + 2] = 0;
      rec[b + Q.S0 + 3] = 0;
    } else {
      rec[b + Q.S0] = rd32(buf, sa);
      rec[b + Q.S0 + 1] = rd32(buf, sa + 4);
      rec[b + Q.S0 + 2] = rd32(buf, sa + 8);
      rec[b + Q.S0 + 3] = rd32(buf, sa + 12);
    }
    rec[b + Q.SPORT] = info.sport;
    rec[b + Q.D0] = d0;
    rec[b + Q.D0 + 1] = d1;
    rec[b + Q.D0 + 2] = d2;
    rec[b + Q.D0 + 3] = d3;
    rec[b + Q.DPORT] = info.dport;
    rec[b + Q.MARK] = Math.max(mark, 0);
    rec[b + Q.PORT] = p.index;
    this.frameIdx[n] = i;
    return n + 1;
  }

  /**
   * A packet for a VIP the host has not configured, that no service carries: answered as the
   * host owning the address would (echo reply, TCP reset, UDP port unreachable).
   */
  private answerAsHost(p: EnginePort, rx: RxBatch, i: number, info: PacketInfo): void {
    const buf = rx.buffer;
    if (isEchoRequest(info)) {
      if (icmpEchoToReply(buf, info) === Reason.Ok) {
        this.cnt[C.ANSWERS]++;
        this.addForward(p, i, rx.lengths[i]!);
        return;
      }
    } else if (info.protocol === IPPROTO_TCP && info.l4off >= 0) {
      this.sendReset(p, buf, info);
      return;
    } else if (info.protocol === IPPROTO_UDP && info.l4off >= 0) {
      this.errorBack(p, buf, info, IcmpErrorKind.PortUnreachable, 0, this.src.fromPacket(buf, info, info.daddrOff));
      return;
    }
    this.drop(Drop.VipOther);
  }

  /** A frame for a probe source (virtual paths): to the kernel's end of the probe pair, unchanged but for the MACs. */
  private toProbe(rx: RxBatch, i: number, info: PacketInfo, len: number, port: number): void {
    const e = this.ports[port];
    if (!e) {
      this.drop(Drop.NotAttached);
      return;
    }
    if (len > e.mtu + 14) {
      this.drop(Drop.Oversize);
      return;
    }
    const buf = rx.buffer;
    if (rx.status[i]! & RX_STATUS.CSUM_NOT_READY && !info.isFragment) {
      // The frame leaves without its offload metadata: complete the checksum first.
      const r = recomputeL4Checksum(buf, info);
      if (r < 0) {
        this.drop(r);
        return;
      }
    }
    // Both ends of the pair carry the same MAC (virtual-paths.ts).
    setMacs(buf, rx.offsets[i]!, e.mac, 0, e.mac);
    this.addForward(e, i, len);
  }

  // ---------------------------------------------------------------------------------------
  // 3. apply

  private apply(p: EnginePort, rx: RxBatch, j: number): void {
    const i = this.frameIdx[j]!;
    const info = this.infos[j]!;
    const kind = this.reqs[j * REQ_STRIDE + Q.KIND]!;
    const a = j * RESP_STRIDE;
    const res = this.resps;
    const v = res[a + A.VERDICT]!;
    const buf = rx.buffer;
    if (v >= 0) {
      switch (kind) {
        case Kind.In:
          this.toRealServer(p, rx, i, info, a, false);
          return;
        case Kind.IcmpIn:
          if (res[a + A.METHOD] === FWD_MASQ) {
            const r = translateIcmpIn(buf, info, this.inners[j]!, this.addr.fromRecord(res, a + A.A0), res[a + A.PORT]!);
            if (r < 0) {
              this.drop(r);
              return;
            }
            this.routed(p, rx, i, info, a, true);
          } else this.toRealServer(p, rx, i, info, a, true);
          return;
        case Kind.Out: {
          const r = natToClient(buf, info, this.addr.fromRecord(res, a + A.A0), res[a + A.PORT]!, (rx.status[i]! & RX_STATUS.CSUM_NOT_READY) !== 0);
          if (r < 0) {
            this.drop(r);
            return;
          }
          this.routed(p, rx, i, info, a, false);
          return;
        }
        case Kind.IcmpOut: {
          const r = translateIcmpOut(buf, info, this.inners[j]!, this.addr.fromRecord(res, a + A.A0), res[a + A.PORT]!);
          if (r < 0) {
            this.drop(r);
            return;
          }
          this.routed(p, rx, i, info, a, true);
          return;
        }
        case Kind.TunnelIcmp:
          this.tunnelErrorToClient(j, buf, a);
          return;
        default:
          return;
      }
    }
    switch (v) {
      case Verdict.Accept:
        // Not a connection's packet: the director's stack would answer it (nothing listens).
        if (kind === Kind.In) {
          this.drop(Drop.NoConn);
          if (info.protocol === IPPROTO_TCP) this.sendReset(p, buf, info);
        } else this.cnt[C.IGNORED]++;
        return;
      case Verdict.Drop:
        this.drop(Drop.Core);
        return;
      case Verdict.Unreach:
        this.drop(Drop.NoDest);
        this.errorBack(p, buf, info, IcmpErrorKind.PortUnreachable, 0, this.src.fromRecord(res, a + A.S0));
        return;
      case Verdict.Route:
        this.routed(p, rx, i, info, a, kind === Kind.IcmpOut || kind === Kind.IcmpIn);
        return;
      case Verdict.NoRoute:
        this.drop(Drop.NoRoute);
        this.errorBack(p, buf, info, IcmpErrorKind.HostUnreachable, 0, this.hostAddr(p, info) ?? this.src.fromPacket(buf, info, info.daddrOff));
        return;
      case Verdict.Refused: {
        const why = res[a + A.METHOD];
        this.drop(why === Refusal.NotAttached ? Drop.NotAttached : why === Refusal.LocalServer ? Drop.LocalServer : why === Refusal.NotOnLink ? Drop.NotOnLink : Drop.Method);
        return;
      }
      default:
        this.drop(Drop.Core);
    }
  }

  /** The IN path's transmit: TTL, MTU, then the method's rewrite, to the next hop. */
  private toRealServer(p: EnginePort, rx: RxBatch, i: number, info: PacketInfo, a: number, relayedIcmp: boolean): void {
    const res = this.resps;
    const buf = rx.buffer;
    const nh = res[a + A.NH]!;
    const method = res[a + A.METHOD]!;
    const partial = (rx.status[i]! & RX_STATUS.CSUM_NOT_READY) !== 0;
    // Errors about the client's packet come from the address it was sent to (the VIP).
    const vip = this.src.fromPacket(buf, info, info.daddrOff);
    if (decrementTtl(buf, info) < 0) {
      this.drop(Reason.TtlExceeded);
      this.errorBack(p, buf, info, IcmpErrorKind.TimeExceeded, 0, vip);
      return;
    }
    const mtu = res[a + A.MTU]!;
    if (method === FWD_TUNNEL) {
      const fam = res[a + A.FAM] === 6 ? 6 : 4;
      this.tun.configure(res[a + A.TUN]! & 0xff, res[a + A.TUN]! >>> 8, res[a + A.TUN_PORT]!, fam, res, a + A.S0, res, a + A.A0, this.pmtuDisc());
      const inner = this.tun.innerMtu(mtu, info.ipVersion);
      if (inner < 0) {
        this.drop(Drop.TunnelMtu);
        return;
      }
      const m = checkMtu(info, inner, relayedIcmp);
      if (m === TOO_BIG) {
        this.fragNeeded(p, buf, info, inner, vip);
        return;
      }
      this.tunnel(p, rx, i, info, nh, partial, m === NEEDS_FRAGMENTS ? mtu : 0);
      return;
    }
    const m = checkMtu(info, mtu, relayedIcmp);
    if (m === TOO_BIG) {
      this.fragNeeded(p, buf, info, mtu, vip);
      return;
    }
    if (method === FWD_MASQ) {
      if (!relayedIcmp) {
        const r = natToRealServer(buf, info, this.addr.fromRecord(res, a + A.A0), res[a + A.PORT]!, partial);
        if (r < 0) {
          this.drop(r);
          return;
        }
      }
    } else if (method === FWD_DROUTE) {
      const r = directRoute(buf, info, partial);
      if (r < 0) {
        this.drop(r);
        return;
      }
    } else {
      this.drop(Drop.Method);
      return;
    }
    if (m === NEEDS_FRAGMENTS) this.fragmentTo(buf, info, nh, mtu);
    else this.toNextHop(rx, i, buf, rx.offsets[i]!, rx.lengths[i]!, nh);
  }

  /** Forwarding toward a destination the core routed (NAT replies, errors): TTL, MTU, next hop. */
  private routed(p: EnginePort, rx: RxBatch, i: number, info: PacketInfo, a: number, relayedIcmp: boolean): void {
    const buf = rx.buffer;
    const nh = this.resps[a + A.NH]!;
    if (nh < 0) {
      this.drop(Drop.NoRoute);
      return;
    }
    if (decrementTtl(buf, info) < 0) {
      this.drop(Reason.TtlExceeded);
      const src = this.hostAddr(p, info);
      if (src) this.errorBack(p, buf, info, IcmpErrorKind.TimeExceeded, 0, src);
      return;
    }
    const mtu = this.resps[a + A.MTU]!;
    const m = checkMtu(info, mtu, relayedIcmp);
    if (m === TOO_BIG) {
      const src = this.hostAddr(p, info);
      this.drop(Drop.FragNeeded);
      if (src) this.errorBack(p, buf, info, IcmpErrorKind.FragNeeded, mtu, src);
      return;
    }
    if (m === NEEDS_FRAGMENTS) this.fragmentTo(buf, info, nh, mtu);
    else this.toNextHop(rx, i, buf, rx.offsets[i]!, rx.lengths[i]!, nh);
  }

  /** Tunnel: encapsulate in the ring's headroom (or in scratch when there is none), then send. */
  private tunnel(p: EnginePort, rx: RxBatch, i: number, info: PacketInfo, nh: number, partial: boolean, fragmentMtu: number): void {
    const buf = rx.buffer;
    const need = this.tun.overhead + 14 - (info.l3off - info.l2off);
    const egress = this.ports[this.nh.port(nh)] ?? p;
    if (need <= p.headroom && fragmentMtu === 0) {
      const start = this.tun.encap(buf, info, this.nh.macs, this.nh.macOff(nh), egress.mac, partial);
      if (start < 0) {
        this.drop(start);
        return;
      }
      this.toNextHop(rx, i, buf, start, info.ipEnd - start, nh);
      return;
    }
    // No headroom here (memory ports), or the outer packet will be fragmented: work on a copy.
    const ipLen = info.ipEnd - info.l3off;
    const at = this.tun.overhead + 14 + 64;
    if (at + ipLen > this.frag.length) {
      this.drop(Reason.TooBig);
      return;
    }
    this.frag.set(buf.subarray(info.l3off, info.ipEnd), at);
    info.shift(at - info.l3off);
    info.l2off = -1;
    const start = this.tun.encap(this.frag, info, this.nh.macs, this.nh.macOff(nh), egress.mac, partial);
    if (start < 0) {
      this.drop(start);
      return;
    }
    if (fragmentMtu > 0) {
      const outer = this.scratchInfo;
      if (parseFrame(this.frag, start, info.ipEnd, outer) < 0) {
        this.drop(Reason.BadTunnel);
        return;
      }
      this.fragmentTo(this.frag, outer, nh, fragmentMtu);
      return;
    }
    this.toNextHop(null, -1, this.frag, start, info.ipEnd - start, nh);
  }

  /** §7.3: tell the client about its packet the tunnel could not carry. */
  private tunnelErrorToClient(j: number, buf: Uint8Array, a: number): void {
    const res = this.resps;
    const nh = res[a + A.NH]!;
    if (nh < 0 || this.nh.state(nh) !== NH_VALID) {
      this.drop(Drop.NeighbourFailed);
      return;
    }
    const egress = this.ports[this.nh.port(nh)]!;
    const tc = this.reqs[j * REQ_STRIDE + Q.FLAGS]!;
    const at = this.reserveBuilt(600);
    if (at < 0) {
      this.drop(Drop.TxFull);
      return;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    const len = errorViaNextHop(this.built, at, at + 600, buf, this.inners[j]!, tc >>> 8, tc & 0xff, res[a + A.MTU]!, this.src.fromRecord(res, a + A.S0), this.ipId, this.nh.macs, this.nh.macOff(nh), egress.mac);
    if (len < 0) {
      this.drop(len);
      return;
    }
    this.commitBuilt(egress.index, at, len);
  }

  private fragNeeded(p: EnginePort, buf: Uint8Array, info: PacketInfo, mtu: number, src: AddrWords): void {
    this.drop(Drop.FragNeeded);
    this.errorBack(p, buf, info, IcmpErrorKind.FragNeeded, mtu, src);
  }

  /** IPv4 fragments of the (rewritten) packet, each a frame to the next hop. */
  private fragmentTo(buf: Uint8Array, info: PacketInfo, nh: number, mtu: number): void {
    if (info.l2off < 0) {
      this.drop(Reason.Unsupported);
      return;
    }
    const r = fragment4(buf, info.l2off, info, mtu, this.scratchFrag(), (f, off, len) => this.toNextHop(null, -1, f, off, len, nh));
    if (r < 0) this.drop(r);
  }

  private fragScratch: Buffer | null = null;
  private scratchFrag(): Buffer {
    this.fragScratch ??= Buffer.alloc(1 << 16);
    return this.fragScratch;
  }

  /**
   * Sends frame buf[start, start+len) to next hop `nh`: MACs set, then listed for forward() when
   * it is frame i of the receive batch, or copied out as a built frame otherwise. A next hop
   * still being resolved keeps a copy until it is (or fails).
   */
  private toNextHop(rx: RxBatch | null, i: number, buf: Uint8Array, start: number, len: number, nh: number): void {
    if (nh < 0) {
      this.drop(Drop.NoRoute);
      return;
    }
    const st = this.nh.state(nh);
    if (st === NH_VALID) {
      const egress = this.ports[this.nh.port(nh)];
      if (!egress) {
        this.drop(Drop.NotAttached);
        return;
      }
      setMacs(buf, start, this.nh.macs, this.nh.macOff(nh), egress.mac);
      if (rx && i >= 0 && this.rxPort) {
        rx.offsets[i] = start;
        rx.lengths[i] = len;
        this.addForward(egress, i, len);
      } else this.emit(egress.index, buf, start, len);
      return;
    }
    if (st === NH_INCOMPLETE) {
      this.queue(nh, buf, start, len);
      return;
    }
    this.drop(Drop.NeighbourFailed);
  }

  private addForward(egress: EnginePort, i: number, len: number): void {
    const k = this.fwdCount[egress.index]!;
    egress.port.forwardIndex[k] = i;
    this.fwdCount[egress.index] = k + 1;
    this.fwdBytes[egress.index] += len;
    if (k + 1 >= FORWARD_BATCH && this.rxPort) this.flushForward(egress, this.rxPort);
  }

  private flushForwards(rxPort: EnginePort): void {
    for (const e of this.ports) if (this.fwdCount[e.index]! > 0) this.flushForward(e, rxPort);
  }

  private flushForward(e: EnginePort, rxPort: EnginePort): void {
    const k = this.fwdCount[e.index]!;
    this.fwdCount[e.index] = 0;
    const bytes = this.fwdBytes[e.index]!;
    this.fwdBytes[e.index] = 0;
    let sent = 0;
    try {
      sent = e.port.forward(rxPort.port, k);
    } catch {
      this.cnt[C.TX_ERRORS]++;
    }
    this.cnt[C.TX_FRAMES] += sent;
    this.cnt[C.TX_BYTES] += sent === k ? bytes : (bytes * sent) / k;
    if (sent < k) this.cnt[Drop.TxFull] += k - sent;
  }

  // ---------------------------------------------------------------------------------------
  // Built frames

  private reserveBuilt(max: number): number {
    if (this.builtCount >= BUILT_FRAMES || this.builtUsed + max > BUILT_BYTES) this.flushBuilt();
    if (this.builtUsed + max > BUILT_BYTES) return -1;
    return this.builtUsed;
  }

  private commitBuilt(port: number, at: number, len: number): void {
    const k = this.builtCount++;
    this.builtPort[k] = port;
    this.builtOff[k] = at;
    this.builtLen[k] = len;
    this.builtUsed = at + len;
    if (!this.rxPort) this.flushBuilt();
  }

  /** Queues a frame the plane built (or copied) for port `port`; sent at the end of the chunk. */
  emit(port: number, buf: Uint8Array, off: number, len: number): void {
    const at = this.reserveBuilt(len);
    if (at < 0) {
      this.drop(Drop.TxFull);
      return;
    }
    this.built.set(buf.subarray(off, off + len), at);
    this.commitBuilt(port, at, len);
  }

  /** Sends the built frames, per port: one reserve, copies, one send. */
  flushBuilt(): void {
    const n = this.builtCount;
    if (n === 0) return;
    this.builtCount = 0;
    this.builtUsed = 0;
    for (const e of this.ports) {
      let want = 0;
      for (let k = 0; k < n; k++) if (this.builtPort[k] === e.index) want++;
      if (want === 0) continue;
      const tx = e.port.tx;
      let got = 0;
      try {
        got = e.port.reserve(want);
      } catch {
        this.cnt[C.TX_ERRORS]++;
      }
      let s = 0;
      let bytes = 0;
      for (let k = 0; k < n && s < got; k++) {
        if (this.builtPort[k] !== e.index) continue;
        const len = this.builtLen[k]!;
        if (len > tx.frameRoom || len < 14) {
          this.drop(Reason.TooBig);
          continue;
        }
        this.built.copy(tx.buffer, tx.offsets[s]!, this.builtOff[k]!, this.builtOff[k]! + len);
        tx.lengths[s++] = len;
        bytes += len;
      }
      try {
        const sent = e.port.send(s);
        this.cnt[C.TX_FRAMES] += sent;
        this.cnt[C.TX_BYTES] += bytes;
      } catch {
        this.cnt[C.TX_ERRORS]++;
      }
      if (got < want) this.cnt[Drop.TxFull] += want - got;
    }
  }

  /** An ICMP error back to the sender of a received frame. */
  private errorBack(p: EnginePort, buf: Uint8Array, info: PacketInfo, kind: IcmpErrorKind, mtu: number, src: AddrWords): void {
    const at = this.reserveBuilt(1400);
    if (at < 0) {
      this.drop(Drop.TxFull);
      return;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    const len = errorToSender(this.built, at, at + 1400, buf, info, kind, mtu, src, this.ipId, p.mac);
    if (len < 0) return; // not allowed (about an error, a broadcast...): silently nothing
    this.cnt[C.ANSWERS]++;
    this.commitBuilt(p.index, at, len);
  }

  private sendReset(p: EnginePort, buf: Uint8Array, info: PacketInfo): void {
    if (info.tcpFlags & TCP_RST) return;
    const at = this.reserveBuilt(128);
    if (at < 0) {
      this.drop(Drop.TxFull);
      return;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    const len = buildTcpReset(this.built, at, at + 128, buf, info, p.mac, this.ipId);
    if (len < 0) return;
    this.cnt[C.ANSWERS]++;
    this.commitBuilt(p.index, at, len);
  }

  private hostAddr(p: EnginePort, info: PacketInfo): AddrWords | null {
    return info.ipVersion === 4 ? p.addr4 : p.addr6;
  }

  // ---------------------------------------------------------------------------------------
  // Frames waiting for a next hop

  private queue(nh: number, buf: Uint8Array, start: number, len: number): void {
    let same = 0;
    for (const q of this.pending) if (q.nh === nh) same++;
    if (this.pending.length >= PENDING_MAX || same >= PENDING_PER_HOP) {
      this.drop(Drop.NeighbourQueueFull);
      return;
    }
    this.pending.push({ nh, frame: Buffer.from(buf.subarray(start, start + len)), since: this.now() });
    this.cnt[C.QUEUED] = this.pending.length;
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Sends the frames whose next hop got resolved, drops those that failed or waited too long. */
  servicePending(): void {
    if (this.pending.length === 0) return;
    const now = this.now();
    const keep: Pending[] = [];
    for (const q of this.pending) {
      const st = this.nh.state(q.nh);
      if (st === NH_VALID) {
        const egress = this.ports[this.nh.port(q.nh)];
        if (!egress) {
          this.drop(Drop.NotAttached);
          continue;
        }
        setMacs(q.frame, 0, this.nh.macs, this.nh.macOff(q.nh), egress.mac);
        this.emit(egress.index, q.frame, 0, q.frame.length);
      } else if (st === NH_INCOMPLETE && now - q.since < PENDING_MS) keep.push(q);
      else this.drop(Drop.NeighbourFailed);
    }
    this.pending = keep;
    this.cnt[C.QUEUED] = keep.length;
    if (!this.rxPort) this.flushBuilt();
  }

  /** Refreshes the receive-ring drop counter from the ports (kernel statistics). */
  refreshRingStats(): void {
    let drops = 0;
    for (const p of this.ports) {
      try {
        drops += p.port.stats().kernelDrops;
      } catch {
        // closed
      }
    }
    this.cnt[C.RING_DROPS] = drops;
  }
}

/** SCTP: the type of the first chunk (the core's "flags" for SCTP), 0 when absent. */
function sctpFirstChunk(buf: Uint8Array, info: PacketInfo): number {
  const at = info.l4off + 12;
  return at < info.ipEnd ? buf[at]! : 0;
}
