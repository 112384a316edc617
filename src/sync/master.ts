// The master side of connection sync (spec ipvs-kernel.md §10.2): which entries go out when
// (ip_vs_sync_conn / ip_vs_sync_conn_v0 with the controlling-template chain), and how records
// become datagrams — per "thread" (one per sync port) a buffer filled up to sync_maxlen, queued
// when full, flushed when older than 2 s; the sender wakes 20 ms after the first queued
// buffer, at once when 8 are waiting, and at least every second. Timers are injected so the
// schedule can be tested to the millisecond.

import { CONN_F_ONE_PACKET, CONN_F_TEMPLATE } from '../core/constants.js';
import type { Director } from '../core/director.js';
import type { SyncConnRecord } from '../core/sync.js';
import { recordLengthV0, recordLengthV1, SyncMessageBuilder } from './wire.js';

/** IPVS_SYNC_FLUSH_TIME: a partly filled buffer waits at most this long. */
export const SYNC_FLUSH_MS = 2000;
/** IPVS_SYNC_SEND_DELAY: the sender wakes this long after the first buffer is queued. */
export const SYNC_SEND_DELAY_MS = 20;
/** IPVS_SYNC_WAKEUP_RATE: ... or at once when this many are queued. */
export const SYNC_WAKEUP_RATE = 8;
/** IPVS_SYNC_CHECK_PERIOD: an idle sender looks at its buffer this often. */
export const SYNC_CHECK_PERIOD_MS = 1000;
/** Longest controller chain followed (template ← conn, or FTP data ← control ← template). */
const MAX_CHAIN = 8;

export interface SyncTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers that never keep the process alive by themselves. */
export const realTimers: SyncTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface MasterCounters {
  /** Records put into buffers. */
  records: number;
  /** Datagrams handed to the socket. */
  messages: number;
  /** Buffers discarded because the queue was at sync_qlen_max. */
  queueDrops: number;
}

/** One master "thread": its current buffer, its queue of finished messages, its sender. */
export class MasterThread {
  private buff: SyncMessageBuilder | null = null;
  private readonly queue: Buffer[] = [];
  /** sync_queue_delay: buffers queued since the sender last found the queue empty. */
  private delay = 0;
  private wakeupTimer: unknown = null;
  private runTimer: unknown = null;
  private checkTimer: unknown = null;
  private running = true;

  constructor(
    readonly id: number,
    private readonly timers: SyncTimers,
    private readonly send: (msg: Buffer) => void,
    private readonly qlenMax: () => number,
    readonly counters: MasterCounters,
  ) {
    this.armCheck();
  }

  /** Append a record; `version` and the message limits decide when the buffer is queued. */
  add(rec: SyncConnRecord, version: 0 | 1, syncid: number, maxlen: number): void {
    if (!this.running) return;
    const len = version === 1 ? recordLengthV1(rec) : recordLengthV0(rec);
    // The sender never mixes versions in one buffer.
    if (this.buff && (this.buff.version !== version || !this.buff.fits(len))) this.queueTail();
    if (!this.buff) this.buff = new SyncMessageBuilder(version, syncid, maxlen, len, this.timers.now());
    this.buff.add(rec);
    this.counters.records++;
  }

  /** sb_queue_tail: the current buffer joins the queue (or is dropped at sync_qlen_max). */
  private queueTail(): void {
    const sb = this.buff!;
    this.buff = null;
    if (!this.running || this.queue.length >= this.qlenMax()) {
      this.counters.queueDrops++;
      return;
    }
    if (this.queue.length === 0 && this.wakeupTimer === null) {
      this.wakeupTimer = this.timers.setTimeout(() => this.wakeupWork(), SYNC_SEND_DELAY_MS);
    }
    this.queue.push(sb.finish());
    if (++this.delay === SYNC_WAKEUP_RATE) this.wake();
  }

  /** master_wakeup_work_handler: the delayed wake-up, unless the rate already woke it. */
  private wakeupWork(): void {
    this.wakeupTimer = null;
    if (this.queue.length > 0 && this.delay < SYNC_WAKEUP_RATE) {
      this.delay = SYNC_WAKEUP_RATE;
      this.wake();
    }
  }

  /** wake_up_process: the sender runs as soon as the caller's work is done. */
  private wake(): void {
    if (this.runTimer !== null || !this.running) return;
    this.runTimer = this.timers.setTimeout(() => {
      this.runTimer = null;
      this.run();
    }, 0);
  }

  private armCheck(): void {
    if (this.checkTimer !== null) this.timers.clearTimeout(this.checkTimer);
    this.checkTimer = this.timers.setTimeout(() => {
      this.checkTimer = null;
      this.run();
    }, SYNC_CHECK_PERIOD_MS);
  }

  /** sync_thread_master, one round: send what is queued, then a buffer older than 2 s. */
  private run(): void {
    if (!this.running) return;
    for (;;) {
      let sb = this.queue.shift();
      if (sb !== undefined) {
        if (this.queue.length === 0) this.delay = 0;
      } else if (this.buff && this.timers.now() - this.buff.firstUse >= SYNC_FLUSH_MS) {
        sb = this.buff.finish();
        this.buff = null;
      } else {
        break;
      }
      this.counters.messages++;
      this.send(sb);
    }
    this.armCheck();
  }

  /** Stop: like the kernel, whatever is queued or buffered is discarded. */
  stop(): void {
    this.running = false;
    for (const t of [this.wakeupTimer, this.runTimer, this.checkTimer]) if (t !== null) this.timers.clearTimeout(t);
    this.wakeupTimer = this.runTimer = this.checkTimer = null;
    this.queue.length = 0;
    this.buff = null;
  }

  /** For tests and status: queued messages and records in the current buffer. */
  get pending(): { queued: number; buffered: number } {
    return { queued: this.queue.length, buffered: this.buff?.nrConns ?? 0 };
  }
}

export interface SyncMasterConfig {
  syncid: number;
  /** Effective sync_maxlen. */
  maxlen: number;
  /** Number of threads (a power of two): thread i sends to port + i. */
  threads: number;
}

/**
 * ip_vs_sync_conn over a director: installed as director.syncMaster while the master runs.
 * Records go to thread `entry index & (threads - 1)` (the kernel hashes the conn's address).
 */
export class SyncMaster {
  readonly threads: MasterThread[] = [];
  readonly counters: MasterCounters = { records: 0, messages: 0, queueDrops: 0 };
  private readonly hook = (cp: number, pkts: number) => this.syncConn(cp, pkts);

  constructor(
    private readonly director: Director,
    private readonly cfg: SyncMasterConfig,
    timers: SyncTimers,
    send: (thread: number, msg: Buffer) => void,
  ) {
    for (let i = 0; i < cfg.threads; i++) {
      this.threads.push(new MasterThread(i, timers, (m) => send(i, m), () => director.sysctl.sync_qlen_max, this.counters));
    }
  }

  /** Start receiving the director's IN-path calls. */
  attach(): void {
    this.director.syncMaster = this.hook;
  }

  detach(): void {
    if (this.director.syncMaster === this.hook) this.director.syncMaster = null;
    for (const t of this.threads) t.stop();
  }

  /** ip_vs_sync_conn: the entry (if due) and then, v1, its controllers up the chain. */
  syncConn(cp: number, pkts: number): void {
    const d = this.director;
    const c = d.conns;
    if (d.sysctl.sync_version === 0) {
      this.syncConnV0(cp, pkts);
      return;
    }
    // ONE_PACKET entries are never sent, but their template still is.
    let skip = (c.flags[cp]! & CONN_F_ONE_PACKET) !== 0;
    for (let hops = 0; hops < MAX_CHAIN; hops++) {
      if (!skip && d.syncNeeded(cp, pkts)) this.queue(cp, 1);
      skip = false;
      const ct = c.control[cp]!;
      if (ct < 0) return;
      pkts = this.controllerPkts(ct);
      cp = ct;
    }
  }

  /** ip_vs_sync_conn_v0: IPv4 only, and the controller only after the entry was sent. */
  private syncConnV0(cp: number, pkts: number): void {
    const d = this.director;
    const c = d.conns;
    for (let hops = 0; hops < MAX_CHAIN; hops++) {
      if (c.af[cp] !== 4 || c.flags[cp]! & CONN_F_ONE_PACKET) return;
      if (!d.syncNeeded(cp, pkts)) return;
      this.queue(cp, 0);
      const ct = c.control[cp]!;
      if (ct < 0) return;
      pkts = this.controllerPkts(ct);
      cp = ct;
    }
  }

  /** A template counts the packets of the entries it controls; other controllers don't. */
  private controllerPkts(ct: number): number {
    const c = this.director.conns;
    if (c.flags[ct]! & CONN_F_TEMPLATE) {
      c.inPkts[ct] = (c.inPkts[ct]! + 1) >>> 0;
      return c.inPkts[ct]!;
    }
    return this.director.sysctl.sync_threshold[0];
  }

  private queue(cp: number, version: 0 | 1): void {
    const t = this.threads[cp & (this.threads.length - 1)]!;
    t.add(this.director.syncRecord(cp), version, this.cfg.syncid, this.cfg.maxlen);
  }
}
