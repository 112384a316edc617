// Which services the packet plane carries, and the per-packet index that tells an engine
// whether a frame is its business: a client packet for a served virtual address and port (or
// one a firewall-mark rule covers), a reply from a NAT real server, an ICMP error about either,
// or an ICMP error about one of its tunnel packets. Built from the director's table whenever it
// changes; plain data (ServedData) so that worker threads rebuild the same index.

import type { IpAddr } from '../../core/addr.js';
import { FWD_DROUTE, FWD_MASK, FWD_MASQ, FWD_TUNNEL, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, TUN_TYPE_GRE, TUN_TYPE_GUE, TUN_TYPE_IPIP } from '../../core/constants.js';
import type { Service } from '../../core/service.js';
import { AddrMap } from './addr-map.js';

/** A firewall-mark rule: packets to this address (and protocol, port range) carry `mark`. */
export interface MarkRule {
  mark: number;
  family: 4 | 6;
  protocol: number;
  words: [number, number, number, number];
  portLo: number;
  portHi: number;
}

type Words = [number, number, number, number];

/** A network of health-check probe sources (virtual-paths.ts). */
export interface ProbeNet {
  family: 4 | 6;
  words: Words;
  len: number;
}

/** What the engines know of the virtual paths: the port probes come in on, their sources' networks. */
export interface ProbeServed {
  port: number;
  nets: ProbeNet[];
}

/** Mask of the first `len` bits of word i (0..3) of an address. */
export function wordMask(len: number, i: number): number {
  const bits = len - i * 32;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

export interface ServedData {
  /** Address services carried: virtual address, protocol, port (0: every port, persistent port-0 services). */
  vips: { family: 4 | 6; words: Words; protocol: number; port: number }[];
  /** Mark rules of the fwmark services carried. */
  marks: MarkRule[];
  /** NAT real servers (address, protocol, port) of carried services: their replies are ours. */
  natServers: { family: 4 | 6; words: Words; protocol: number; port: number }[];
  /** Tunnel real servers (address, tunnel type, GUE port): ICMP errors about our tunnel packets. */
  tunnels: { family: 4 | 6; words: Words; type: number; port: number }[];
  /** Virtual addresses the host has not configured: the plane owns everything sent to them. */
  ownedVips: { family: 4 | 6; words: Words }[];
  /** The host's own addresses. */
  local: { family: 4 | 6; words: Words }[];
  /** Health-check paths (virtual-paths.ts): the port probes come in on, their sources' networks. */
  probe?: ProbeServed | null;
}

const words = (a: IpAddr): Words => [a.w0 >>> 0, a.w1 >>> 0, a.w2 >>> 0, a.w3 >>> 0];
const key = (protocol: number, port: number): number => protocol * 65536 + port;

/** Forwarding methods the packet plane transmits. */
export function packetMethod(m: number): boolean {
  return m === FWD_MASQ || m === FWD_DROUTE || m === FWD_TUNNEL;
}

/**
 * Whether the packet plane carries a service, and if not why. It takes every service whose real
 * servers all use NAT, direct routing or tunneling (or that has none yet: its clients get the
 * ICMP port unreachable IPVS sends); fwmark services need mark rules, because the plane sees a
 * frame before the kernel's firewall marks it.
 */
export function carries(svc: Service, marks: readonly MarkRule[]): { ok: true } | { ok: false; reason: string } {
  if (svc.protocol !== IPPROTO_TCP && svc.protocol !== IPPROTO_UDP && svc.protocol !== IPPROTO_SCTP && !svc.fwmark) {
    return { ok: false, reason: `protocol ${svc.protocol} is not carried` };
  }
  const other = svc.dests.find((d) => !packetMethod(d.connFlags & FWD_MASK));
  if (other) return { ok: false, reason: `real server ${other} uses a method the packet plane does not transmit (local node or proxy)` };
  if (svc.fwmark && !marks.some((r) => r.mark === svc.fwmark >>> 0 && r.family === svc.af)) {
    return {
      ok: false,
      reason: `firewall mark ${svc.fwmark}: the packet plane sees frames before the kernel marks them; describe the marked traffic in packet.fwmarks`,
    };
  }
  return { ok: true };
}

export function buildServedData(services: Iterable<Service>, marks: readonly MarkRule[], local: IpAddr[], isLocal: (a: IpAddr) => boolean): ServedData {
  const d: ServedData = { vips: [], marks: [], natServers: [], tunnels: [], ownedVips: [], local: local.map((a) => ({ family: a.family, words: words(a) })) };
  const owned = new AddrMap<true>();
  for (const svc of services) {
    if (!carries(svc, marks).ok) continue;
    if (svc.fwmark) {
      for (const r of marks) if (r.mark === svc.fwmark >>> 0 && r.family === svc.af) d.marks.push(r);
    } else {
      d.vips.push({ family: svc.af, words: words(svc.addr), protocol: svc.protocol, port: svc.port });
      if (!isLocal(svc.addr) && !owned.get(svc.af, svc.addr.w0, svc.addr.w1, svc.addr.w2, svc.addr.w3)) {
        owned.set(svc.af, svc.addr.w0, svc.addr.w1, svc.addr.w2, svc.addr.w3, true);
        d.ownedVips.push({ family: svc.af, words: words(svc.addr) });
      }
    }
    for (const dest of svc.dests) {
      const m = dest.connFlags & FWD_MASK;
      if (m === FWD_MASQ) {
        // fwmark services keep the client's port when the real server's is 0: any port of it.
        const protos = svc.fwmark ? [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP] : [svc.protocol];
        for (const p of protos) d.natServers.push({ family: dest.af, words: words(dest.addr), protocol: p, port: dest.port });
      } else if (m === FWD_TUNNEL) {
        d.tunnels.push({ family: dest.af, words: words(dest.addr), type: dest.tunType, port: dest.tunType === TUN_TYPE_GUE ? dest.tunPort : 0 });
      }
    }
  }
  return d;
}

/** The per-packet questions, answered from maps built once per table change. */
export class ServedIndex {
  private readonly vips = new AddrMap<Set<number>>();
  private readonly marks = new AddrMap<MarkRule[]>();
  private readonly nat = new AddrMap<Set<number>>();
  private readonly tunnels = new AddrMap<{ type: number; port: number }[]>();
  private readonly owned = new AddrMap<true>();
  private readonly local = new AddrMap<true>();
  /** A nat server with port 0 (fwmark services): every source port matches. */
  private static readonly ANY = 0;
  /** The port health-check probes come in on (virtual paths), -1 without. */
  readonly probePort: number;
  /** Probe networks: IPv4 network and mask; IPv6 network and mask words. */
  private readonly probe4: [number, number] | null = null;
  private readonly probe6: [number, number, number, number, number, number, number, number] | null = null;

  constructor(readonly data: ServedData) {
    const pr = data.probe;
    this.probePort = pr ? pr.port : -1;
    for (const n of pr?.nets ?? []) {
      const m = [0, 1, 2, 3].map((i) => wordMask(n.len, i));
      if (n.family === 4) this.probe4 = [n.words[0] >>> 0, m[0]!];
      else this.probe6 = [n.words[0], n.words[1], n.words[2], n.words[3], m[0]!, m[1]!, m[2]!, m[3]!];
    }
    for (const v of data.vips) addToSet(this.vips, v.family, v.words, key(v.protocol, v.port));
    for (const r of data.marks) {
      const [w0, w1, w2, w3] = r.words;
      const list = this.marks.get(r.family, w0, w1, w2, w3);
      if (list) list.push(r);
      else this.marks.set(r.family, w0, w1, w2, w3, [r]);
    }
    for (const n of data.natServers) addToSet(this.nat, n.family, n.words, key(n.protocol, n.port));
    for (const t of data.tunnels) {
      const [w0, w1, w2, w3] = t.words;
      const list = this.tunnels.get(t.family, w0, w1, w2, w3);
      if (list) list.push({ type: t.type, port: t.port });
      else this.tunnels.set(t.family, w0, w1, w2, w3, [{ type: t.type, port: t.port }]);
    }
    for (const o of data.ownedVips) this.owned.set(o.family, o.words[0], o.words[1], o.words[2], o.words[3], true);
    for (const l of data.local) this.local.set(l.family, l.words[0], l.words[1], l.words[2], l.words[3], true);
  }

  get empty(): boolean {
    return this.data.vips.length === 0 && this.data.marks.length === 0;
  }

  /**
   * A client packet to (daddr, protocol, dport): -1 when no carried service covers it, else the
   * firewall mark to look the service up with (0 for address services). Mark rules come first,
   * as the kernel looks fwmark services up first.
   */
  matchIn(family: number, protocol: number, d0: number, d1: number, d2: number, d3: number, dport: number): number {
    const rules = this.marks.get(family, d0, d1, d2, d3);
    if (rules !== undefined) {
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        if (r.protocol === protocol && dport >= r.portLo && dport <= r.portHi) return r.mark;
      }
    }
    const ports = this.vips.get(family, d0, d1, d2, d3);
    if (ports === undefined) return -1;
    return ports.has(key(protocol, dport)) || ports.has(key(protocol, 0)) ? 0 : -1;
  }

  /** Whether the plane owns every packet to this address (a VIP the host has not configured). */
  ownsAddress(family: number, d0: number, d1: number, d2: number, d3: number): boolean {
    return this.owned.get(family, d0, d1, d2, d3) === true;
  }

  /** A packet from (saddr, protocol, sport) that may be a NAT real server's reply. */
  matchNatServer(family: number, protocol: number, s0: number, s1: number, s2: number, s3: number, sport: number): boolean {
    const ports = this.nat.get(family, s0, s1, s2, s3);
    return ports !== undefined && (ports.has(key(protocol, sport)) || ports.has(key(protocol, ServedIndex.ANY)));
  }

  isNatServerAddress(family: number, s0: number, s1: number, s2: number, s3: number): boolean {
    return this.nat.get(family, s0, s1, s2, s3) !== undefined;
  }

  /** The tunnel real server a quoted outer packet (protocol, daddr, UDP dport) was sent to, or undefined. */
  tunnelFor(family: number, protocol: number, d0: number, d1: number, d2: number, d3: number, dport: number): { type: number; port: number } | undefined {
    const list = this.tunnels.get(family, d0, d1, d2, d3);
    if (!list) return undefined;
    for (const t of list) {
      if (t.type === TUN_TYPE_GUE ? protocol === IPPROTO_UDP && dport === t.port : t.type === TUN_TYPE_GRE ? protocol === 47 : t.type === TUN_TYPE_IPIP && (protocol === 4 || protocol === 41)) {
        return t;
      }
    }
    return undefined;
  }

  isLocal(family: number, w0: number, w1: number, w2: number, w3: number): boolean {
    return this.local.get(family, w0, w1, w2, w3) === true;
  }

  /** Whether an address is a health-check probe source (virtual paths). */
  isProbeAddr(family: number, w0: number, w1: number, w2: number, w3: number): boolean {
    if (family === 4) {
      const p = this.probe4;
      return p !== null && (w0 & p[1]) >>> 0 === p[0];
    }
    const p = this.probe6;
    return p !== null && (w0 & p[4]) >>> 0 === p[0] && (w1 & p[5]) >>> 0 === p[1] && (w2 & p[6]) >>> 0 === p[2] && (w3 & p[7]) >>> 0 === p[3];
  }
}

function addToSet(m: AddrMap<Set<number>>, family: number, w: Words, k: number): void {
  const s = m.get(family, w[0], w[1], w[2], w[3]);
  if (s) s.add(k);
  else m.set(family, w[0], w[1], w[2], w[3], new Set([k]));
}
