// Test helpers for the schedulers: a service driven the way the service table and the
// connection table drive it (dests inserted at the list head, hooks called after each change,
// loadChanged after every counter change), a deterministic clock and random source, flows, and
// a reader for ipvsadm -S rules.

import { IpAddr } from '../../../src/core/addr.js';
import {
  DEST_F_AVAILABLE,
  DEST_F_OVERLOAD,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
} from '../../../src/core/constants.js';
import fc from 'fast-check';
import { Flow } from '../../../src/core/flow.js';
import { Dest, Service } from '../../../src/core/service.js';
import '../../../src/core/schedulers/index.js';
import { findScheduler, type SchedulerContext, type SchedulerInstance, type SchedulerOps } from '../../../src/core/schedulers/scheduler.js';

/** Injected clock (ms) and a seeded random source (splitmix32). */
export class TestContext implements SchedulerContext {
  time = 0;
  sysctl = { lblc_expiration: 24 * 3600, lblcr_expiration: 24 * 3600 };
  private state: number;
  /** How many 32-bit random numbers were drawn. */
  draws = 0;

  constructor(seed = 1) {
    this.state = seed >>> 0;
  }

  now(): number {
    return this.time;
  }

  random32(): number {
    this.draws++;
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
}

export interface ServiceOptions {
  af?: 4 | 6;
  protocol?: number;
  vip?: string;
  port?: number;
  flags?: number;
  seed?: number;
}

/** A service with one scheduler, changed through the same hooks the director uses. */
export class TestService {
  readonly svc: Service;
  readonly ctx: TestContext;
  sched: SchedulerInstance;
  private readonly flowRecord = new Flow();

  constructor(
    scheduler: string | SchedulerOps,
    opts: ServiceOptions = {},
    /** Dests present before the scheduler is bound: [address, port, weight] in add order. */
    initial: [string, number, number][] = [],
  ) {
    const af = opts.af ?? 4;
    this.svc = new Service(af, opts.protocol ?? IPPROTO_TCP, IpAddr.parse(opts.vip ?? (af === 4 ? '192.0.2.1' : '2001:db8::1')), opts.port ?? 80, 0);
    this.svc.flags = opts.flags ?? 0;
    this.ctx = new TestContext(opts.seed ?? 1);
    for (const [addr, port, weight] of initial) this.link(addr, port, weight);
    this.sched = TestService.ops(scheduler).init(this.svc, this.ctx);
  }

  static ops(scheduler: string | SchedulerOps): SchedulerOps {
    if (typeof scheduler !== 'string') return scheduler;
    const ops = findScheduler(scheduler);
    if (!ops) throw new Error(`no scheduler ${scheduler}`);
    return ops;
  }

  private link(addr: string, port: number, weight: number): Dest {
    const d = new Dest(this.svc, IpAddr.parse(addr), port);
    d.weight = weight;
    d.lastWeight = weight; // on add the kernel copies the weight even when it is 0
    d.flags = DEST_F_AVAILABLE;
    this.svc.dests.unshift(d);
    this.svc.reindex();
    return d;
  }

  /** ipvsadm -a: the new dest goes to the list head, then add_dest. */
  add(addr: string, port = 80, weight = 1): Dest {
    const d = this.link(addr, port, weight);
    this.sched.addDest(d);
    return d;
  }

  /** ipvsadm -d: unlink, clear AVAILABLE, then del_dest. */
  del(d: Dest): void {
    this.svc.dests.splice(d.listPos, 1);
    this.svc.reindex();
    d.flags &= ~DEST_F_AVAILABLE;
    d.listPos = -1;
    this.sched.delDest(d);
  }

  /** ipvsadm -e with a new weight (last_weight kept when the weight is 0). */
  setWeight(d: Dest, weight: number): void {
    d.weight = weight;
    if (weight !== 0) d.lastWeight = weight;
    this.sched.updDest(d);
  }

  /** The connection table set or cleared OVERLOAD. */
  setOverload(d: Dest, on: boolean): void {
    d.flags = on ? d.flags | DEST_F_OVERLOAD : d.flags & ~DEST_F_OVERLOAD;
    this.sched.loadChanged?.(d);
  }

  /** The connection table changed a dest's counters. */
  setConns(d: Dest, active: number, inactive: number): void {
    d.activeconns = active;
    d.inactconns = inactive;
    this.sched.loadChanged?.(d);
  }

  /** ipvsadm -E -s: bind a (new) scheduler to the filled service. */
  rebind(scheduler: string | SchedulerOps): void {
    const next = TestService.ops(scheduler).init(this.svc, this.ctx);
    this.sched.done();
    this.sched = next;
  }

  flow(src: string, sport: number, dst?: string, dport?: number, protocol?: number): Flow {
    const f = this.flowRecord;
    f.protocol = protocol ?? this.svc.protocol;
    f.setSource(IpAddr.parse(src), sport);
    f.setDest(dst ? IpAddr.parse(dst) : this.svc.addr, dport ?? this.svc.port);
    return f;
  }

  pick(src = '198.51.100.1', sport = 40000, dst?: string, dport?: number): Dest | null {
    return this.sched.schedule(this.flow(src, sport, dst, dport));
  }

  /** Schedule and account the new connection as the connection table would. */
  connect(kind: 'active' | 'inactive', src = '198.51.100.1', sport = 40000, dst?: string): Dest | null {
    const d = this.pick(src, sport, dst);
    if (d) {
      if (kind === 'active') this.setConns(d, d.activeconns + 1, d.inactconns);
      else this.setConns(d, d.activeconns, d.inactconns + 1);
    }
    return d;
  }

  get dests(): Dest[] {
    return this.svc.dests;
  }
}

/** A service as an `ipvsadm -S -n` listing describes it, built in the listing's order. */
export interface RulesService {
  t: TestService;
  byAddr: Map<string, Dest>;
  protocol: number;
  persistent: boolean;
  netmask: number;
  onePacket: boolean;
}

export function serviceFromRules(lines: string[], overrides: { scheduler?: SchedulerOps } = {}): RulesService {
  const head = lines[0]!.split(/\s+/);
  if (head[0] !== '-A') throw new Error(`expected -A: ${lines[0]}`);
  const protocol = head[1] === '-u' ? IPPROTO_UDP : IPPROTO_TCP;
  const [vip, vport] = head[2]!.split(':') as [string, string];
  let sched = 'wlc';
  let flags = 0;
  let netmask = 0xffffffff;
  for (let i = 3; i < head.length; i++) {
    const opt = head[i]!;
    if (opt === '-s') sched = head[++i]!;
    else if (opt === '-p') {
      flags |= SVC_F_PERSISTENT;
      if (head[i + 1] && !head[i + 1]!.startsWith('-')) i++;
    } else if (opt === '-M') {
      const m = IpAddr.parse(head[++i]!);
      netmask = m.w0;
    } else if (opt === '-o') flags |= SVC_F_ONEPACKET;
    else if (opt === '-b') {
      for (const f of head[++i]!.split(',')) {
        if (f.endsWith('-fallback')) flags |= SVC_F_SCHED1;
        else if (f.endsWith('-port')) flags |= SVC_F_SCHED2;
        else throw new Error(`unknown sched flag ${f}`);
      }
    } else throw new Error(`unknown option ${opt}`);
  }
  const t = new TestService(overrides.scheduler ?? sched, { protocol, vip, port: Number(vport), flags });
  const byAddr = new Map<string, Dest>();
  for (const line of lines.slice(1)) {
    const w = line.split(/\s+/);
    if (w[0] !== '-a') throw new Error(`expected -a: ${line}`);
    const [addr, port] = w[w.indexOf('-r') + 1]!.split(':') as [string, string];
    const wi = w.indexOf('-w');
    const weight = wi >= 0 ? Number(w[wi + 1]) : 1;
    byAddr.set(addr, t.add(addr, Number(port), weight));
  }
  return { t, byAddr, protocol, persistent: (flags & SVC_F_PERSISTENT) !== 0, netmask, onePacket: (flags & SVC_F_ONEPACKET) !== 0 };
}

/** Real server name in the golden runs: 198.19.0.1n is rsn. */
export function rsName(d: Dest | null): string | null {
  if (!d) return null;
  const s = d.addr.toString();
  const m = /^198\.19\.0\.1(\d)$/.exec(s);
  return m ? `rs${m[1]}` : s;
}

// Linear oracles: the kernel's scans as written in ip_vs_*.c, with BigInt products and C int
// semantics, and random event sequences to drive a service with.

export const overloaded = (d: Dest) => (d.flags & DEST_F_OVERLOAD) !== 0;
/** The kernel's int ip_vs_dest_conn_overhead (wrapping) as BigInt. */
export const ohInt = (d: Dest) => BigInt.asIntN(32, BigInt(d.activeconns) * 256n + BigInt(d.inactconns));
const activePlusOne = (d: Dest) => BigInt.asIntN(32, BigInt(d.activeconns) + 1n);
const w = (d: Dest) => BigInt(d.weight);

/** The wlc/sed loop: first non-overloaded dest with weight > 0, then strictly less loaded. */
function weightedScan(dests: Dest[], oh: (d: Dest) => bigint): Dest | null {
  let least: Dest | null = null;
  let loh = 0n;
  for (const d of dests) {
    if (!least) {
      if (!overloaded(d) && d.weight > 0) {
        least = d;
        loh = oh(d);
      }
      continue;
    }
    if (overloaded(d)) continue;
    const doh = oh(d);
    if (loh * w(d) > doh * w(least)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

export const ORACLES: Record<string, (dests: Dest[]) => Dest | null> = {
  lc(dests) {
    let least: Dest | null = null;
    let loh = 0n;
    for (const d of dests) {
      if (overloaded(d) || d.weight === 0) continue;
      const doh = BigInt.asUintN(32, ohInt(d)); // unsigned int in ip_vs_lc.c
      if (!least || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  },
  wlc: (dests) => weightedScan(dests, ohInt),
  sed: (dests) => weightedScan(dests, activePlusOne),
  nq(dests) {
    let least: Dest | null = null;
    let loh = 0n;
    for (const d of dests) {
      if (overloaded(d) || d.weight === 0) continue;
      const doh = activePlusOne(d);
      if (d.activeconns === 0) return d;
      if (!least || loh * w(d) > doh * w(least)) {
        least = d;
        loh = doh;
      }
    }
    return least;
  },
  fo(dests) {
    let best: Dest | null = null;
    let hw = 0;
    for (const d of dests) {
      if (!overloaded(d) && d.weight > hw) {
        best = d;
        hw = d.weight;
      }
    }
    return best;
  },
  ovf(dests) {
    let best: Dest | null = null;
    let hw = 0;
    for (const d of dests) {
      const dw = d.weight;
      if (overloaded(d) || d.activeconns > dw || dw === 0) continue;
      if (!best || dw > hw) {
        best = d;
        hw = dw;
      }
    }
    return best;
  },
};

export type Event =
  | { t: 'add'; weight: number }
  | { t: 'del'; i: number }
  | { t: 'weight'; i: number; weight: number }
  | { t: 'overload'; i: number; on: boolean }
  | { t: 'conns'; i: number; active: number; inactive: number }
  | { t: 'bind'; active: boolean }
  | { t: 'unbind'; i: number }
  | { t: 'rebind' };

const weightArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 5 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 1000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 31 - 20, max: 2 ** 31 - 1 }) },
);
const countArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 100000 }) },
  // Around the kernel's int limits: active*256 beyond 2^31 and 2^32, products beyond 2^53.
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 23 - 3, max: 2 ** 23 + 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 24 - 2, max: 2 ** 24 + 2 }) },
);
const index = fc.nat(1000);
export const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('add' as const), weight: weightArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('del' as const), i: index }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('weight' as const), i: index, weight: weightArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('overload' as const), i: index, on: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('conns' as const), i: index, active: countArb, inactive: countArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('bind' as const), active: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('unbind' as const), i: index }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rebind' as const) }) },
);

let addrSeq = 0;
/** Apply one event to the service as the director and the connection table would. */
export function apply(ts: TestService, e: Event, schedName: string, daddr?: string): void {
  const dests = ts.dests;
  const at = (i: number) => dests[i % dests.length]!;
  switch (e.t) {
    case 'add':
      addrSeq = (addrSeq + 1) % 60000;
      ts.add(`10.${(addrSeq >> 8) & 255}.${addrSeq & 255}.1`, 80 + (addrSeq % 7), e.weight);
      break;
    case 'del':
      if (dests.length) ts.del(at(e.i));
      break;
    case 'weight':
      if (dests.length) ts.setWeight(at(e.i), e.weight);
      break;
    case 'overload':
      if (dests.length) ts.setOverload(at(e.i), e.on);
      break;
    case 'conns':
      if (dests.length) ts.setConns(at(e.i), e.active, e.inactive);
      break;
    case 'bind': {
      const d = ts.pick('198.51.100.1', 40000, daddr);
      if (d) ts.setConns(d, d.activeconns + (e.active ? 1 : 0), d.inactconns + (e.active ? 0 : 1));
      break;
    }
    case 'unbind':
      if (dests.length) {
        const d = at(e.i);
        if (d.activeconns > 0) ts.setConns(d, d.activeconns - 1, d.inactconns);
        else if (d.inactconns > 0) ts.setConns(d, d.activeconns, d.inactconns - 1);
      }
      break;
    case 'rebind':
      ts.rebind(schedName);
      break;
  }
}

