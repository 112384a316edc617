// Helpers for the sync tests: timers that only move when told to, and a master over a director
// whose datagrams are captured and decoded.

import type { ManualClock } from '../../src/core/clock.js';
import type { Director } from '../../src/core/director.js';
import { SyncMaster, type SyncTimers } from '../../src/sync/master.js';
import { decodeMessage, type ReceivedRecord } from '../../src/sync/wire.js';

export class FakeTimers implements SyncTimers {
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void; order: number }>();
  constructor(public ms = 0) {}
  now = (): number => this.ms;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.pending.set(id, { at: this.ms + ms, fn, order: id });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.pending.delete(h as number);
  };
  /** Move time forward, running every timer that falls due, in time order (bounded). */
  advance(ms: number): void {
    const end = this.ms + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      let next: [number, { at: number; fn: () => void; order: number }] | undefined;
      for (const e of this.pending) {
        if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].order < next[1].order))) next = e;
      }
      if (!next) break;
      this.pending.delete(next[0]);
      this.ms = Math.max(this.ms, next[1].at);
      next[1].fn();
    }
    this.ms = end;
  }
  get count(): number {
    return this.pending.size;
  }
}

export interface Sent {
  at: number;
  thread: number;
  msg: Buffer;
}

/** A running master over `d` with fake timers; `queued` logs every entry put into a buffer. */
export function captureMaster(d: Director, opts: { maxlen?: number; threads?: number; syncid?: number; timers?: FakeTimers } = {}) {
  const timers = opts.timers ?? new FakeTimers();
  const sent: Sent[] = [];
  const queued: number[] = [];
  const m = new SyncMaster(d, { syncid: opts.syncid ?? 0, maxlen: opts.maxlen ?? 1472, threads: opts.threads ?? 1 }, timers, (thread, msg) => sent.push({ at: timers.ms, thread, msg: Buffer.from(msg) }));
  const orig = d.syncRecord.bind(d);
  d.syncRecord = (cp: number) => {
    queued.push(cp);
    return orig(cp);
  };
  m.attach();
  return {
    master: m,
    timers,
    sent,
    queued,
    /** Entries queued since the last call. */
    take(): number[] {
      return queued.splice(0);
    },
    /** Every record of every datagram sent so far. */
    records(): ReceivedRecord[] {
      return sent.flatMap((s) => decodeMessage(s.msg).records);
    },
  };
}

/** Advance a director clock and fake timers together. */
export function tick(clock: ManualClock, timers: FakeTimers, ms: number): void {
  clock.advance(ms);
  timers.advance(ms);
}
