// mh — Maglev Hashing (ip_vs_mh.c).
//
// Every dest gets a permutation of the M table slots from its address and port (offset and skip
// from two hsiphash keys); the dests take turns, in list order, claiming their next free slot,
// each `turns` slots per round, until the table is full. turns comes from last_weight (the last
// non-zero weight) divided by the gcd and shifted right so that the largest fits in TAB_BITS
// bits; quiescing a dest (weight 0) therefore leaves the table alone and only makes the dest
// unusable at lookup. A client maps to slot hsiphash(source port + source address fold) mod M
// (the port only with mh-port, SCHED2); with mh-fallback (SCHED1) an unusable dest sends the
// lookup on through further hashes of the same key.
//
// The table is rebuilt on init, add, delete and edit. More dests than slots makes the rebuild
// fail with EINVAL: at init that refuses the scheduler; from the dest hooks the kernel ignores
// the error, so the change is applied and the old table stays (and may name deleted dests).

import { IpvsError } from '../errors.js';
import { SVC_F_SCHED_MH_FALLBACK, SVC_F_SCHED_MH_PORT } from '../constants.js';
import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import { HsiphashKey, hashPort, hsiphash32, sourceFold } from './hash.js';
import type { SchedulerInstance, SchedulerOps } from './scheduler.js';
import { fls, gcd } from './util/arith.js';
import { isOverloaded } from './util/least-conn.js';

/** The table sizes CONFIG_IP_VS_MH_TAB_INDEX 8..17 selects (primes[index - 8]). */
export const MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
/** The kernel's default CONFIG_IP_VS_MH_TAB_INDEX: M = 4093. */
export const MH_DEFAULT_TAB_INDEX = 12;

const HASH1 = HsiphashKey.repeated(2654435761);
const HASH2 = HsiphashKey.repeated(2654446892);
const EMPTY = -1;

export interface MhOptions {
  /** CONFIG_IP_VS_MH_TAB_INDEX, 8..17 (default 12: M = 4093; 17: M = 131071). */
  tabIndex?: number;
}

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || isOverloaded(d);
}

/** ip_vs_mh_hashkey modulo m: hsiphash of (offset + port + address fold), as a u32, mod m. */
function mhHash(key: HsiphashKey, fold: number, port: number, offset: number, m: number): number {
  return (hsiphash32(key, (offset + port + fold) | 0) >>> 0) % m;
}

export class MaglevHashing implements SchedulerInstance {
  /** Slot -> index into `members`, or EMPTY. */
  private lookup: Int32Array;
  /** The dests the current table refers to (the list as it was when the table was built). */
  private members: Dest[] = [];

  constructor(
    private readonly svc: Service,
    private readonly size: number,
    private readonly tabBits: number,
  ) {
    this.lookup = new Int32Array(size).fill(EMPTY);
    if (!this.reassign()) {
      throw new IpvsError('EINVAL', `mh: ${svc.dests.length} destinations do not fit a lookup table of ${size}`);
    }
  }

  /** Rebuild the table from the current list; false (table untouched) if it cannot hold them. */
  private reassign(): boolean {
    const list = this.svc.dests;
    const n = list.length;
    const M = this.size;
    if (n > M) return false;
    // gcd and shift of the last weights (ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight).
    let g = 0;
    let maxWeight = 0;
    for (const d of list) {
      const w = d.lastWeight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > maxWeight) maxWeight = w;
    }
    if (g < 1) {
      this.lookup = new Int32Array(M).fill(EMPTY);
      this.members = [];
      return true;
    }
    const rshift = Math.max(0, fls(Math.trunc(maxWeight / g)) - this.tabBits);
    // Permutation of each dest (ip_vs_mh_permutate).
    const perm = new Int32Array(n);
    const skip = new Int32Array(n);
    const turns = new Int32Array(n);
    const af4 = this.svc.af === 4;
    for (let i = 0; i < n; i++) {
      const d = list[i]!;
      const a = d.addr;
      const fold = af4 ? a.w0 >>> 0 : (a.w0 ^ a.w1 ^ a.w2 ^ a.w3) >>> 0;
      perm[i] = mhHash(HASH1, fold, d.port, 0, M);
      skip[i] = mhHash(HASH2, fold, d.port, 0, M - 1) + 1;
      const lw = d.lastWeight;
      turns[i] = Math.trunc(lw / g) >> rshift || (lw !== 0 ? 1 : 0);
    }
    this.lookup = populate(M, perm, skip, turns);
    this.members = list.slice();
    return true;
  }

  addDest(_dest: Dest): void {
    this.reassign();
  }

  delDest(_dest: Dest): void {
    this.reassign();
  }

  updDest(_dest: Dest): void {
    this.reassign();
  }

  schedule(flow: Flow): Dest | null {
    const svc = this.svc;
    const M = this.size;
    const port = svc.flags & SVC_F_SCHED_MH_PORT ? hashPort(flow) : 0;
    const fold = sourceFold(svc, flow);
    const ihash = mhHash(HASH1, fold, port, 0, M);
    const first = this.lookup[ihash]!;
    if (first === EMPTY) return null;
    const d = this.members[first]!;
    if (!unavailable(d)) return d;
    if ((svc.flags & SVC_F_SCHED_MH_FALLBACK) === 0) return null;
    for (let offset = 0; offset < M; offset++) {
      const roffset = (offset + ihash) % M;
      const idx = this.lookup[mhHash(HASH1, fold, port, roffset, M)]!;
      if (idx === EMPTY) break;
      const e = this.members[idx]!;
      if (!unavailable(e)) return e;
    }
    return null;
  }

  /** Table size M. */
  get tableSize(): number {
    return this.size;
  }

  /** The dest a table slot names (null: empty), for status views and tests. */
  slotOwner(slot: number): Dest | null {
    const idx = this.lookup[slot]!;
    return idx === EMPTY ? null : this.members[idx]!;
  }

  done(): void {
    this.members = [];
  }
}

/**
 * ip_vs_mh_populate: the dests take turns in list order, each claiming `turns[i]` slots per
 * round, a claim being the first free slot along its permutation perm[i], perm[i] + skip[i], ...
 * (mod M), until all M slots are taken. Returns slot -> dest index. `perm` is consumed.
 *
 * Stepping through taken slots costs about M / free probes per claim, so the last few percent
 * of the table cost most of the work. Once about sqrt(2M) slots are left (where scanning them
 * gets cheaper than probing), a claim looks at the free slots themselves instead: the first one
 * along the permutation is the free slot f with the smallest step count
 * (f - perm) * skip^-1 mod M (M is prime, so skip has an inverse). Same slots, same order.
 */
export function populate(M: number, perm: Int32Array, skip: Int32Array, turns: Int32Array): Int32Array {
  const n = perm.length;
  // Every slot gets written: the table is full when this returns.
  const table = new Int32Array(M);
  // The kernel's bitmap of taken slots: 16 KiB for the largest table, so probes stay in cache.
  const taken = new Int32Array((M + 31) >>> 5);
  let free = M;
  const tail = Math.ceil(Math.sqrt(2 * M));
  let freeSlots: Int32Array | null = null;
  let inverse: Float64Array | null = null;
  let claims = 0;
  for (;;) {
    for (let i = 0; i < n; ) {
      const t = turns[i]!;
      if (t < 1) {
        i++;
        continue;
      }
      let c = perm[i]!;
      if (free > tail) {
        const s = skip[i]!;
        while ((taken[c >>> 5]! & (1 << (c & 31))) !== 0) {
          c += s;
          if (c >= M) c -= M;
        }
        taken[c >>> 5]! |= 1 << (c & 31);
      } else {
        if (freeSlots === null || inverse === null) {
          freeSlots = new Int32Array(free);
          for (let k = 0, j = 0; k < M; k++) if ((taken[k >>> 5]! & (1 << (k & 31))) === 0) freeSlots[j++] = k;
          inverse = new Float64Array(n);
          for (let k = 0; k < n; k++) inverse[k] = modInverse(skip[k]!, M);
        }
        const inv = inverse[i]!;
        let bestSteps = M;
        let best = 0;
        for (let j = 0; j < free; j++) {
          let d = freeSlots[j]! - c;
          if (d < 0) d += M;
          const x = d * inv; // below 2^34: exact
          const steps = x - Math.floor(x / M) * M;
          if (steps < bestSteps) {
            bestSteps = steps;
            best = j;
          }
        }
        c = freeSlots[best]!;
        freeSlots[best] = freeSlots[free - 1]!;
      }
      table[c] = i;
      perm[i] = c;
      if (--free === 0) return table;
      if (++claims >= t) {
        claims = 0;
        i++;
      }
    }
  }
}

/** x^-1 mod m for a prime m and 0 < x < m (extended Euclid). */
function modInverse(x: number, m: number): number {
  let [r0, r1] = [m, x];
  let [t0, t1] = [0, 1];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return t0 < 0 ? t0 + m : t0;
}

/** mh with a chosen table size (the kernel's build-time CONFIG_IP_VS_MH_TAB_INDEX). */
export function createMhScheduler(options: MhOptions = {}): SchedulerOps {
  const tabIndex = options.tabIndex ?? MH_DEFAULT_TAB_INDEX;
  if (!Number.isInteger(tabIndex) || tabIndex < 8 || tabIndex > 17) throw new RangeError(`mh tabIndex must be 8..17, not ${tabIndex}`);
  const size = MH_PRIMES[tabIndex - 8]!;
  const tabBits = tabIndex >> 1;
  return { name: 'mh', init: (svc) => new MaglevHashing(svc, size, tabBits) };
}

export const mhScheduler: SchedulerOps = createMhScheduler();
