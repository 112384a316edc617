// The director core: the service table, the connection table, scheduling, persistence,
// protocol states, counters and timers, behind one pure object (no I/O, clock injected).
// Data planes call it for every new connection and packet; control code calls its management
// operations. The packet path follows ip_vs_in / ip_vs_out (spec ipvs-kernel.md §2, §3, §5).

import { IpAddr, maskV6 } from './addr.js';
import { type Clock, seededRandom32 } from './clock.js';
import { ConnTable } from './conn-table.js';
import {
  CONN_F_BACKUP_UPD_MASK,
  CONN_F_HASHED,
  CONN_F_INACTIVE,
  CONN_F_NOOUTPUT,
  CONN_F_ONE_PACKET,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
  CTPL_S_ASSURED,
  DEST_F_OVERLOAD,
  FWD_MASK,
  FWD_MASQ,
  IP_VS_VERSION_CODE,
  IPPROTO_IP,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
} from './constants.js';
import { fail } from './errors.js';
import type { Flow } from './flow.js';
import type {
  ConnInfo,
  DestInfo,
  DestSpec,
  InfoSnapshot,
  ServiceInfo,
  ServiceKeySpec,
  ServiceSpec,
  TimeoutsSpec,
} from './model.js';
import {
  SCTP_CID_ABORT,
  SCTP_CID_INIT,
  SCTP_DEFAULT_TIMEOUTS,
  SCTP_S_CLOSED,
  SCTP_S_ESTABLISHED,
  SCTP_S_INIT,
  SCTP_S_INIT1,
  SCTP_STATE_NAMES,
  sctpNextState,
  sctpStateActive,
} from './proto/sctp.js';
import {
  DIR_INPUT,
  DIR_INPUT_ONLY,
  DIR_OUTPUT,
  TCP_DEFAULT_TIMEOUTS,
  TCP_RST,
  TCP_S_CLOSE,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_SYN_RECV,
  TCP_S_SYNACK,
  TCP_S_TIME_WAIT,
  TCP_STATE_NAMES,
  TCP_SYN,
  tcpNextState,
  tcpStateActive,
} from './proto/tcp.js';
import type { SchedulerContext } from './schedulers/scheduler.js';
import type { Dest, Service } from './service.js';
import { ServiceTable, updateOverload } from './service-table.js';
import { ESTIMATOR_PERIOD_MS, Stats } from './stats.js';
import {
  establishedState,
  expandJiffies16,
  msToJiffies,
  SYNC_DEFAULT_TIMEOUT_MS,
  SYNC_HZ,
  SYNC_MAX_TIMEOUT_S,
  type SyncApplyResult,
  type SyncConnRecord,
  syncRateDecision,
  syncState,
} from './sync.js';
import { defaultSysctls, type Sysctls, setSysctl } from './sysctl.js';

/** Verdicts of the packet path when no connection carries the packet. */
export const VERDICT_ACCEPT = -1; // not ours: hand it to the local stack unchanged
export const VERDICT_DROP = -2; // drop silently
export const VERDICT_UNREACH = -3; // no real server: ICMP port unreachable to the client, drop

export const UDP_DEFAULT_TIMEOUT = 300;
/** Timeout of a fresh entry until its first state transition (3 s). */
const CONN_INIT_TIMEOUT_MS = 3000;
/** How long an expiring entry that still controls others is kept (60 s). */
const CONTROL_POSTPONE_MS = 60_000;
const DEFENSE_PERIOD_MS = 1000;
const TRASH_SWEEP_MS = 60_000;
/**
 * How often schedulers' tick() runs. lblc/lblcr keep their own 60 s garbage-collection times
 * (the kernel's CHECK_EXPIRE_INTERVAL) and only need to be asked often enough to be on time.
 */
export const SCHED_TICK_MS = 1000;

export interface DirectorOptions {
  /** Milliseconds; the core never reads the system clock. */
  now: Clock;
  /** 32-bit random numbers (twos, drop_entry); seeded by default for determinism. */
  random32?: () => number;
  /** Initial connection-table capacity (grows by doubling). */
  connCapacity?: number;
  /** Reported connection hash size: 2^connTabBits (ipvsadm's "size=4096"). */
  connTabBits?: number;
  /** Whether an address is local to the director (dest address checks). */
  isLocalAddress?: (a: IpAddr) => boolean;
  /** Free + buffer memory in pages, for the DoS defense strategies (default: plenty). */
  availableMemoryPages?: () => number;
  /** At most this many entries are expired per advance() call (default: unlimited). */
  expireBudget?: number;
}

/** Something a data plane wants to know about an entry that goes away. */
export type ConnExpireHook = (conn: number) => void;

/** A source address pinned to one real server (pinSource). */
interface SourcePin {
  af: 4 | 6;
  protocol: number;
  /** Source words 1..3 (word 0 is the map key). */
  s1: number;
  s2: number;
  s3: number;
  destAddr: IpAddr;
  destPort: number;
}

export class Director {
  readonly conns: ConnTable;
  readonly table: ServiceTable;
  readonly sysctl: Sysctls = defaultSysctls();
  readonly totalStats = new Stats();
  /**
   * Packets and entries the core refused, by reason: `noDest` (no real server: ICMP port
   * unreachable), `dropPacket` (the drop_packet defense), `destUnavailable` (a connection whose
   * real server was deleted, silently dropped), `dropEntry` (entries removed by the drop_entry
   * defense), `nodestFlush` (connections flushed by expire_nodest_conn).
   */
  readonly drops = { noDest: 0, dropPacket: 0, destUnavailable: 0, dropEntry: 0, nodestFlush: 0 };
  /** One hook told when an entry is freed (prefer addConnFreeListener: several parts listen). */
  onConnFree: ConnExpireHook | null = null;
  private readonly connFreeListeners: ConnExpireHook[] = [];
  /**
   * Set by a running sync master: called where the kernel calls ip_vs_sync_conn (end of the
   * IN path, and when an expiry is postponed) with the entry and its packet count.
   */
  syncMaster: ((conn: number, pkts: number) => void) | null = null;
  private readonly changeListeners: (() => void)[] = [];
  /** Pinned sources (pinSource), by the source's first word. */
  private readonly pins = new Map<number, SourcePin[]>();

  private readonly now: Clock;
  private readonly random32: () => number;
  private readonly availableMemoryPages: () => number;
  private readonly expireBudget: number;
  readonly connTabSize: number;
  /** ms, indexed by TCP state; ESTABLISHED and FIN_WAIT settable (--set). */
  private readonly tcpTimeouts: number[] = TCP_DEFAULT_TIMEOUTS.map((s) => s * 1000);
  private readonly sctpTimeouts: number[] = SCTP_DEFAULT_TIMEOUTS.map((s) => s * 1000);
  private udpTimeout = UDP_DEFAULT_TIMEOUT * 1000;
  /** secure_tcp in effect (defense table). */
  private secureTcp = false;
  private dropRate = 0;
  private dropCounter = 0;
  private dropEntryActive = false;
  private readonly todropCounter = new Int8Array(9);
  /** An ONE_PACKET entry to free before the next call (it lives for one packet only). */
  private pendingOps = -1;
  private nextEstimate: number;
  private nextDefense: number;
  private nextTrashSweep: number;
  private nextSchedTick: number;
  /** Dests unlinked while expire_nodest_conn was set: flush their connections. */
  private nodestFlush = false;
  private readonly expireCb = (i: number) => this.expire(i);

  constructor(opts: DirectorOptions) {
    this.now = opts.now;
    this.random32 = opts.random32 ?? seededRandom32();
    this.availableMemoryPages = opts.availableMemoryPages ?? (() => Number.MAX_SAFE_INTEGER);
    this.expireBudget = opts.expireBudget ?? Number.POSITIVE_INFINITY;
    this.connTabSize = 1 << (opts.connTabBits ?? 12);
    const t = this.now();
    this.conns = new ConnTable(opts.connCapacity ?? 4096, t, this.random32());
    const ctx: SchedulerContext = {
      now: this.now,
      random32: this.random32,
      sysctl: this.sysctl,
    };
    this.table = new ServiceTable(ctx, {
      destUnlinked: () => {
        if (this.sysctl.expire_nodest_conn) this.nodestFlush = true;
      },
    });
    if (opts.isLocalAddress) this.table.isLocalAddress = opts.isLocalAddress;
    this.nextEstimate = t + ESTIMATOR_PERIOD_MS;
    this.nextDefense = t + DEFENSE_PERIOD_MS;
    this.nextTrashSweep = t + TRASH_SWEEP_MS;
    this.nextSchedTick = t + SCHED_TICK_MS;
  }

  /** The injected clock's current time, in milliseconds. */
  nowMs(): number {
    return this.now();
  }

  // ======================================================================================
  // Management
  // ======================================================================================

  addService(spec: ServiceSpec): Service {
    const r = this.table.addService(spec);
    this.changed();
    return r;
  }

  editService(spec: ServiceSpec): Service {
    const r = this.table.editService(spec);
    this.changed();
    return r;
  }

  delService(key: ServiceKeySpec): void {
    this.table.delService(key);
    this.changed();
  }

  flush(): void {
    this.table.flush();
    this.changed();
  }

  addDest(key: ServiceKeySpec, spec: DestSpec): Dest {
    const r = this.table.addDest(key, spec);
    this.changed();
    return r;
  }

  editDest(key: ServiceKeySpec, spec: DestSpec): Dest {
    const r = this.table.editDest(key, spec);
    this.changed();
    return r;
  }

  delDest(key: ServiceKeySpec, spec: Pick<DestSpec, 'af' | 'addr' | 'port'>): void {
    this.table.delDest(key, spec);
    this.changed();
  }

  /** Be told when an entry is freed (data planes close what they hold for it); returns a remover. */
  addConnFreeListener(fn: ConnExpireHook): () => void {
    this.connFreeListeners.push(fn);
    return () => {
      const i = this.connFreeListeners.indexOf(fn);
      if (i >= 0) this.connFreeListeners.splice(i, 1);
    };
  }

  /** Be told after every change of the service table (planes reconcile their listeners). */
  onChange(cb: () => void): () => void {
    this.changeListeners.push(cb);
    return () => {
      const i = this.changeListeners.indexOf(cb);
      if (i >= 0) this.changeListeners.splice(i, 1);
    };
  }

  private changed(): void {
    for (const cb of this.changeListeners) cb();
  }

  /** `ipvsadm -Z`: one service and its dests, or everything including the totals. */
  zero(key?: ServiceKeySpec): void {
    if (key) {
      const svc = this.table.get(key);
      svc.stats.zero();
      for (const d of svc.dests) d.stats.zero();
      return;
    }
    for (const svc of this.table.services()) {
      svc.stats.zero();
      for (const d of svc.dests) d.stats.zero();
    }
    this.totalStats.zero();
  }

  /** `--set tcp tcpfin udp`: 0 leaves a value unchanged; new values apply at the next transition. */
  setTimeouts(t: TimeoutsSpec): void {
    for (const v of [t.tcp, t.tcpfin, t.udp]) {
      if (!Number.isInteger(v) || v < 0 || v > 2147483647 / 1000) fail('EINVAL', 'Invalid argument');
    }
    if (t.tcp) this.tcpTimeouts[TCP_S_ESTABLISHED] = t.tcp * 1000;
    if (t.tcpfin) this.tcpTimeouts[TCP_S_FIN_WAIT] = t.tcpfin * 1000;
    if (t.udp) this.udpTimeout = t.udp * 1000;
  }

  getTimeouts(): TimeoutsSpec {
    return {
      tcp: Math.floor(this.tcpTimeouts[TCP_S_ESTABLISHED]! / 1000),
      tcpfin: Math.floor(this.tcpTimeouts[TCP_S_FIN_WAIT]! / 1000),
      udp: Math.floor(this.udpTimeout / 1000),
    };
  }

  setSysctl(name: string, value: unknown): void {
    setSysctl(this.sysctl, name, value);
    if (name === 'expire_nodest_conn' && this.sysctl.expire_nodest_conn) this.nodestFlush = true;
  }

  info(): InfoSnapshot {
    const v = IP_VS_VERSION_CODE;
    return { version: `${v >> 16}.${(v >> 8) & 255}.${v & 255}`, connTabSize: this.connTabSize, numServices: this.table.size };
  }

  serviceInfos(): ServiceInfo[] {
    return [...this.table.services()].map((s) => serviceInfo(s));
  }

  serviceInfo(key: ServiceKeySpec): ServiceInfo {
    return serviceInfo(this.table.get(key));
  }

  /** Entries as /proc/net/ip_vs_conn lists them (templates included). */
  connInfos(): ConnInfo[] {
    const out: ConnInfo[] = [];
    const now = this.now();
    const c = this.conns;
    for (const i of c.entries()) {
      if (c.flags[i]! & CONN_F_ONE_PACKET && !c.isHashed(i) && c.isDue(i)) continue;
      out.push(this.connInfo(i, now));
    }
    return out;
  }

  connInfo(i: number, now = this.now()): ConnInfo {
    const c = this.conns;
    const af = c.af[i] as 4 | 6;
    const daf = c.daf[i] as 4 | 6;
    const proto = c.protocol[i]!;
    const template = (c.flags[i]! & CONN_F_TEMPLATE) !== 0;
    const addr = (col: Uint32Array, fam: 4 | 6) => new IpAddr(fam, col[i * 4]!, col[i * 4 + 1], col[i * 4 + 2], col[i * 4 + 3]).toString();
    return {
      af,
      protocol: proto,
      caddr: addr(c.caddr, af),
      cport: c.cport[i]!,
      // fwmark templates keep the mark in vaddr as an IPv4 number
      vaddr: template && proto === IPPROTO_IP ? addr(c.vaddr, 4) : addr(c.vaddr, af),
      vport: c.vport[i]!,
      daddr: addr(c.daddr, daf),
      dport: c.dport[i]!,
      daf,
      fwmark: c.fwmark[i]!,
      flags: c.flags[i]!,
      state: this.stateName(i),
      expiresMs: Math.max(0, c.expires[i]! - now),
      timeout: Math.floor(c.timeout[i]! / 1000),
      peName: '',
      peData: '',
    };
  }

  stateName(i: number): string {
    const c = this.conns;
    if (c.flags[i]! & CONN_F_TEMPLATE) return c.state[i]! & CTPL_S_ASSURED ? 'ASSURED' : 'NONE';
    const p = c.protocol[i];
    if (p === IPPROTO_TCP) return TCP_STATE_NAMES[c.state[i]!] ?? 'ERR!';
    if (p === IPPROTO_SCTP) return SCTP_STATE_NAMES[c.state[i]!] ?? 'ERR!';
    if (p === IPPROTO_UDP) return 'UDP';
    return 'NONE';
  }

  /** The dest an entry is bound to (undefined when unbound). */
  connDest(i: number): Dest | undefined {
    const id = this.conns.dest[i]!;
    return id < 0 ? undefined : this.table.destById[id];
  }

  // ======================================================================================
  // Packet path
  // ======================================================================================

  /**
   * A client → virtual-service packet (ip_vs_in): returns the entry that carries it (≥ 0) or
   * a verdict (VERDICT_*). `tcpFlags` are the TCP header flags (ignored for UDP; for SCTP the
   * chunk type of the first chunk), `len` the IP packet length for the byte counters.
   */
  inPacket(flow: Flow, tcpFlags: number, len: number): number {
    if (this.pendingOps >= 0) this.freeOps();
    const c = this.conns;
    const proto = flow.protocol;
    let cp = c.lookupIn(flow.family, proto, flow.s0, flow.s1, flow.s2, flow.s3, flow.sport, flow.d0, flow.d1, flow.d2, flow.d3, flow.dport);
    if (cp < 0 && c.count > 0) {
      // FTP data connections created without a client port (NO_CPORT) match port 0
      cp = c.lookupIn(flow.family, proto, flow.s0, flow.s1, flow.s2, flow.s3, 0, flow.d0, flow.d1, flow.d2, flow.d3, flow.dport);
    }
    if (cp >= 0 && this.isNewConn(proto, tcpFlags)) {
      let resched = false;
      const dest = this.connDest(cp);
      if (this.sysctl.expire_nodest_conn && dest && dest.weight === 0) {
        resched = true;
      } else if (this.sysctl.conn_reuse_mode !== 0 && this.newConnExpected(cp)) {
        resched = true;
      }
      if (resched) {
        if (c.nControl[cp] === 0) this.expireNowUnhashed(cp);
        cp = -1;
      }
    }
    if (cp >= 0) {
      const dest = this.connDest(cp);
      if (dest && !dest.available) {
        if (!this.sysctl.expire_nodest_conn) {
          this.drops.destUnavailable++;
          return VERDICT_DROP;
        }
        this.expireNowUnhashed(cp);
        cp = -1;
      }
    }
    if (cp < 0) {
      const r = this.connSchedule(flow, tcpFlags);
      if (r < 0) return r;
      cp = r;
    }
    this.inStats(cp, len);
    this.stateTransition(cp, DIR_INPUT, tcpFlags);
    const ops = (c.flags[cp]! & CONN_F_ONE_PACKET) !== 0;
    if (!ops) c.inPkts[cp] = (c.inPkts[cp]! + 1) >>> 0;
    if (this.syncMaster) {
      // OPS entries count as sync_threshold; the sync code bumps their template's in_pkts.
      this.syncMaster(cp, ops ? this.sysctl.sync_threshold[0] : c.inPkts[cp]!);
    } else if (ops) {
      const ct = c.control[cp]!;
      if (ct >= 0) c.inPkts[ct] = (c.inPkts[ct]! + 1) >>> 0;
    }
    this.put(cp);
    return cp;
  }

  /**
   * A real server → client reply seen by the director (ip_vs_out; NAT replies, or both
   * directions of a proxied connection): returns the entry or VERDICT_ACCEPT when none matches.
   */
  outPacket(flow: Flow, tcpFlags: number, len: number): number {
    if (this.pendingOps >= 0) this.freeOps();
    const cp = this.conns.lookupOut(flow.family, flow.protocol, flow.s0, flow.s1, flow.s2, flow.s3, flow.sport, flow.d0, flow.d1, flow.d2, flow.d3, flow.dport);
    if (cp < 0) return VERDICT_ACCEPT;
    this.outStats(cp, len);
    this.stateTransition(cp, DIR_OUTPUT, tcpFlags);
    this.put(cp);
    return cp;
  }

  /**
   * A packet of an entry the plane already holds (the proxy relays both directions of a
   * connection it owns): counters, state transition and timer, no lookup.
   */
  connPacket(cp: number, dir: typeof DIR_INPUT | typeof DIR_OUTPUT, tcpFlags: number, len: number): void {
    if (dir === DIR_INPUT) {
      this.inStats(cp, len);
      this.stateTransition(cp, DIR_INPUT, tcpFlags);
      this.conns.inPkts[cp] = (this.conns.inPkts[cp]! + 1) >>> 0;
    } else {
      this.outStats(cp, len);
      this.stateTransition(cp, DIR_OUTPUT, tcpFlags);
    }
    this.put(cp);
  }

  /** Count bytes of an entry without a state change or timer (bulk relay accounting). */
  connBytes(cp: number, dir: typeof DIR_INPUT | typeof DIR_OUTPUT, pkts: number, bytes: number): void {
    const dest = this.connDest(cp);
    if (!dest?.available) return;
    const svc = dest.svc;
    if (dir === DIR_INPUT) {
      dest.stats.inpkts += pkts;
      dest.stats.inbytes += bytes;
      svc.stats.inpkts += pkts;
      svc.stats.inbytes += bytes;
      this.totalStats.inpkts += pkts;
      this.totalStats.inbytes += bytes;
    } else {
      dest.stats.outpkts += pkts;
      dest.stats.outbytes += bytes;
      svc.stats.outpkts += pkts;
      svc.stats.outbytes += bytes;
      this.totalStats.outpkts += pkts;
      this.totalStats.outbytes += bytes;
    }
  }

  /** Drop an entry now, as the kernel's ip_vs_conn_del does (flush, DoS defense, planes). */
  dropConn(cp: number): void {
    const c = this.conns;
    if (c.af[cp] === 0) return;
    c.timeout[cp] = 0;
    c.disarm(cp);
    this.expire(cp);
  }

  private isNewConn(proto: number, flags: number): boolean {
    if (proto === IPPROTO_TCP) return (flags & TCP_SYN) !== 0;
    if (proto === IPPROTO_SCTP) return flags === SCTP_CID_INIT;
    return false;
  }

  /** is_new_conn_expected (conn_reuse_mode, spec §5.6). */
  private newConnExpected(cp: number): boolean {
    const c = this.conns;
    if (c.control[cp]! >= 0) return false;
    const p = c.protocol[cp];
    const st = c.state[cp]!;
    if (p === IPPROTO_TCP) {
      return st === TCP_S_TIME_WAIT || st === TCP_S_CLOSE || (this.sysctl.conn_reuse_mode & 2 && st === TCP_S_FIN_WAIT && (c.flags[cp]! & CONN_F_NOOUTPUT) !== 0) === true;
    }
    if (p === IPPROTO_SCTP) return st === SCTP_S_CLOSED;
    return false;
  }

  /**
   * Expire an entry at the next advance but make it invisible to lookups now. The kernel
   * re-inserts the new connection at the head of the hash chain, so lookups find the new one;
   * the old one keeps counting in its dest until its timer runs.
   */
  private expireNowUnhashed(cp: number): void {
    this.conns.unhash(cp);
    this.conns.expireNow(cp);
  }

  /** TCP/UDP/SCTP conn_schedule + ip_vs_schedule + ip_vs_leave. */
  private connSchedule(flow: Flow, tcpFlags: number): number {
    const proto = flow.protocol;
    if (proto === IPPROTO_TCP) {
      if (!(tcpFlags & TCP_SYN) || tcpFlags & TCP_RST) {
        if (!this.sysctl.sloppy_tcp || tcpFlags & TCP_RST) return VERDICT_ACCEPT;
      }
    } else if (proto === IPPROTO_SCTP) {
      if (tcpFlags === SCTP_CID_ABORT || (tcpFlags !== SCTP_CID_INIT && !this.sysctl.sloppy_sctp)) return VERDICT_ACCEPT;
    } else if (proto !== IPPROTO_UDP) {
      return VERDICT_ACCEPT;
    }
    const svc = this.table.lookup(flow.family, proto, flow.d0, flow.d1, flow.d2, flow.d3, flow.dport, flow.mark);
    if (!svc) return VERDICT_ACCEPT;
    if (this.pins.size > 0) {
      const pin = this.findPin(flow);
      if (pin) return this.pinnedConn(svc, flow, pin);
    }
    if (this.dropRate && this.todrop()) {
      this.drops.dropPacket++;
      return VERDICT_DROP;
    }
    // ip_vs_schedule
    if (flow.sport === 20) return VERDICT_ACCEPT; // never schedule active FTP data
    let cp: number;
    if (svc.persistent) {
      cp = this.schedPersist(svc, flow);
    } else {
      if (!svc.fwmark && flow.dport !== svc.port) return this.leave(svc, flow);
      const dest = svc.sched ? svc.sched.schedule(flow) : null;
      if (!dest) return this.leave(svc, flow);
      const flags = svc.flags & SVC_F_ONEPACKET && proto === IPPROTO_UDP ? CONN_F_ONE_PACKET : 0;
      cp = this.newConn(flow, flow.sport, flow.d0, flow.d1, flow.d2, flow.d3, flow.dport, dest, dest.port || flow.dport, flags, proto);
    }
    if (cp < 0) return this.leave(svc, flow);
    this.countConn(cp, svc);
    return cp;
  }

  private countConn(cp: number, svc: Service): void {
    this.connDest(cp)!.stats.conns++;
    svc.stats.conns++;
    this.totalStats.conns++;
  }

  // ---- Pinned sources (health checks via: virtual) ------------------------------------------
  // Not in the kernel. A data plane that carries health checks the clients' way (the packet
  // plane's probe sources) pins each probe source to the real server it checks: a new flow
  // from that source skips persistence, scheduling and the drop_packet defense, and becomes a
  // connection bound to that real server, as any client's would (same states, timers, counters).

  /**
   * Pins flows of `protocol` from `src` (words as in Flow: IPv4 in w0) to the real server
   * `dest`: a new connection from that source to a service that has `dest` (available) is bound
   * to it; to a service without it (removed, or another service), VERDICT_UNREACH. Returns the
   * function that unpins (existing connections are left to expire).
   */
  pinSource(af: 4 | 6, protocol: number, src: { w0: number; w1: number; w2: number; w3: number }, dest: { addr: IpAddr; port: number }): () => void {
    const key = src.w0 >>> 0;
    const pin: SourcePin = {
      af,
      protocol,
      s1: af === 4 ? 0 : src.w1 >>> 0,
      s2: af === 4 ? 0 : src.w2 >>> 0,
      s3: af === 4 ? 0 : src.w3 >>> 0,
      destAddr: dest.addr,
      destPort: dest.port,
    };
    const list = this.pins.get(key);
    if (list) list.unshift(pin);
    else this.pins.set(key, [pin]);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const l = this.pins.get(key);
      if (!l) return;
      const i = l.indexOf(pin);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.pins.delete(key);
    };
  }

  private findPin(flow: Flow): SourcePin | undefined {
    const list = this.pins.get(flow.s0 >>> 0);
    if (!list) return undefined;
    for (const p of list) {
      if (p.af === flow.family && p.protocol === flow.protocol && (p.af === 4 || (p.s1 === flow.s1 >>> 0 && p.s2 === flow.s2 >>> 0 && p.s3 === flow.s3 >>> 0))) return p;
    }
    return undefined;
  }

  private pinnedConn(svc: Service, flow: Flow, pin: SourcePin): number {
    const dest = svc.findDest(pin.destAddr, pin.destPort);
    if (!dest?.available) {
      this.drops.noDest++;
      return VERDICT_UNREACH;
    }
    const proto = flow.protocol;
    const dport = flow.dport === svc.port && dest.port !== 0 ? dest.port : flow.dport;
    const flags = svc.flags & SVC_F_ONEPACKET && proto === IPPROTO_UDP ? CONN_F_ONE_PACKET : 0;
    const cp = this.newConn(flow, flow.sport, flow.d0, flow.d1, flow.d2, flow.d3, flow.dport, dest, dport, flags, proto);
    this.countConn(cp, svc);
    return cp;
  }

  /** ip_vs_leave: the service exists but no real server was found. */
  private leave(svc: Service, flow: Flow): number {
    if (svc.port === 21 && flow.dport !== 21) return VERDICT_ACCEPT;
    this.drops.noDest++;
    return VERDICT_UNREACH;
  }

  /** ip_vs_sched_persist (spec §3.3). Returns the new connection or -1 (no dest). */
  private schedPersist(svc: Service, flow: Flow): number {
    const c = this.conns;
    const af = flow.family;
    // client network: address AND netmask (IPv6: prefix)
    let n0 = flow.s0;
    let n1 = flow.s1;
    let n2 = flow.s2;
    let n3 = flow.s3;
    if (af === 4) {
      n0 = (n0 & svc.netmask) >>> 0;
    } else {
      const m = maskV6(new IpAddr(6, n0, n1, n2, n3), svc.netmask);
      n0 = m.w0;
      n1 = m.w1;
      n2 = m.w2;
      n3 = m.w3;
    }
    const dport = flow.dport;
    let tproto: number = flow.protocol;
    let v0 = flow.d0;
    let v1 = flow.d1;
    let v2 = flow.d2;
    let v3 = flow.d3;
    let vport: number;
    if (dport === svc.port) {
      vport = svc.port === 21 ? 0 : dport;
    } else if (svc.fwmark) {
      tproto = IPPROTO_IP;
      v0 = svc.fwmark >>> 0;
      v1 = v2 = v3 = 0;
      vport = 0;
    } else {
      vport = 0; // port-0 service
    }
    let ct = c.lookupTemplate(af, tproto, n0, n1, n2, n3, 0, v0, v1, v2, v3, vport);
    let dest: Dest | undefined;
    if (ct >= 0 && this.templateValid(ct)) {
      dest = this.connDest(ct)!;
    } else {
      const d = svc.sched ? svc.sched.schedule(flow) : null;
      if (!d) return -1;
      dest = d;
      const tdport = dport === svc.port && svc.port !== 21 ? dest.port : 0;
      ct = this.allocEntry(af, tproto, n0, n1, n2, n3, 0, v0, v1, v2, v3, vport, dest, tdport, CONN_F_TEMPLATE, flow.mark);
      c.timeout[ct] = svc.timeout * 1000;
      c.hash(ct);
    }
    let cdport = dport;
    if (dport === svc.port && dest.port !== 0) cdport = dest.port;
    const flags = svc.flags & SVC_F_ONEPACKET && flow.protocol === IPPROTO_UDP ? CONN_F_ONE_PACKET : 0;
    const cp = this.newConn(flow, flow.sport, flow.d0, flow.d1, flow.d2, flow.d3, dport, dest, cdport, flags, flow.protocol);
    c.control[cp] = ct;
    c.nControl[ct]++;
    this.put(ct);
    return cp;
  }

  /** ip_vs_check_template: false (and the template disabled in place) when unusable. */
  private templateValid(ct: number): boolean {
    const dest = this.connDest(ct);
    if (dest?.available && !(this.sysctl.expire_quiescent_template && dest.weight === 0)) return true;
    // Re-key so that it never matches again; it expires by itself.
    const c = this.conns;
    if (c.isHashed(ct)) {
      c.unhash(ct);
      c.vport[ct] = 0xffff;
      c.dport[ct] = 0xffff;
      c.cport[ct] = 0;
      c.hash(ct);
    }
    return false;
  }

  private newConn(flow: Flow, cport: number, v0: number, v1: number, v2: number, v3: number, vport: number, dest: Dest, dport: number, flags: number, proto: number): number {
    const cp = this.allocEntry(flow.family, proto, flow.s0, flow.s1, flow.s2, flow.s3, cport, v0, v1, v2, v3, vport, dest, dport, flags, flow.mark);
    if (!(this.conns.flags[cp]! & CONN_F_ONE_PACKET)) this.conns.hash(cp);
    return cp;
  }

  /** ip_vs_conn_new + ip_vs_bind_dest. The entry is not hashed and its timer not started. */
  private allocEntry(
    af: 4 | 6,
    proto: number,
    c0: number,
    c1: number,
    c2: number,
    c3: number,
    cport: number,
    v0: number,
    v1: number,
    v2: number,
    v3: number,
    vport: number,
    dest: Dest,
    dport: number,
    flags: number,
    mark: number,
  ): number {
    const c = this.conns;
    const i = c.alloc();
    c.af[i] = af;
    c.daf[i] = dest.af;
    c.protocol[i] = proto;
    const o = i * 4;
    c.caddr[o] = c0;
    c.caddr[o + 1] = c1;
    c.caddr[o + 2] = c2;
    c.caddr[o + 3] = c3;
    c.vaddr[o] = v0;
    c.vaddr[o + 1] = v1;
    c.vaddr[o + 2] = v2;
    c.vaddr[o + 3] = v3;
    const a = dest.addr;
    c.daddr[o] = a.w0;
    c.daddr[o + 1] = a.w1;
    c.daddr[o + 2] = a.w2;
    c.daddr[o + 3] = a.w3;
    c.cport[i] = cport;
    c.vport[i] = vport;
    c.dport[i] = dport;
    c.fwmark[i] = mark >>> 0;
    c.timeout[i] = CONN_INIT_TIMEOUT_MS;
    c.expires[i] = this.now() + CONN_INIT_TIMEOUT_MS;
    this.bindDest(i, dest, flags);
    return i;
  }

  /** ip_vs_bind_dest: flags from the dest, counters up, overload re-evaluated. */
  private bindDest(i: number, dest: Dest, flags: number): void {
    const c = this.conns;
    let connFlags = dest.connFlags;
    if (c.protocol[i] !== IPPROTO_UDP) connFlags &= ~CONN_F_ONE_PACKET;
    if (flags & CONN_F_SYNC) {
      if (!(flags & CONN_F_TEMPLATE)) connFlags &= ~CONN_F_INACTIVE;
      flags &= ~(FWD_MASK | CONN_F_NOOUTPUT);
    }
    flags |= connFlags;
    c.flags[i] = (c.flags[i]! & 0x40) | flags; // keep HASHED if already set
    c.dest[i] = dest.id;
    dest.refcnt++;
    if (flags & CONN_F_TEMPLATE) dest.persistconns++;
    else if (flags & CONN_F_INACTIVE) dest.inactconns++;
    else dest.activeconns++;
    if (dest.uThreshold !== 0) updateOverload(dest);
    dest.svc.sched?.loadChanged?.(dest);
  }

  /** ip_vs_unbind_dest: counters down, overload re-evaluated while set. */
  private unbindDest(i: number): void {
    const c = this.conns;
    const id = c.dest[i]!;
    if (id < 0) return;
    const dest = this.table.destById[id]!;
    const flags = c.flags[i]!;
    if (flags & CONN_F_TEMPLATE) dest.persistconns--;
    else if (flags & CONN_F_INACTIVE) dest.inactconns--;
    else dest.activeconns--;
    if (dest.flags & DEST_F_OVERLOAD) updateOverload(dest);
    c.dest[i] = -1;
    dest.refcnt--;
    if (dest.listPos >= 0) dest.svc.sched?.loadChanged?.(dest);
  }

  private inStats(cp: number, len: number): void {
    this.connBytes(cp, DIR_INPUT, 1, len);
  }

  private outStats(cp: number, len: number): void {
    this.connBytes(cp, DIR_OUTPUT, 1, len);
  }

  /** The protocol's state_transition for one packet. */
  private stateTransition(cp: number, dir: number, flags: number): void {
    const c = this.conns;
    const p = c.protocol[cp];
    if (p === IPPROTO_TCP) this.tcpTransition(cp, dir, flags);
    else if (p === IPPROTO_UDP) {
      c.timeout[cp] = this.udpTimeout;
      if (dir === DIR_OUTPUT) this.assureControl(cp);
    } else if (p === IPPROTO_SCTP) this.sctpTransition(cp, dir, flags);
  }

  /** set_tcp_state (spec §5.5). */
  private tcpTransition(cp: number, dir: number, flags: number): void {
    const next = tcpNextState(this.secureTcp, this.stateDirection(cp, dir), flags, this.conns.state[cp]!);
    this.setState(cp, next, tcpStateActive(next), next === TCP_S_ESTABLISHED, this.tcpTimeouts[next]!);
  }

  /** set_sctp_state: the same shape, events from the first chunk type. */
  private sctpTransition(cp: number, dir: number, chunk: number): void {
    const next = sctpNextState(this.stateDirection(cp, dir), chunk, this.conns.state[cp]!);
    this.setState(cp, next, sctpStateActive(next), next === SCTP_S_ESTABLISHED, this.sctpTimeouts[next]!);
  }

  /**
   * Which transition table a packet uses: an entry that has seen no reply (NOOUTPUT, every
   * non-NAT dest) uses INPUT-ONLY until an OUTPUT packet clears the flag.
   */
  private stateDirection(cp: number, dir: number): number {
    const c = this.conns;
    const cf = c.flags[cp]!;
    if (!(cf & CONN_F_NOOUTPUT)) return dir;
    if (dir === DIR_OUTPUT) {
      c.flags[cp] = cf & ~CONN_F_NOOUTPUT;
      return DIR_OUTPUT;
    }
    return DIR_INPUT_ONLY;
  }

  /** The new state: activity counts move on a change, ESTABLISHED assures the template. */
  private setState(cp: number, next: number, active: boolean, established: boolean, timeoutMs: number): void {
    const c = this.conns;
    if (next !== c.state[cp]) {
      this.moveActivity(cp, active);
      if (established) this.assureControl(cp);
    }
    c.state[cp] = next;
    c.timeout[cp] = timeoutMs;
  }

  /** Move an entry between its dest's active and inactive counts. */
  private moveActivity(cp: number, active: boolean): void {
    const c = this.conns;
    const dest = this.connDest(cp);
    if (!dest) return;
    const f = c.flags[cp]!;
    if (!(f & CONN_F_INACTIVE) && !active) {
      dest.activeconns--;
      dest.inactconns++;
      c.flags[cp] = f | CONN_F_INACTIVE;
      dest.svc.sched?.loadChanged?.(dest);
    } else if (f & CONN_F_INACTIVE && active) {
      dest.activeconns++;
      dest.inactconns--;
      c.flags[cp] = f & ~CONN_F_INACTIVE;
      dest.svc.sched?.loadChanged?.(dest);
    }
  }

  /** The controlling template becomes ASSURED (ip_vs_control_assure_ct). */
  private assureControl(cp: number): void {
    const ct = this.conns.control[cp]!;
    if (ct >= 0 && this.conns.flags[ct]! & CONN_F_TEMPLATE) this.conns.state[ct]! |= CTPL_S_ASSURED;
  }

  /** ip_vs_conn_put: re-arm the inactivity timer; ONE_PACKET entries die right after. */
  private put(cp: number): void {
    const c = this.conns;
    if (c.flags[cp]! & CONN_F_ONE_PACKET) {
      this.pendingOps = cp;
      return;
    }
    if (!c.isDue(cp)) c.setTimer(cp, this.now() + c.timeout[cp]!);
  }

  private freeOps(): void {
    const cp = this.pendingOps;
    this.pendingOps = -1;
    this.expire(cp);
  }

  /**
   * ip_vs_conn_expire: an entry's timer ran out (or it was dropped). Entries that still control
   * others are kept 60 s more; otherwise the entry is unlinked, its template released, its dest
   * counters lowered, and it is freed.
   */
  private expire(cp: number): void {
    const c = this.conns;
    if (c.nControl[cp]! > 0) {
      c.timeout[cp] = CONTROL_POSTPONE_MS;
      this.syncMaster?.(cp, this.sysctl.sync_threshold[0]);
      c.setTimer(cp, this.now() + CONTROL_POSTPONE_MS);
      return;
    }
    c.unhash(cp);
    c.disarm(cp);
    const ct = c.control[cp]!;
    if (ct >= 0) {
      const dropped = c.timeout[cp] === 0;
      c.control[cp] = -1;
      c.nControl[ct]--;
      // Drop the controller with its last controlled entry when that entry was dropped
      // explicitly and the controller is not an assured template.
      if (dropped && c.nControl[ct] === 0 && (!(c.flags[ct]! & CONN_F_TEMPLATE) || !(c.state[ct]! & CTPL_S_ASSURED))) {
        c.unhash(ct);
        c.expireNow(ct);
      }
    }
    this.unbindDest(cp);
    this.onConnFree?.(cp);
    for (const f of this.connFreeListeners) f(cp);
    c.free(cp);
  }

  // ======================================================================================
  // Time
  // ======================================================================================

  /**
   * Run everything that is due: connection expiry, the 2 s rate estimator, the 1 s defense
   * level, the 60 s dest trash sweep and scheduler ticks. Returns false when the expiry work
   * budget ran out (call again soon).
   */
  advance(): boolean {
    const now = this.now();
    if (this.pendingOps >= 0) this.freeOps();
    if (this.nodestFlush) this.flushNodestConns();
    const done = this.conns.advance(now, this.expireBudget, this.expireCb);
    if (now >= this.nextDefense) {
      this.updateDefenseLevel();
      if (this.dropEntryActive) this.randomDropEntry(now);
      this.nextDefense = Math.max(this.nextDefense + DEFENSE_PERIOD_MS, now - DEFENSE_PERIOD_MS);
    }
    let rounds = 0;
    while (now >= this.nextEstimate && rounds++ < 32) {
      if (this.sysctl.run_estimation) this.estimateAll();
      this.nextEstimate += ESTIMATOR_PERIOD_MS;
    }
    if (now >= this.nextEstimate) this.nextEstimate = now + ESTIMATOR_PERIOD_MS;
    if (now >= this.nextTrashSweep) {
      this.table.sweepTrash(now);
      this.nextTrashSweep = now + TRASH_SWEEP_MS;
    }
    if (now >= this.nextSchedTick) {
      for (const s of this.table.services()) s.sched?.tick?.(now);
      this.nextSchedTick = now + SCHED_TICK_MS;
    }
    return done;
  }

  private estimateAll(): void {
    this.totalStats.estimate();
    for (const s of this.table.services()) {
      s.stats.estimate();
      for (const d of s.dests) d.stats.estimate();
    }
  }

  /** expire_nodest_conn: drop every connection whose dest was deleted. */
  private flushNodestConns(): void {
    this.nodestFlush = false;
    if (!this.sysctl.expire_nodest_conn) return;
    const c = this.conns;
    for (const i of c.entries()) {
      if (c.flags[i]! & CONN_F_TEMPLATE) continue;
      const d = this.connDest(i);
      if (d && !d.available) {
        this.drops.nodestFlush++;
        this.dropConn(i);
      }
    }
  }

  // ---- DoS defense (spec §8) --------------------------------------------------------------

  private updateDefenseLevel(): void {
    const s = this.sysctl;
    const avail = this.availableMemoryPages();
    const nomem = avail < s.amemthresh;
    // drop_entry
    switch (s.drop_entry) {
      case 0:
        this.dropEntryActive = false;
        break;
      case 1:
        this.dropEntryActive = nomem;
        if (nomem) s.drop_entry = 2;
        break;
      case 2:
        this.dropEntryActive = nomem;
        if (!nomem) s.drop_entry = 1;
        break;
      default:
        this.dropEntryActive = true;
    }
    // drop_packet
    switch (s.drop_packet) {
      case 0:
        this.dropRate = 0;
        break;
      case 1:
      case 2:
        if (nomem) {
          this.dropRate = this.dropCounter = Math.floor(s.amemthresh / (s.amemthresh - avail));
          s.drop_packet = 2;
        } else {
          this.dropRate = 0;
          s.drop_packet = 1;
        }
        break;
      default:
        this.dropRate = s.am_droprate;
    }
    // secure_tcp: only the transition table switches
    switch (s.secure_tcp) {
      case 0:
        this.secureTcp = false;
        break;
      case 1:
      case 2:
        this.secureTcp = nomem;
        s.secure_tcp = nomem ? 2 : 1;
        break;
      default:
        this.secureTcp = true;
    }
  }

  /** ip_vs_todrop: one of every dropRate new-connection packets is dropped. */
  private todrop(): boolean {
    if (--this.dropCounter > 0) return false;
    this.dropCounter = this.dropRate;
    return true;
  }

  /** todrop_entry: recent or busy entries are kept; others dropped at a per-in_pkts rate. */
  private todropEntry(cp: number, now: number): boolean {
    const c = this.conns;
    if (c.timeout[cp]! + now < c.expires[cp]! + 60_000) return false;
    const i = c.inPkts[cp]!;
    if (i > 8) return false;
    const rate = i; // todrop_rate = {0,1,...,8}
    if (!rate) return false;
    if (--this.todropCounter[i]! > 0) return false;
    this.todropCounter[i] = rate;
    return true;
  }

  /** ip_vs_random_dropentry: examine 1/32 of the table a second and drop what the rules say. */
  private randomDropEntry(now: number): void {
    const c = this.conns;
    if (c.high === 0) return;
    const samples = Math.max(1, c.high >>> 5);
    for (let k = 0; k < samples; k++) {
      const i = this.random32() % c.high;
      if (c.af[i] === 0 || c.nControl[i]! > 0 || !c.isHashed(i)) continue;
      const f = c.flags[i]!;
      let drop = false;
      if (f & CONN_F_TEMPLATE) {
        const d = this.connDest(i);
        if (d && d.svc.flags & SVC_F_ONEPACKET) drop = this.todropEntry(i, now);
        else drop = !(c.state[i]! & CTPL_S_ASSURED);
      } else if (c.protocol[i] === IPPROTO_TCP) {
        const st = c.state[i]!;
        if (st === TCP_S_SYN_RECV || st === TCP_S_SYNACK) drop = true;
        else if (st === TCP_S_ESTABLISHED) drop = this.todropEntry(i, now);
      } else if (c.protocol[i] === IPPROTO_SCTP) {
        const st = c.state[i]!;
        if (st === SCTP_S_INIT1 || st === SCTP_S_INIT) drop = true;
        else if (st === SCTP_S_ESTABLISHED) drop = this.todropEntry(i, now);
      } else {
        drop = this.todropEntry(i, now);
      }
      if (drop) {
        this.drops.dropEntry++;
        this.dropConn(i);
      }
    }
  }

  // ---- connection sync (spec §10) ---------------------------------------------------------

  /**
   * Master: ip_vs_sync_conn_needed — whether this entry is sent now, given its IN-path packet
   * count. When it is, old_state and sync_endtime are updated (the kernel's compare-exchange
   * always wins here: one thread). Templates skip the state gate and the packet count;
   * TCP/SCTP moves to a closing state are forced out at once.
   */
  syncNeeded(cp: number, pkts: number): boolean {
    const c = this.conns;
    const s = this.sysctl;
    const nowJ = msToJiffies(this.now());
    const flags = c.flags[cp]!;
    const template = (flags & CONN_F_TEMPLATE) !== 0;
    const timeoutJ = msToJiffies(c.timeout[cp]!);
    let orig: number;
    if (c.syncEnd[cp] === 0) {
      // Not known yet: the kernel starts sync_endtime at the creation time, which is now for
      // an entry reaching its first packet (the way entries are made here).
      orig = (nowJ & ~3) >>> 0;
      c.syncEnd[cp] = orig & 0xffff;
    } else {
      orig = expandJiffies16(c.syncEnd[cp]!, ((nowJ + timeoutJ) & ~3) >>> 0);
    }
    let force = false;
    let n: number;
    if (!template && s.sync_persist_mode && this.syncInPersistence(cp)) return false;
    const proto = c.protocol[cp]!;
    const st = c.state[cp]!;
    if (!template && (proto === IPPROTO_TCP || proto === IPPROTO_SCTP)) {
      if (!syncState(proto, st)) return false;
      force = st !== c.oldState[cp];
    }
    if (force && st !== establishedState(proto)) {
      n = ((nowJ + timeoutJ) & ~3) >>> 0;
    } else {
      n = syncRateDecision(nowJ, timeoutJ, orig, template, pkts, {
        threshold: s.sync_threshold[0],
        period: s.sync_threshold[1],
        refreshJ: s.sync_refresh_period * SYNC_HZ,
        retries: s.sync_retries,
      });
      if (n < 0) return false;
    }
    c.oldState[cp] = st;
    c.syncEnd[cp] = n & 0xffff;
    return true;
  }

  /** in_persistence: some controller up the chain is a template. */
  private syncInPersistence(cp: number): boolean {
    const c = this.conns;
    // Chains are template → conn (or FTP data → control → template): a few hops at most.
    for (let ct = c.control[cp]!, hops = 0; ct >= 0 && hops < 8; ct = c.control[ct]!, hops++) {
      if (c.flags[ct]! & CONN_F_TEMPLATE) return true;
    }
    return false;
  }

  /** The entry as the master sends it (addresses, ports, flags, state, timeout in seconds). */
  syncRecord(cp: number): SyncConnRecord {
    const c = this.conns;
    const o = cp * 4;
    const af = c.af[cp] as 4 | 6;
    const daf = c.daf[cp] as 4 | 6;
    return {
      af,
      protocol: c.protocol[cp]!,
      flags: c.flags[cp]! & ~CONN_F_HASHED,
      state: c.state[cp]!,
      cport: c.cport[cp]!,
      vport: c.vport[cp]!,
      dport: c.dport[cp]!,
      fwmark: c.fwmark[cp]!,
      timeout: Math.floor(c.timeout[cp]! / 1000),
      caddr: new IpAddr(af, c.caddr[o]!, c.caddr[o + 1], c.caddr[o + 2], c.caddr[o + 3]),
      vaddr: new IpAddr(af, c.vaddr[o]!, c.vaddr[o + 1], c.vaddr[o + 2], c.vaddr[o + 3]),
      daddr: new IpAddr(daf, c.daddr[o]!, c.daddr[o + 1], c.daddr[o + 2], c.daddr[o + 3]),
    };
  }

  /**
   * Backup: apply one received record (ip_vs_proc_conn). `rec.flags` are already reduced as
   * its wire version demands. Existing entries only get their INACTIVE/SEQ bits (counters
   * moved) and a dest if they had none; a record naming another real server replaces an
   * entry when it is active and is ignored when inactive (a late expiry notice). New entries
   * bind to the local dest found by (daddr, dport) then (daddr, 0), or stay unbound. Then
   * in_pkts, state, old_state and the timeout are set and the timer armed.
   */
  applySyncRecord(rec: SyncConnRecord): SyncApplyResult {
    if (this.pendingOps >= 0) this.freeOps();
    const c = this.conns;
    let flags = rec.flags >>> 0;
    const template = (flags & CONN_F_TEMPLATE) !== 0;
    const af = rec.af;
    const ca = rec.caddr;
    const va = rec.vaddr;
    const da = rec.daddr;
    let result: SyncApplyResult = 'updated';
    let cp: number;
    if (!template) {
      cp = c.lookupIn(af, rec.protocol, ca.w0, ca.w1, ca.w2, ca.w3, rec.cport, va.w0, va.w1, va.w2, va.w3, rec.vport);
      if (cp < 0 && c.count > 0) cp = c.lookupIn(af, rec.protocol, ca.w0, ca.w1, ca.w2, ca.w3, 0, va.w0, va.w1, va.w2, va.w3, rec.vport);
      if (cp >= 0 && !this.syncSameDest(cp, da, rec.dport)) {
        if (flags & CONN_F_INACTIVE) return 'stale';
        this.expireNowUnhashed(cp);
        cp = -1;
        result = 'replaced';
      }
    } else {
      cp = c.lookupTemplate(af, rec.protocol, ca.w0, ca.w1, ca.w2, ca.w3, rec.cport, va.w0, va.w1, va.w2, va.w3, rec.vport);
    }
    if (cp >= 0) {
      if (!template) this.moveActivity(cp, !(flags & CONN_F_INACTIVE));
      c.flags[cp] = ((flags & CONN_F_BACKUP_UPD_MASK) | (c.flags[cp]! & ~CONN_F_BACKUP_UPD_MASK)) >>> 0;
      if (c.dest[cp]! < 0) {
        const dest = this.syncFindDest(cp);
        if (dest) this.bindDest(cp, dest, c.flags[cp]! & ~CONN_F_HASHED);
      }
    } else {
      if (result !== 'replaced') result = 'created';
      flags &= ~CONN_F_HASHED;
      const dest = this.syncLookupDest(af, rec.protocol, va, rec.vport, da, rec.dport, rec.fwmark, flags);
      if (dest) {
        cp = this.allocEntry(af, rec.protocol, ca.w0, ca.w1, ca.w2, ca.w3, rec.cport, va.w0, va.w1, va.w2, va.w3, rec.vport, dest, rec.dport, flags, rec.fwmark);
      } else {
        cp = this.syncAllocUnbound(rec, flags);
      }
      c.syncEnd[cp] = msToJiffies(this.now()) & 0xfffc;
      if (!(c.flags[cp]! & CONN_F_ONE_PACKET)) c.hash(cp);
    }
    // Sequence data (FTP NAT) has nowhere to live here: only the IN_SEQ/OUT_SEQ bits stay.
    c.inPkts[cp] = this.sysctl.sync_threshold[0];
    c.state[cp] = rec.state & 0xff;
    c.oldState[cp] = rec.state & 0xff;
    if (rec.timeout) {
      c.timeout[cp] = Math.min(rec.timeout, SYNC_MAX_TIMEOUT_S) * 1000;
    } else {
      c.timeout[cp] = this.syncProtoTimeout(rec.protocol, rec.state, template);
    }
    this.put(cp);
    return result;
  }

  private syncSameDest(cp: number, da: IpAddr, dport: number): boolean {
    const c = this.conns;
    const o = cp * 4;
    if (c.dport[cp] !== dport || c.daddr[o] !== da.w0) return false;
    return c.daf[cp] === 4 || (c.daddr[o + 1] === da.w1 && c.daddr[o + 2] === da.w2 && c.daddr[o + 3] === da.w3);
  }

  /** ip_vs_try_bind_dest's lookup for an existing unbound entry. */
  private syncFindDest(cp: number): Dest | null {
    const c = this.conns;
    const o = cp * 4;
    const af = c.af[cp] as 4 | 6;
    const va = new IpAddr(af, c.vaddr[o]!, c.vaddr[o + 1], c.vaddr[o + 2], c.vaddr[o + 3]);
    const da = new IpAddr(af, c.daddr[o]!, c.daddr[o + 1], c.daddr[o + 2], c.daddr[o + 3]);
    return this.syncLookupDest(af, c.protocol[cp]!, va, c.vport[cp]!, da, c.dport[cp]!, c.fwmark[cp]!, c.flags[cp]!);
  }

  /**
   * ip_vs_find_dest: the service by the packet lookup order, then the dest by (daddr, port)
   * and (daddr, port ^ dport) where port is dport, or 0 for a fwmark entry not sent as NAT —
   * so both dport and 0 are tried.
   */
  private syncLookupDest(af: 4 | 6, proto: number, va: IpAddr, vport: number, da: IpAddr, dport: number, fwmark: number, flags: number): Dest | null {
    const svc = this.table.lookup(af, proto, va.w0, va.w1, va.w2, va.w3, vport, fwmark);
    if (!svc) return null;
    const port = fwmark && (flags & FWD_MASK) !== FWD_MASQ ? 0 : dport;
    return svc.findDest(da, port) ?? svc.findDest(da, port ^ dport) ?? null;
  }

  /** ip_vs_conn_new without a dest: the entry keeps the record's addresses and flags. */
  private syncAllocUnbound(rec: SyncConnRecord, flags: number): number {
    const c = this.conns;
    const i = c.alloc();
    const o = i * 4;
    c.af[i] = rec.af;
    c.daf[i] = rec.af;
    c.protocol[i] = rec.protocol;
    c.setAddr(c.caddr, i, rec.caddr);
    c.setAddr(c.vaddr, i, rec.vaddr);
    c.setAddr(c.daddr, i, rec.daddr);
    if (rec.af === 4) c.daddr[o + 1] = c.daddr[o + 2] = c.daddr[o + 3] = 0;
    c.cport[i] = rec.cport;
    c.vport[i] = rec.vport;
    c.dport[i] = rec.dport;
    c.fwmark[i] = rec.fwmark >>> 0;
    c.flags[i] = flags;
    return i;
  }

  /** A v0 record has no timeout: the local one for its state; templates (and others) 180 s. */
  private syncProtoTimeout(proto: number, state: number, template: boolean): number {
    if (!template) {
      if (proto === IPPROTO_TCP) return this.tcpTimeouts[state] ?? SYNC_DEFAULT_TIMEOUT_MS;
      if (proto === IPPROTO_UDP) return this.udpTimeout;
      if (proto === IPPROTO_SCTP) return this.sctpTimeouts[state] ?? SYNC_DEFAULT_TIMEOUT_MS;
    }
    return SYNC_DEFAULT_TIMEOUT_MS;
  }
}

function destInfo(d: Dest): DestInfo {
  return {
    af: d.af,
    addr: d.addr.toString(),
    port: d.port,
    connFlags: d.connFlags,
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    activeConns: d.activeconns,
    inactConns: d.inactconns,
    persistConns: d.persistconns,
    tunType: d.tunType,
    tunPort: d.tunPort,
    tunFlags: d.tunFlags,
    flags: d.flags,
    stats: d.stats.counters(),
    rates: d.stats.rates(),
  };
}

export function serviceInfo(s: Service): ServiceInfo {
  return {
    af: s.af,
    protocol: s.protocol,
    addr: s.addr.toString(),
    port: s.port,
    fwmark: s.fwmark,
    schedName: s.schedName,
    flags: s.flags,
    timeout: s.timeout,
    netmask: s.netmask,
    peName: s.peName,
    proxyProtocol: s.proxyProtocol,
    dests: s.dests.map(destInfo),
    stats: s.stats.counters(),
    rates: s.stats.rates(),
  };
}
