// Link-layer neighbours of the packet plane: ARP (IPv4) and neighbour discovery (IPv6) done by
// the plane itself, since the kernel's own neighbour table is not used for frames the plane
// sends. A cache with the kernel's states and timers (INCOMPLETE, REACHABLE, STALE, DELAY,
// PROBE, FAILED, PERMANENT), seeded from the kernel's table (`ip -j neigh`), and the answers
// the director owes for virtual addresses it serves but has not configured (ARP replies,
// neighbour advertisements, gratuitous announcements).
//
// Engines read resolved next hops from `NextHops`, a table of ids -> (port, MAC, state) that can
// live in shared memory, so worker threads read what the owner thread resolved.

import {
  ARPOP_REPLY,
  ARPOP_REQUEST,
  buildArpReplyTo,
  buildArpRequest,
  buildNeighborAdvert,
  buildNeighborAdvertReply,
  buildNeighborSolicit,
  ICMPV6_NDISC_NA,
  ICMPV6_NDISC_NS,
  ND_NA_OVERRIDE,
  ND_NA_SOLICITED,
  type PacketInfo,
  parseNeighborDiscovery,
  rd32,
} from '../../codec/index.js';
import { IpAddr } from '../../core/addr.js';
import { AddrMap } from './addr-map.js';

/** Next-hop states as engines see them. */
export const NH_INCOMPLETE = 0;
export const NH_VALID = 1;
export const NH_FAILED = 2;

const NH_STRIDE = 2; // Int32: state, port
const MAC_STRIDE = 8;

/** Resolved next hops by id: state, the port to send on, the MAC to send to. */
export class NextHops {
  readonly meta: Int32Array;
  readonly macs: Uint8Array;
  readonly capacity: number;

  constructor(capacity = 8192, buffers?: { meta: SharedArrayBuffer | ArrayBuffer; macs: SharedArrayBuffer | ArrayBuffer }) {
    this.capacity = capacity;
    this.meta = new Int32Array(buffers?.meta ?? new ArrayBuffer(capacity * NH_STRIDE * 4));
    this.macs = new Uint8Array(buffers?.macs ?? new ArrayBuffer(capacity * MAC_STRIDE));
  }

  static shared(capacity = 8192): NextHops {
    return new NextHops(capacity, { meta: new SharedArrayBuffer(capacity * NH_STRIDE * 4), macs: new SharedArrayBuffer(capacity * MAC_STRIDE) });
  }

  buffers(): { meta: ArrayBufferLike; macs: ArrayBufferLike } {
    return { meta: this.meta.buffer, macs: this.macs.buffer };
  }

  state(id: number): number {
    return Atomics.load(this.meta, id * NH_STRIDE);
  }
  port(id: number): number {
    return this.meta[id * NH_STRIDE + 1]!;
  }
  /** Offset of the 6-byte MAC of `id` in `macs`. */
  macOff(id: number): number {
    return id * MAC_STRIDE;
  }

  set(id: number, state: number, port: number, mac?: Uint8Array, macOff = 0): void {
    if (mac) this.macs.set(mac.subarray(macOff, macOff + 6), id * MAC_STRIDE);
    this.meta[id * NH_STRIDE + 1] = port;
    // The state last: a reader that sees VALID sees the MAC written before it.
    Atomics.store(this.meta, id * NH_STRIDE, state);
  }
}

export type NeighbourState = 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'permanent';

export interface Neighbour {
  id: number;
  port: number;
  addr: IpAddr;
  state: NeighbourState;
  mac: Uint8Array;
  /** When the state was entered (ms), and when the next timer action is due. */
  since: number;
  due: number;
  probes: number;
  /** Used since the last tick (a STALE entry in use moves to DELAY). */
  used: boolean;
}

/** Kernel defaults (net.ipv4.neigh.default.*), in ms. */
export const NEIGH_TIMING = {
  reachable: 30_000,
  retrans: 1_000,
  delayFirstProbe: 5_000,
  probes: 3,
  /** A failed entry is tried again when used after this long. */
  failedRetry: 1_000,
  /** Unused stale or failed entries are forgotten after this long... */
  gcStale: 60_000,
  /** ...when the table holds more than this many (gc_thresh1). */
  gcThreshold: 128,
};

export interface PortFacts {
  index: number;
  name: string;
  mac: Uint8Array;
}

export interface NeighbourCacheOptions {
  nexthops: NextHops;
  ports: PortFacts[];
  now: () => number;
  /** Sends a frame the cache built (ARP/ND request or answer) on a port. */
  send: (port: number, frame: Uint8Array, len: number) => void;
  /** The address to solicit from on a port toward a target (null: ARP probe from 0.0.0.0 / ::). */
  sourceFor: (port: number, target: IpAddr) => IpAddr | null;
  /** A next hop became usable (flush what waits for it) or failed. */
  onChange?: (id: number, state: number) => void;
}

interface KernelNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}

function macFromText(t: string): Uint8Array | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(t);
  return m ? Uint8Array.from(m.slice(1, 7).map((x) => Number.parseInt(x, 16))) : null;
}

export class NeighbourCache {
  private readonly byPort: AddrMap<Neighbour>[];
  private readonly byId: (Neighbour | undefined)[] = [];
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private live = 0;
  private readonly frame = new Uint8Array(128);
  /** Virtual addresses to answer ARP/NS for, per port (the ones the host has not configured). */
  private answer: AddrMap<true>[];

  constructor(private readonly o: NeighbourCacheOptions) {
    this.byPort = o.ports.map(() => new AddrMap<Neighbour>());
    this.answer = o.ports.map(() => new AddrMap<true>());
  }

  /** Addresses to answer for on every port; returns the ones that are new (to announce). */
  setAnswered(addrs: IpAddr[]): IpAddr[] {
    const fresh: IpAddr[] = [];
    const next = this.o.ports.map(() => new AddrMap<true>());
    for (const a of addrs) {
      for (let p = 0; p < next.length; p++) {
        next[p]!.set(a.family, a.w0, a.w1, a.w2, a.w3, true);
        if (p === 0 && !this.answer[0]?.get(a.family, a.w0, a.w1, a.w2, a.w3)) fresh.push(a);
      }
    }
    this.answer = next;
    return fresh;
  }

  answers(family: number, w0: number, w1: number, w2: number, w3: number, port: number): boolean {
    return this.answer[port]?.get(family, w0, w1, w2, w3) === true;
  }

  /** The neighbour entry for an address on a port; starts resolving it when unknown. */
  resolve(port: number, family: number, w0: number, w1 = 0, w2 = 0, w3 = 0): Neighbour | null {
    const map = this.byPort[port];
    if (!map) return null;
    const n = map.get(family, w0, w1, w2, w3);
    if (!n) {
      const created = this.create(port, new IpAddr(family as 4 | 6, w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0), this.o.now());
      this.solicit(created, false);
      return created;
    }
    this.touch(n);
    return n;
  }

  /** The next-hop id for an address on a port (-1 for an unknown port). */
  idFor(port: number, family: number, w0: number, w1 = 0, w2 = 0, w3 = 0): number {
    return this.resolve(port, family, w0, w1, w2, w3)?.id ?? -1;
  }

  get(id: number): Neighbour | undefined {
    return this.byId[id];
  }

  /** Whether a neighbour object a caller kept is still the live entry for its id (marks it used). */
  touch(n: Neighbour): boolean {
    if (this.byId[n.id] !== n) return false;
    n.used = true;
    if (n.state === 'failed' && this.o.now() - n.since >= NEIGH_TIMING.failedRetry) {
      this.enter(n, 'incomplete', this.o.now());
      this.solicit(n, false);
    }
    return true;
  }

  entries(): Neighbour[] {
    return this.byId.filter((n): n is Neighbour => n !== undefined);
  }

  private create(port: number, addr: IpAddr, now: number): Neighbour {
    const id = this.freeIds.pop() ?? this.nextId++;
    if (id >= this.o.nexthops.capacity) throw new RangeError('neighbour table full');
    const n: Neighbour = { id, port, addr, state: 'incomplete', mac: new Uint8Array(6), since: now, due: now + NEIGH_TIMING.retrans, probes: 0, used: true };
    this.byPort[port]!.set(addr.family, addr.w0, addr.w1, addr.w2, addr.w3, n);
    this.byId[id] = n;
    this.live++;
    this.publish(n);
    return n;
  }

  private enter(n: Neighbour, state: NeighbourState, now: number): void {
    const before = n.state;
    n.state = state;
    n.since = now;
    n.probes = 0;
    n.due =
      state === 'reachable'
        ? now + NEIGH_TIMING.reachable
        : state === 'delay'
          ? now + NEIGH_TIMING.delayFirstProbe
          : state === 'incomplete' || state === 'probe'
            ? now + NEIGH_TIMING.retrans
            : state === 'permanent'
              ? Number.POSITIVE_INFINITY
              : now + NEIGH_TIMING.gcStale;
    const wasValid = nhState(before) === NH_VALID;
    this.publish(n);
    const nowState = nhState(state);
    if (nowState !== NH_INCOMPLETE && (nowState !== NH_VALID || !wasValid)) this.o.onChange?.(n.id, nowState);
  }

  private publish(n: Neighbour): void {
    this.o.nexthops.set(n.id, nhState(n.state), n.port, n.mac, 0);
  }

  /** Sends a request for n: broadcast (resolving) or unicast to the known MAC (probing). */
  private solicit(n: Neighbour, unicast: boolean): void {
    const port = this.o.ports[n.port];
    if (!port) return;
    const src = this.o.sourceFor(n.port, n.addr);
    let len: number;
    if (n.addr.family === 4) {
      len = buildArpRequest(this.frame, 0, this.frame.length, port.mac, src?.family === 4 ? src.w0 | 0 : 0, n.addr.w0 | 0);
      if (len > 0 && unicast) this.frame.set(n.mac, 0);
    } else {
      const s = src?.family === 6 ? src : new IpAddr(6, 0, 0, 0, 0);
      len = buildNeighborSolicit(this.frame, 0, this.frame.length, port.mac, s, n.addr);
    }
    n.probes++;
    if (len > 0) this.o.send(n.port, this.frame, len);
  }

  /** Records what a frame said about `addr` (an ARP/NA answer or a request's sender). */
  learn(port: number, addr: IpAddr, mac: Uint8Array, macOff: number, confirmed: boolean, create: boolean): void {
    const map = this.byPort[port];
    if (!map) return;
    const now = this.o.now();
    let n = map.get(addr.family, addr.w0, addr.w1, addr.w2, addr.w3);
    if (!n) {
      if (!create) return;
      n = this.create(port, addr, now);
    }
    if (n.state === 'permanent') return;
    let same = true;
    for (let i = 0; i < 6; i++) if (n.mac[i] !== mac[macOff + i]) same = false;
    if (!same) n.mac.set(mac.subarray(macOff, macOff + 6));
    if (confirmed) this.enter(n, 'reachable', now);
    else if (n.state === 'incomplete' || n.state === 'failed' || !same) this.enter(n, 'stale', now);
  }

  /**
   * An ARP frame received on `port` (parsed into info): learns the sender, answers requests
   * for the addresses we answer for. Returns true when it sent an answer.
   */
  handleArp(port: number, buf: Uint8Array, info: PacketInfo): boolean {
    const senderIp = info.arpSenderIp;
    const shaOff = info.l3off + 8;
    const target = info.arpTargetIp;
    const forUs = this.answers(4, target, 0, 0, 0, port);
    if (senderIp !== 0) {
      // Replies and requests aimed at us confirm or create; others only refresh known entries.
      this.learn(port, new IpAddr(4, senderIp >>> 0), buf, shaOff, info.arpOp === ARPOP_REPLY, forUs || info.arpOp === ARPOP_REPLY);
    }
    if (info.arpOp !== ARPOP_REQUEST || !forUs || senderIp === target) return false;
    const p = this.o.ports[port];
    if (!p) return false;
    const len = buildArpReplyTo(this.frame, 0, this.frame.length, buf, info, p.mac);
    if (len > 0) this.o.send(port, this.frame, len);
    return len > 0;
  }

  /** A neighbour solicitation or advertisement: learn, and answer solicitations for our VIPs. */
  handleNd(port: number, buf: Uint8Array, info: PacketInfo): boolean {
    if (parseNeighborDiscovery(buf, info) < 0) return false;
    const t = info.ndTargetOff;
    const tw0 = rd32(buf, t);
    const tw1 = rd32(buf, t + 4);
    const tw2 = rd32(buf, t + 8);
    const tw3 = rd32(buf, t + 12);
    if (info.icmpType === ICMPV6_NDISC_NA) {
      if (info.ndLinkAddrOff >= 0) {
        this.learn(port, new IpAddr(6, tw0, tw1, tw2, tw3), buf, info.ndLinkAddrOff, (info.ndFlags & ND_NA_SOLICITED) !== 0, false);
      }
      return false;
    }
    if (info.icmpType !== ICMPV6_NDISC_NS) return false;
    const forUs = this.answers(6, tw0, tw1, tw2, tw3, port);
    const s = info.saddrOff;
    if (info.ndLinkAddrOff >= 0) {
      this.learn(port, new IpAddr(6, rd32(buf, s), rd32(buf, s + 4), rd32(buf, s + 8), rd32(buf, s + 12)), buf, info.ndLinkAddrOff, false, forUs);
    }
    if (!forUs) return false;
    const p = this.o.ports[port];
    if (!p) return false;
    const len = buildNeighborAdvertReply(this.frame, 0, this.frame.length, buf, info, p.mac, ND_NA_OVERRIDE);
    if (len > 0) this.o.send(port, this.frame, len);
    return len > 0;
  }

  /** Gratuitous ARP / unsolicited NA for an address we answer for, on every port. */
  announce(a: IpAddr): void {
    for (const p of this.o.ports) {
      let len: number;
      if (a.family === 4) len = buildArpRequest(this.frame, 0, this.frame.length, p.mac, a.w0 | 0, a.w0 | 0);
      else {
        const all = new IpAddr(6, 0xff020000, 0, 0, 1);
        len = buildNeighborAdvert(this.frame, 0, this.frame.length, p.mac, Uint8Array.of(0x33, 0x33, 0, 0, 0, 1), a, all, a, ND_NA_OVERRIDE);
      }
      if (len > 0) this.o.send(p.index, this.frame, len);
    }
  }

  /** Adds what the kernel knows (`ip -j neigh`) for the ports' interfaces, as STALE or PERMANENT. */
  seed(list: KernelNeigh[]): void {
    const now = this.o.now();
    for (const k of list) {
      const port = this.o.ports.find((p) => p.name === k.dev);
      const addr = IpAddr.tryParse(k.dst);
      const mac = k.lladdr ? macFromText(k.lladdr) : null;
      if (!port || !addr || !mac) continue;
      const st = k.state ?? [];
      if (st.includes('FAILED') || st.includes('INCOMPLETE') || st.includes('NOARP')) continue;
      const map = this.byPort[port.index]!;
      let n = map.get(addr.family, addr.w0, addr.w1, addr.w2, addr.w3);
      if (n && (n.state === 'reachable' || n.state === 'delay' || n.state === 'probe')) continue;
      if (!n) n = this.create(port.index, addr, now);
      n.mac.set(mac);
      this.enter(n, st.includes('PERMANENT') ? 'permanent' : 'stale', now);
    }
  }

  /** Timers: retransmissions, REACHABLE -> STALE, DELAY -> PROBE, failures, garbage collection. */
  tick(): void {
    const now = this.o.now();
    for (const n of this.byId) {
      if (!n || now < n.due) {
        if (n && n.state === 'stale' && n.used) this.enter(n, 'delay', now);
        if (n) n.used = false;
        continue;
      }
      switch (n.state) {
        case 'incomplete':
        case 'probe':
          if (n.probes >= NEIGH_TIMING.probes) this.enter(n, 'failed', now);
          else {
            this.solicit(n, n.state === 'probe');
            n.due = now + NEIGH_TIMING.retrans;
          }
          break;
        case 'reachable':
          this.enter(n, 'stale', now);
          break;
        case 'delay':
          this.enter(n, 'probe', now);
          this.solicit(n, true);
          break;
        case 'stale':
        case 'failed':
          if (n.used) {
            if (n.state === 'stale') this.enter(n, 'delay', now);
            else n.due = now + NEIGH_TIMING.gcStale;
          } else if (this.live > NEIGH_TIMING.gcThreshold) this.forget(n);
          else n.due = now + NEIGH_TIMING.gcStale;
          break;
        default:
          break;
      }
      n.used = false;
    }
  }

  private forget(n: Neighbour): void {
    this.byPort[n.port]?.delete(n.addr.family, n.addr.w0, n.addr.w1, n.addr.w2, n.addr.w3);
    this.byId[n.id] = undefined;
    this.live--;
    // The id is reused only after a while: an engine may still hold it for a queued frame.
    this.o.nexthops.set(n.id, NH_FAILED, n.port);
    setTimeout(() => this.freeIds.push(n.id), 10_000).unref();
  }
}

function nhState(s: NeighbourState): number {
  if (s === 'incomplete') return NH_INCOMPLETE;
  if (s === 'failed') return NH_FAILED;
  return NH_VALID;
}
