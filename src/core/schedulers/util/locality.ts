// The cache table shared by lblc and lblcr: 1024 hash buckets keyed by the packet's destination
// address (hash_32 of its fold), entries added at the bucket head, and the garbage collection
// the kernel runs from a 60-second timer (ip_vs_lblc_check_expire / ip_vs_lblcr_check_expire):
// every 30th run a full sweep of entries idle for the expiration sysctl (24 h by default);
// otherwise, only while the table holds more than 16384 entries, a partial sweep from a rover
// of entries idle for 6 minutes, until 4/3 of the excess (at most 8192) is gone.

import type { Flow } from '../../flow.js';
import { hash32 } from '../hash.js';

const TAB_BITS = 10;
const TAB_SIZE = 1 << TAB_BITS;
const TAB_MASK = TAB_SIZE - 1;
const MAX_SIZE = TAB_SIZE * 16;
export const CHECK_EXPIRE_INTERVAL_MS = 60_000;
export const ENTRY_TIMEOUT_MS = 6 * 60_000;
const COUNT_FOR_FULL_EXPIRATION = 30;

export class LocalityEntry {
  next: this | null = null;
  /** Last time a packet looked this entry up (ms). */
  lastuse: number;
  readonly a0: number;
  readonly a1: number;
  readonly a2: number;
  readonly a3: number;

  constructor(af: 4 | 6, flow: Flow, now: number) {
    // Unsigned, whatever form the data plane filled the words in.
    this.a0 = flow.d0 >>> 0;
    this.a1 = af === 4 ? 0 : flow.d1 >>> 0;
    this.a2 = af === 4 ? 0 : flow.d2 >>> 0;
    this.a3 = af === 4 ? 0 : flow.d3 >>> 0;
    this.lastuse = now;
  }
}

export class LocalityTable<E extends LocalityEntry> {
  private readonly buckets: (E | null)[] = new Array<E | null>(TAB_SIZE).fill(null);
  /** Number of entries. */
  entries = 0;
  private rover = 0;
  private counter = 1;
  /** When the periodic check runs next (ms). */
  private nextCheck: number;

  constructor(
    private readonly af: 4 | 6,
    now: number,
    /** Drops what an entry holds (its references to dests). */
    private readonly release: (e: E) => void,
  ) {
    this.nextCheck = now + CHECK_EXPIRE_INTERVAL_MS;
  }

  /** ip_vs_lblc_hashkey: the bucket of the packet's destination address. */
  private bucketOf(flow: Flow): number {
    const fold = this.af === 4 ? flow.d0 : flow.d0 ^ flow.d1 ^ flow.d2 ^ flow.d3;
    return hash32(fold, TAB_BITS);
  }

  find(flow: Flow): E | null {
    const v6 = this.af === 6;
    for (let e = this.buckets[this.bucketOf(flow)] ?? null; e !== null; e = e.next) {
      if (e.a0 === flow.d0 >>> 0 && (!v6 || (e.a1 === flow.d1 >>> 0 && e.a2 === flow.d2 >>> 0 && e.a3 === flow.d3 >>> 0))) return e;
    }
    return null;
  }

  /** Hash a new entry for the flow's destination address (at the head of its bucket). */
  insert(flow: Flow, e: E): void {
    const b = this.bucketOf(flow);
    e.next = this.buckets[b] ?? null;
    this.buckets[b] = e;
    this.entries++;
  }

  /** Run the periodic checks that were due by `now`, each at its own time. */
  tick(now: number, expirationMs: number): void {
    while (now >= this.nextCheck) {
      this.checkExpire(this.nextCheck, expirationMs);
      this.nextCheck += CHECK_EXPIRE_INTERVAL_MS;
    }
  }

  private checkExpire(now: number, expirationMs: number): void {
    if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      this.sweep(now, expirationMs, Number.POSITIVE_INFINITY);
      this.counter = 1;
      return;
    }
    if (this.entries <= MAX_SIZE) {
      this.counter++;
      return;
    }
    const goal = Math.min(Math.trunc(((this.entries - MAX_SIZE) * 4) / 3), MAX_SIZE / 2);
    this.sweep(now, ENTRY_TIMEOUT_MS, goal);
  }

  /** Delete entries idle for `idleMs`, bucket by bucket after the rover, until `goal` are gone. */
  private sweep(now: number, idleMs: number, goal: number): void {
    let j = this.rover;
    for (let i = 0; i < TAB_SIZE; i++) {
      j = (j + 1) & TAB_MASK;
      let prev: E | null = null;
      for (let e = this.buckets[j] ?? null; e !== null; ) {
        const next = e.next;
        if (now < e.lastuse + idleMs) {
          prev = e;
        } else {
          if (prev) prev.next = next;
          else this.buckets[j] = next;
          this.entries--;
          this.release(e);
          goal--;
        }
        e = next;
      }
      // The kernel checks the goal per bucket, not per entry.
      if (goal <= 0) break;
    }
    this.rover = j;
  }

  /** Drop every entry (done_service). */
  flush(): void {
    for (let b = 0; b < TAB_SIZE; b++) {
      for (let e = this.buckets[b] ?? null; e !== null; e = e.next) this.release(e);
      this.buckets[b] = null;
    }
    this.entries = 0;
  }
}
