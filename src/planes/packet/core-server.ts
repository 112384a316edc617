// The core's side of the packet plane: in the thread that owns the Director, answers the
// engines' request records (records.ts). Each request is one packet: the Director decides it
// exactly as ip_vs_in / ip_vs_out would (scheduling, persistence, states, timers, counters),
// and the answer carries what the engine needs to transmit it: the method, the NAT address and
// port, the tunnel, and the next hop (route + neighbour, which this thread resolves).
//
// ICMP errors about connections (spec §7) are looked up without a state change and counted as
// the kernel counts them; errors about tunnel packets (§7.3) update the real server's path MTU.

import { IpAddr } from '../../core/addr.js';
import { CONN_F_TEMPLATE, FWD_DROUTE, FWD_MASK, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, TUN_TYPE_IPIP } from '../../core/constants.js';
import { type Director, VERDICT_ACCEPT, VERDICT_UNREACH } from '../../core/director.js';
import { Flow } from '../../core/flow.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_RST } from '../../core/proto/tcp.js';
import type { Dest } from '../../core/service.js';
import type { CoreLink } from './engine.js';
import type { Neighbour, NeighbourCache } from './neighbours.js';
import { A, Kind, NO_CONN, Q, REQ_STRIDE, RESP_STRIDE, Refusal, Verdict } from './records.js';
import type { HostRoutes, Route } from './routes.js';
import type { PinnedTarget } from './virtual-paths.js';

/** How long a path MTU learned from an ICMP error about a tunnel packet holds (ip_rt_mtu_expires). */
const PMTU_EXPIRES_MS = 600_000;

export interface CoreServerOptions {
  director: Director;
  routes: HostRoutes;
  neighbours: NeighbourCache;
  /** Port index of an attached interface by name, -1 when the plane is not attached to it. */
  portIndex: (dev: string) => number;
  /** MTU of an attached port. */
  portMtu: (port: number) => number;
  /**
   * Health-check probes (virtual paths): the port they come in on, and the real server a probe
   * the core did not carry must still reach (out of the table), or null.
   */
  probes?: { port: () => number; target: (f: Flow) => PinnedTarget | null };
}

/** The next hop toward a real server, kept per dest until routes change. */
interface DestHop {
  dest: Dest;
  generation: number;
  /** Verdict.Refused reason, NoRoute (-1) or 0 when usable. */
  refusal: number;
  neigh: Neighbour | null;
  mtu: number;
  src: IpAddr | null;
}

export class CoreServer implements CoreLink {
  private readonly d: Director;
  private readonly routes: HostRoutes;
  private readonly neigh: NeighbourCache;
  private readonly flow = new Flow();
  private destHops: (DestHop | undefined)[] = [];
  /** Path MTU toward tunnel real servers learned from frag-needed (§7.3), by dest. */
  private readonly pmtu = new Map<Dest, { mtu: number; until: number }>();
  // Result of the last hop() call (no object per packet).
  private hopNh = -1;
  private hopMtu = 0;
  private hopRefusal = 0;
  private accepting = true;

  constructor(private readonly o: CoreServerOptions) {
    this.d = o.director;
    this.routes = o.routes;
    this.neigh = o.neighbours;
  }

  resolve(reqs: Int32Array, resps: Int32Array, n: number): void {
    for (let j = 0; j < n; j++) {
      const b = j * REQ_STRIDE;
      const a = j * RESP_STRIDE;
      resps[a + A.NH] = -1;
      resps[a + A.METHOD] = 0;
      try {
        this.one(reqs, b, resps, a);
      } catch {
        resps[a + A.VERDICT] = Verdict.Drop;
      }
    }
  }

  private loadFlow(reqs: Int32Array, b: number): Flow {
    const f = this.flow;
    const fp = reqs[b + Q.FAMPROTO]!;
    f.family = (fp & 0xff) === 6 ? 6 : 4;
    f.protocol = fp >>> 8;
    f.s0 = reqs[b + Q.S0]! >>> 0;
    f.s1 = reqs[b + Q.S0 + 1]! >>> 0;
    f.s2 = reqs[b + Q.S0 + 2]! >>> 0;
    f.s3 = reqs[b + Q.S0 + 3]! >>> 0;
    f.sport = reqs[b + Q.SPORT]!;
    f.d0 = reqs[b + Q.D0]! >>> 0;
    f.d1 = reqs[b + Q.D0 + 1]! >>> 0;
    f.d2 = reqs[b + Q.D0 + 2]! >>> 0;
    f.d3 = reqs[b + Q.D0 + 3]! >>> 0;
    f.dport = reqs[b + Q.DPORT]!;
    f.mark = reqs[b + Q.MARK]! >>> 0;
    return f;
  }

  private one(reqs: Int32Array, b: number, res: Int32Array, a: number): void {
    const kind = reqs[b + Q.KIND]!;
    const f = this.loadFlow(reqs, b);
    const flags = reqs[b + Q.FLAGS]!;
    const len = reqs[b + Q.LEN]!;
    const c = this.d.conns;
    switch (kind) {
      case Kind.In: {
        if (!this.accepting && c.lookupIn(f.family, f.protocol, f.s0, f.s1, f.s2, f.s3, f.sport, f.d0, f.d1, f.d2, f.d3, f.dport) < 0) {
          res[a + A.VERDICT] = Verdict.Drop;
          return;
        }
        const cp = this.d.inPacket(f, flags, len);
        if (cp < 0) {
          const pr = this.o.probes;
          if (pr && (cp === VERDICT_UNREACH || cp === VERDICT_ACCEPT) && reqs[b + Q.PORT] === pr.port()) {
            const t = pr.target(f);
            if (t) {
              this.toPinned(t, res, a);
              return;
            }
          }
          res[a + A.VERDICT] = cp;
          if (cp !== VERDICT_ACCEPT) this.setSource(res, a, f.family, f.d0, f.d1, f.d2, f.d3);
          return;
        }
        this.toRealServer(cp, res, a);
        return;
      }
      case Kind.IcmpIn: {
        // The quoted reply's tuple, inverted: (client, cport) -> (vaddr, vport).
        const cp = c.lookupIn(f.family, f.protocol, f.s0, f.s1, f.s2, f.s3, f.sport, f.d0, f.d1, f.d2, f.d3, f.dport);
        if (cp < 0 || c.flags[cp]! & CONN_F_TEMPLATE) {
          res[a + A.VERDICT] = Verdict.Accept;
          return;
        }
        this.d.connBytes(cp, DIR_INPUT, 1, len);
        this.toRealServer(cp, res, a);
        return;
      }
      case Kind.Out: {
        const cp = this.d.outPacket(f, flags, len);
        if (cp >= 0 && (c.flags[cp]! & FWD_MASK) === FWD_MASQ) {
          this.toClient(cp, f, res, a);
          return;
        }
        if (cp < 0 && this.d.sysctl.nat_icmp_send && !(f.protocol === IPPROTO_TCP && flags & TCP_RST)) {
          // A NAT real server talking from its service port without a connection (§6.1).
          res[a + A.VERDICT] = Verdict.Unreach;
          const r = this.routes.lookup(f.family, f.s0, f.s1, f.s2, f.s3);
          const src = r ? this.routes.sourceFor(f.family as 4 | 6, r.dev, r) : null;
          if (src) this.setSource(res, a, src.family, src.w0, src.w1, src.w2, src.w3);
          else this.setSource(res, a, f.family, f.d0, f.d1, f.d2, f.d3);
          return;
        }
        this.routeTo(f.family, f.d0, f.d1, f.d2, f.d3, res, a);
        return;
      }
      case Kind.IcmpOut: {
        const cp = c.lookupOut(f.family, f.protocol, f.s0, f.s1, f.s2, f.s3, f.sport, f.d0, f.d1, f.d2, f.d3, f.dport);
        if (cp >= 0) this.d.connBytes(cp, DIR_OUTPUT, 1, len);
        if (cp >= 0 && (c.flags[cp]! & FWD_MASK) === FWD_MASQ) {
          this.toClient(cp, f, res, a);
          return;
        }
        this.routeTo(f.family, f.d0, f.d1, f.d2, f.d3, res, a);
        return;
      }
      case Kind.TunnelIcmp:
        this.tunnelError(reqs, b, f, res, a);
        return;
      case Kind.Route:
        this.routeTo(f.family, f.d0, f.d1, f.d2, f.d3, res, a);
        return;
      default:
        res[a + A.VERDICT] = Verdict.Drop;
    }
  }

  private setSource(res: Int32Array, a: number, fam: number, w0: number, w1: number, w2: number, w3: number): void {
    res[a + A.S0] = w0;
    res[a + A.S0 + 1] = w1;
    res[a + A.S0 + 2] = w2;
    res[a + A.S0 + 3] = w3;
    res[a + A.FAM] = fam;
  }

  /** The answer for a client packet of connection cp: method, rewrite data, next hop. */
  private toRealServer(cp: number, res: Int32Array, a: number): void {
    const c = this.d.conns;
    const method = c.flags[cp]! & FWD_MASK;
    if (method !== FWD_MASQ && method !== FWD_DROUTE && method !== FWD_TUNNEL) {
      res[a + A.VERDICT] = Verdict.Refused;
      res[a + A.METHOD] = Refusal.Method;
      return;
    }
    const o = cp * 4;
    const daf = c.daf[cp]!;
    const dest = this.d.connDest(cp);
    const hop = dest ? this.destHop(dest, method) : this.freshHop(daf, c.daddr[o]!, c.daddr[o + 1]!, c.daddr[o + 2]!, c.daddr[o + 3]!, method);
    if (hop.refusal !== 0) {
      res[a + A.VERDICT] = hop.refusal < 0 ? Verdict.NoRoute : Verdict.Refused;
      res[a + A.METHOD] = hop.refusal;
      return;
    }
    if (hop.neigh && !this.neigh.touch(hop.neigh)) {
      // The neighbour entry was forgotten: look it up again.
      if (dest) this.destHops[dest.id] = undefined;
      const again = dest ? this.destHop(dest, method) : hop;
      hop.neigh = again.neigh;
    }
    res[a + A.VERDICT] = cp;
    res[a + A.PORT] = c.dport[cp]!;
    let mtu = hop.mtu;
    if (method === FWD_TUNNEL && dest) {
      const p = this.pmtu.get(dest);
      if (p) {
        if (p.until < this.d.nowMs()) this.pmtu.delete(dest);
        else if (p.mtu < mtu) mtu = p.mtu;
      }
    }
    this.transmit(res, a, method, daf, c.daddr[o]!, c.daddr[o + 1]!, c.daddr[o + 2]!, c.daddr[o + 3]!, hop, mtu, dest);
  }

  /** What the engine needs to send toward a real server: method, address, next hop, MTU, tunnel. */
  private transmit(
    res: Int32Array,
    a: number,
    method: number,
    daf: number,
    w0: number,
    w1: number,
    w2: number,
    w3: number,
    hop: Omit<DestHop, 'dest' | 'generation'>,
    mtu: number,
    tun: { tunType: number; tunFlags: number; tunPort: number } | undefined,
  ): void {
    res[a + A.METHOD] = method;
    res[a + A.NH] = hop.neigh ? hop.neigh.id : -1;
    res[a + A.A0] = w0;
    res[a + A.A0 + 1] = w1;
    res[a + A.A0 + 2] = w2;
    res[a + A.A0 + 3] = w3;
    res[a + A.FAM] = daf;
    if (method === FWD_TUNNEL) {
      res[a + A.TUN] = (tun?.tunType ?? TUN_TYPE_IPIP) | ((tun?.tunFlags ?? 0) << 8);
      res[a + A.TUN_PORT] = tun?.tunPort ?? 0;
      const s = hop.src;
      res[a + A.S0] = s ? s.w0 : 0;
      res[a + A.S0 + 1] = s ? s.w1 : 0;
      res[a + A.S0 + 2] = s ? s.w2 : 0;
      res[a + A.S0 + 3] = s ? s.w3 : 0;
    }
    res[a + A.MTU] = mtu;
  }

  /**
   * A health-check probe to a real server out of the table (virtual-paths.ts): carried by its
   * method like a connection's packet, without an entry (nothing counted, no state).
   */
  private toPinned(t: PinnedTarget, res: Int32Array, a: number): void {
    const ad = t.addr;
    const hop = this.freshHop(ad.family, ad.w0, ad.w1, ad.w2, ad.w3, t.method);
    if (hop.refusal !== 0) {
      res[a + A.VERDICT] = hop.refusal < 0 ? Verdict.NoRoute : Verdict.Refused;
      res[a + A.METHOD] = hop.refusal;
      return;
    }
    res[a + A.VERDICT] = NO_CONN;
    res[a + A.PORT] = t.port;
    this.transmit(res, a, t.method, ad.family, ad.w0, ad.w1, ad.w2, ad.w3, hop, hop.mtu, t);
  }

  private destHop(dest: Dest, method: number): DestHop {
    const gen = this.routes.generation;
    const cached = this.destHops[dest.id];
    if (cached && cached.dest === dest && cached.generation === gen) return cached;
    const a = dest.addr;
    const h = this.freshHop(a.family, a.w0, a.w1, a.w2, a.w3, method);
    const hop: DestHop = { ...h, dest, generation: gen };
    this.destHops[dest.id] = hop;
    return hop;
  }

  /** Route and neighbour toward a real server (IPVS's per-dest route, __ip_vs_get_out_rt). */
  private freshHop(fam: number, w0: number, w1: number, w2: number, w3: number, method: number): Omit<DestHop, 'dest' | 'generation'> {
    const none = { refusal: -1, neigh: null, mtu: 0, src: null };
    if (this.routes.isLocal(fam, w0, w1, w2, w3)) return { ...none, refusal: Refusal.LocalServer };
    const r = this.routes.lookup(fam, w0, w1, w2, w3);
    if (r?.type !== 'unicast') return none;
    const port = this.o.portIndex(r.dev);
    if (port < 0) return { ...none, refusal: Refusal.NotAttached };
    // DR reaches the real server itself on the link (the kernel's "known next hop").
    if (method === FWD_DROUTE && r.gateway) return { ...none, refusal: Refusal.NotOnLink };
    const gw = r.gateway;
    const neigh = gw ? this.neigh.resolve(port, gw.family, gw.w0, gw.w1, gw.w2, gw.w3) : this.neigh.resolve(port, fam, w0, w1, w2, w3);
    const mtu = r.mtu || this.o.portMtu(port);
    const src = method === FWD_TUNNEL ? this.routes.sourceFor(fam as 4 | 6, r.dev, r, new IpAddr(fam as 4 | 6, w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0)) : null;
    return { refusal: 0, neigh, mtu, src };
  }

  /** The answer for a NAT real server's reply (or error) of connection cp: SNAT data and next hop to the client. */
  private toClient(cp: number, f: Flow, res: Int32Array, a: number): void {
    const c = this.d.conns;
    const o = cp * 4;
    this.hop(f.family, f.d0, f.d1, f.d2, f.d3);
    if (this.hopRefusal !== 0) {
      res[a + A.VERDICT] = this.hopRefusal < 0 ? Verdict.NoRoute : Verdict.Refused;
      res[a + A.METHOD] = this.hopRefusal;
      return;
    }
    res[a + A.VERDICT] = cp;
    res[a + A.METHOD] = FWD_MASQ;
    res[a + A.NH] = this.hopNh;
    res[a + A.MTU] = this.hopMtu;
    res[a + A.PORT] = c.vport[cp]!;
    res[a + A.A0] = c.vaddr[o]!;
    res[a + A.A0 + 1] = c.vaddr[o + 1]!;
    res[a + A.A0 + 2] = c.vaddr[o + 2]!;
    res[a + A.A0 + 3] = c.vaddr[o + 3]!;
    res[a + A.FAM] = c.af[cp]!;
  }

  private routeTo(fam: number, w0: number, w1: number, w2: number, w3: number, res: Int32Array, a: number): void {
    this.hop(fam, w0, w1, w2, w3);
    if (this.hopRefusal !== 0) {
      res[a + A.VERDICT] = this.hopRefusal < 0 ? Verdict.NoRoute : Verdict.Refused;
      res[a + A.METHOD] = this.hopRefusal;
      return;
    }
    res[a + A.VERDICT] = Verdict.Route;
    res[a + A.NH] = this.hopNh;
    res[a + A.MTU] = this.hopMtu;
  }

  /** Next hop toward any destination (clients): sets hopNh, hopMtu, hopRefusal. */
  private hop(fam: number, w0: number, w1: number, w2: number, w3: number): void {
    this.hopNh = -1;
    this.hopMtu = 0;
    const r: Route | null = this.routes.lookup(fam, w0, w1, w2, w3);
    if (r?.type !== 'unicast') {
      this.hopRefusal = -1;
      return;
    }
    const port = this.o.portIndex(r.dev);
    if (port < 0) {
      this.hopRefusal = Refusal.NotAttached;
      return;
    }
    const gw = r.gateway;
    const n = gw ? this.neigh.resolve(port, gw.family, gw.w0, gw.w1, gw.w2, gw.w3) : this.neigh.resolve(port, fam, w0, w1, w2, w3);
    this.hopRefusal = 0;
    this.hopNh = n ? n.id : -1;
    this.hopMtu = r.mtu || this.o.portMtu(port);
  }

  /**
   * §7.3: an ICMP error about a tunnel packet we sent, quoting the client's request (flow).
   * Frag-needed lowers the real server's path MTU; the client is told when its packet had DF
   * (frag-needed with the tunnel's inner MTU) and about other errors with their own type/code.
   */
  private tunnelError(reqs: Int32Array, b: number, f: Flow, res: Int32Array, a: number): void {
    const c = this.d.conns;
    const cp = c.lookupIn(f.family, f.protocol, f.s0, f.s1, f.s2, f.s3, f.sport, f.d0, f.d1, f.d2, f.d3, f.dport);
    if (cp < 0 || (c.flags[cp]! & FWD_MASK) !== FWD_TUNNEL) {
      res[a + A.VERDICT] = Verdict.Accept;
      return;
    }
    const tc = reqs[b + Q.FLAGS]!;
    const type = tc >>> 8;
    const code = tc & 0xff;
    const fragNeeded = type === 3 && code === 4;
    const dest = this.d.connDest(cp);
    let mtu = reqs[b + Q.LEN]!;
    if (fragNeeded) {
      if (dest && mtu >= 68) this.pmtu.set(dest, { mtu, until: this.d.nowMs() + PMTU_EXPIRES_MS });
      const overhead = tunnelOverhead(dest);
      const route = dest ? this.destHop(dest, FWD_TUNNEL).mtu : 0;
      if (route && route < mtu) mtu = route;
      // ip_vs_in_icmp: the client gets the inner MTU when there is room for one.
      mtu = mtu > 68 + overhead ? mtu - overhead : 68;
      if (!reqs[b + Q.MARK]) {
        res[a + A.VERDICT] = Verdict.Drop;
        return;
      }
    }
    this.hop(f.family, f.s0, f.s1, f.s2, f.s3);
    if (this.hopRefusal !== 0) {
      res[a + A.VERDICT] = Verdict.NoRoute;
      return;
    }
    this.d.connBytes(cp, DIR_OUTPUT, 1, 576);
    res[a + A.VERDICT] = cp;
    res[a + A.METHOD] = FWD_TUNNEL;
    res[a + A.NH] = this.hopNh;
    res[a + A.MTU] = mtu;
    // The client's packet was sent to the VIP: the error comes from there.
    this.setSource(res, a, f.family, f.d0, f.d1, f.d2, f.d3);
  }

  /** Drain: packets that would open a connection are dropped from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Forget cached next hops (routes or the table changed). */
  invalidate(): void {
    this.destHops = [];
  }
}

/** Outer header bytes of a dest's tunnel (20 for IPIP; GUE and GRE add theirs). */
function tunnelOverhead(dest: Dest | undefined): number {
  const outer = dest?.af === 6 ? 40 : 20;
  if (!dest) return outer;
  if (dest.tunType === 1) return outer + 8 + 4 + (dest.tunFlags & 2 ? 8 : 0);
  if (dest.tunType === 2) return outer + (dest.tunFlags & 1 ? 8 : 4);
  return outer;
}
