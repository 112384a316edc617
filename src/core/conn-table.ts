// The connection table: IPVS's ip_vs_conn entries (connections and persistence templates)
// stored as columns of typed arrays, so that millions of entries cost ~120 bytes each and no
// JS object per connection. An entry is named by its index; indexes are reused after free.
//
// - Hash: every entry is hashed once by (protocol, client address, client port), as the
//   kernel does, into chained buckets (Int32Array heads + per-entry next links). IN, OUT and
//   template lookups all start from that bucket.
// - Timers: a timing wheel of WHEEL_SLOTS slots of SLOT_MS each with intrusive doubly linked
//   lists. Touching an entry only rewrites its `expires`; an entry found in a slot that is due
//   but whose `expires` lies later is moved then (lazy re-arming, so a packet costs no list
//   work). Expiry runs with a work budget so that expiring a million entries never stalls the
//   caller for long.
//
// This module knows storage only; what a connection means (states, counters, persistence) is
// the director's business.

import type { Family } from './addr.js';

export const SLOT_MS = 64;
const WHEEL_BITS = 13;
export const WHEEL_SLOTS = 1 << WHEEL_BITS;
const WHEEL_MASK = WHEEL_SLOTS - 1;
const NIL = -1;

export interface AddrWords {
  family: Family;
  w0: number;
  w1: number;
  w2: number;
  w3: number;
}

export class ConnTable {
  capacity = 0;
  /** Live entries (connections + templates). */
  count = 0;
  /** One past the highest index ever used (iteration bound). */
  high = 0;

  // columns
  af!: Uint8Array; // 4 or 6; 0 = free slot
  daf!: Uint8Array;
  protocol!: Uint8Array;
  state!: Uint8Array;
  oldState!: Uint8Array;
  caddr!: Uint32Array; // 4 words per entry
  vaddr!: Uint32Array;
  daddr!: Uint32Array;
  cport!: Uint16Array;
  vport!: Uint16Array;
  dport!: Uint16Array;
  flags!: Uint32Array;
  fwmark!: Uint32Array;
  /** Current inactivity timeout, ms. */
  timeout!: Uint32Array;
  /** Absolute expiry time, ms. */
  expires!: Float64Array;
  inPkts!: Uint32Array;
  /** Controlling entry (persistence template) or -1. */
  control!: Int32Array;
  nControl!: Uint32Array;
  /** Index into the director's dest registry, or -1 (unbound). */
  dest!: Int32Array;
  /** Free for the data plane that carries the connection (e.g. the proxy's relay slot). */
  planeSlot!: Int32Array;
  /**
   * Connection sync: the kernel's sync_endtime in 4 ms jiffies, modulo 2^16 (2 bytes keep the
   * entry within its memory budget; see core/sync.ts expandJiffies16). 0 = not yet known.
   */
  syncEnd!: Uint16Array;
  private hashNext!: Int32Array;
  private wheelNext!: Int32Array;
  private wheelPrev!: Int32Array;
  /** Wheel slot the entry is linked in, -1 for none (free, or on the due list). */
  private wheelSlot!: Int32Array;

  private buckets: Int32Array;
  private bucketMask: number;
  private freeHead = NIL;
  private readonly wheel = new Int32Array(WHEEL_SLOTS).fill(NIL);
  /** Entries to expire at the next advance, whatever their `expires` (expire_now). */
  private dueHead = NIL;
  /** Next wheel tick (slot time index) not yet fully processed. */
  private nextTick: number;
  private readonly seed: number;

  constructor(initialCapacity = 1 << 12, now = 0, seed = 0x9e3779b9) {
    this.seed = seed >>> 0;
    this.allocColumns(Math.max(16, initialCapacity));
    const nb = 1 << Math.max(8, Math.ceil(Math.log2(this.capacity)));
    this.buckets = new Int32Array(nb).fill(NIL);
    this.bucketMask = nb - 1;
    this.nextTick = Math.floor(now / SLOT_MS);
  }

  private allocColumns(cap: number): void {
    const old = this.capacity;
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T | undefined, ctor: new (n: number) => T, per = 1): T => {
      const n = new ctor(cap * per);
      if (a) n.set(a);
      return n;
    };
    this.af = grow(this.af, Uint8Array);
    this.daf = grow(this.daf, Uint8Array);
    this.protocol = grow(this.protocol, Uint8Array);
    this.state = grow(this.state, Uint8Array);
    this.oldState = grow(this.oldState, Uint8Array);
    this.caddr = grow(this.caddr, Uint32Array, 4);
    this.vaddr = grow(this.vaddr, Uint32Array, 4);
    this.daddr = grow(this.daddr, Uint32Array, 4);
    this.cport = grow(this.cport, Uint16Array);
    this.vport = grow(this.vport, Uint16Array);
    this.dport = grow(this.dport, Uint16Array);
    this.flags = grow(this.flags, Uint32Array);
    this.fwmark = grow(this.fwmark, Uint32Array);
    this.timeout = grow(this.timeout, Uint32Array);
    this.expires = grow(this.expires, Float64Array);
    this.inPkts = grow(this.inPkts, Uint32Array);
    this.control = grow(this.control, Int32Array);
    this.nControl = grow(this.nControl, Uint32Array);
    this.dest = grow(this.dest, Int32Array);
    this.planeSlot = grow(this.planeSlot, Int32Array);
    this.syncEnd = grow(this.syncEnd, Uint16Array);
    this.hashNext = grow(this.hashNext, Int32Array);
    this.wheelNext = grow(this.wheelNext, Int32Array);
    this.wheelPrev = grow(this.wheelPrev, Int32Array);
    this.wheelSlot = grow(this.wheelSlot, Int32Array);
    this.capacity = cap;
    // New slots are not on the free list yet: `high` hands them out in order.
    void old;
  }

  /** Bytes held by the table's typed arrays (for the memory figures). */
  get byteSize(): number {
    let n = 0;
    for (const v of Object.values(this)) if (ArrayBuffer.isView(v)) n += v.byteLength;
    return n;
  }

  private hashKey(protocol: number, a0: number, a1: number, a2: number, a3: number, port: number): number {
    let h = Math.imul((a0 ^ a1 ^ a2 ^ a3 ^ this.seed) >>> 0, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ (port | (protocol << 16)), 0x85ebca77);
    return (h ^ (h >>> 13)) & this.bucketMask;
  }

  /** A fresh entry with every column reset; the caller fills and hashes it. */
  alloc(): number {
    let i = this.freeHead;
    if (i !== NIL) {
      this.freeHead = this.hashNext[i]!;
    } else {
      if (this.high === this.capacity) this.growTo(this.capacity * 2);
      i = this.high++;
    }
    this.count++;
    this.control[i] = NIL;
    this.nControl[i] = 0;
    this.dest[i] = NIL;
    this.planeSlot[i] = NIL;
    this.syncEnd[i] = 0;
    this.inPkts[i] = 0;
    this.state[i] = 0;
    this.oldState[i] = 0;
    this.flags[i] = 0;
    this.fwmark[i] = 0;
    this.hashNext[i] = NIL;
    this.wheelSlot[i] = NIL;
    this.wheelNext[i] = NIL;
    this.wheelPrev[i] = NIL;
    return i;
  }

  /** Release an entry (must be unhashed and off the timers). */
  free(i: number): void {
    this.af[i] = 0;
    this.hashNext[i] = this.freeHead;
    this.freeHead = i;
    this.count--;
  }

  private growTo(cap: number): void {
    this.allocColumns(cap);
    if (cap > this.bucketMask + 1) this.rehash(cap);
  }

  private rehash(nb: number): void {
    const size = 1 << Math.ceil(Math.log2(nb));
    this.buckets = new Int32Array(size).fill(NIL);
    this.bucketMask = size - 1;
    for (let i = 0; i < this.high; i++) {
      if (this.af[i] === 0 || (this.flags[i]! & HASHED) === 0) continue;
      const b = this.bucketOf(i);
      this.hashNext[i] = this.buckets[b]!;
      this.buckets[b] = i;
    }
  }

  setAddr(col: Uint32Array, i: number, a: AddrWords): void {
    const o = i * 4;
    col[o] = a.w0;
    col[o + 1] = a.w1;
    col[o + 2] = a.w2;
    col[o + 3] = a.w3;
  }

  private bucketOf(i: number): number {
    const o = i * 4;
    return this.hashKey(this.protocol[i]!, this.caddr[o]!, this.caddr[o + 1]!, this.caddr[o + 2]!, this.caddr[o + 3]!, this.cport[i]!);
  }

  /** Insert at the head of its chain (newest entries are found first, as in the kernel). */
  hash(i: number): void {
    if (this.flags[i]! & HASHED) return;
    const b = this.bucketOf(i);
    this.hashNext[i] = this.buckets[b]!;
    this.buckets[b] = i;
    this.flags[i]! |= HASHED;
  }

  unhash(i: number): void {
    if (!(this.flags[i]! & HASHED)) return;
    const b = this.bucketOf(i);
    let p = this.buckets[b]!;
    if (p === i) {
      this.buckets[b] = this.hashNext[i]!;
    } else {
      while (p !== NIL && this.hashNext[p] !== i) p = this.hashNext[p]!;
      if (p !== NIL) this.hashNext[p] = this.hashNext[i]!;
    }
    this.hashNext[i] = NIL;
    this.flags[i]! &= ~HASHED;
  }

  isHashed(i: number): boolean {
    return (this.flags[i]! & HASHED) !== 0;
  }

  /**
   * IN lookup (__ip_vs_conn_in_get): client → virtual tuple. A zero client port only matches
   * NO_CPORT entries and the other way round; templates never match (their cport is 0 and
   * they lack NO_CPORT).
   */
  lookupIn(af: number, protocol: number, c0: number, c1: number, c2: number, c3: number, cport: number, v0: number, v1: number, v2: number, v3: number, vport: number): number {
    let i = this.buckets[this.hashKey(protocol, c0, c1, c2, c3, cport)]!;
    const wantNoCport = cport === 0;
    while (i !== NIL) {
      const o = i * 4;
      if (
        this.cport[i] === cport &&
        this.vport[i] === vport &&
        this.protocol[i] === protocol &&
        this.af[i] === af &&
        this.caddr[o] === c0 &&
        this.vaddr[o] === v0 &&
        this.caddr[o + 1] === c1 &&
        this.caddr[o + 2] === c2 &&
        this.caddr[o + 3] === c3 &&
        this.vaddr[o + 1] === v1 &&
        this.vaddr[o + 2] === v2 &&
        this.vaddr[o + 3] === v3 &&
        wantNoCport === ((this.flags[i]! & NO_CPORT) !== 0)
      ) {
        return i;
      }
      i = this.hashNext[i]!;
    }
    return NIL;
  }

  /**
   * OUT lookup (ip_vs_conn_out_get): a reply from src:sport to dst:dport matches an entry whose
   * client is dst:dport and whose real server (NAT) or virtual address (others) is src:sport.
   * `natMethod` tells which forwarding method value means NAT in the entry's flags.
   */
  lookupOut(af: number, protocol: number, s0: number, s1: number, s2: number, s3: number, sport: number, d0: number, d1: number, d2: number, d3: number, dport: number): number {
    let i = this.buckets[this.hashKey(protocol, d0, d1, d2, d3, dport)]!;
    while (i !== NIL) {
      const o = i * 4;
      if (
        this.cport[i] === dport &&
        this.protocol[i] === protocol &&
        this.af[i] === af &&
        this.caddr[o] === d0 &&
        this.caddr[o + 1] === d1 &&
        this.caddr[o + 2] === d2 &&
        this.caddr[o + 3] === d3 &&
        !(this.flags[i]! & TEMPLATE)
      ) {
        const nat = (this.flags[i]! & 7) === 0;
        const col = nat ? this.daddr : this.vaddr;
        const port = nat ? this.dport[i] : this.vport[i];
        if (port === sport && col[o] === s0 && col[o + 1] === s1 && col[o + 2] === s2 && col[o + 3] === s3) return i;
      }
      i = this.hashNext[i]!;
    }
    return NIL;
  }

  /**
   * Template lookup (ip_vs_ct_in_get). For fwmark templates (protocol 0) the virtual address is
   * the mark stored as an IPv4 number and compared on its first word only.
   */
  lookupTemplate(af: number, protocol: number, c0: number, c1: number, c2: number, c3: number, cport: number, v0: number, v1: number, v2: number, v3: number, vport: number): number {
    let i = this.buckets[this.hashKey(protocol, c0, c1, c2, c3, cport)]!;
    const fwm = protocol === 0;
    while (i !== NIL) {
      const o = i * 4;
      if (
        this.flags[i]! & TEMPLATE &&
        this.cport[i] === cport &&
        this.vport[i] === vport &&
        this.protocol[i] === protocol &&
        this.af[i] === af &&
        this.caddr[o] === c0 &&
        this.caddr[o + 1] === c1 &&
        this.caddr[o + 2] === c2 &&
        this.caddr[o + 3] === c3 &&
        this.vaddr[o] === v0 &&
        (fwm || (this.vaddr[o + 1] === v1 && this.vaddr[o + 2] === v2 && this.vaddr[o + 3] === v3))
      ) {
        return i;
      }
      i = this.hashNext[i]!;
    }
    return NIL;
  }

  // ---- timers ---------------------------------------------------------------------------

  private link(i: number, slot: number): void {
    const head = this.wheel[slot]!;
    this.wheelNext[i] = head;
    this.wheelPrev[i] = NIL;
    if (head !== NIL) this.wheelPrev[head] = i;
    this.wheel[slot] = i;
    this.wheelSlot[i] = slot;
  }

  private unlinkTimer(i: number): void {
    const slot = this.wheelSlot[i]!;
    if (slot === NIL) return;
    const n = this.wheelNext[i]!;
    const p = this.wheelPrev[i]!;
    if (p !== NIL) this.wheelNext[p] = n;
    else if (slot === DUE) this.dueHead = n;
    else this.wheel[slot] = n;
    if (n !== NIL) this.wheelPrev[n] = p;
    this.wheelSlot[i] = NIL;
  }

  /**
   * Start or re-arm the entry's timer (mod_timer). Re-arming only rewrites the deadline; the
   * wheel catches up lazily, except that an entry sitting in a slot after its new deadline is
   * moved forward so it never expires late.
   */
  setTimer(i: number, expires: number): void {
    this.expires[i] = expires;
    const s = this.wheelSlot[i]!;
    if (s === NIL) {
      this.link(i, this.slotFor(expires));
    } else if (s !== DUE && Math.floor(expires / SLOT_MS) < this.nextTick + ((s - this.nextTick) & WHEEL_MASK)) {
      this.unlinkTimer(i);
      this.link(i, this.slotFor(expires));
    }
  }

  /** Expire at the next advance whatever its deadline (ip_vs_conn_expire_now). */
  expireNow(i: number): void {
    this.unlinkTimer(i);
    const head = this.dueHead;
    this.wheelNext[i] = head;
    this.wheelPrev[i] = NIL;
    if (head !== NIL) this.wheelPrev[head] = i;
    this.dueHead = i;
    this.wheelSlot[i] = DUE;
  }

  /** Stop the timer (the entry is being freed by other means). */
  disarm(i: number): void {
    this.unlinkTimer(i);
  }

  isDue(i: number): boolean {
    return this.wheelSlot[i] === DUE;
  }

  private slotFor(expires: number): number {
    const t = Math.max(Math.floor(expires / SLOT_MS), this.nextTick);
    return t & WHEEL_MASK;
  }

  /**
   * Expire due entries: calls onExpire(i) for each entry whose deadline is ≤ now (and every
   * expire_now entry), at most `budget` of them. onExpire must free, re-arm or re-key the
   * entry. Returns true when everything due was handled, false when the budget ran out.
   */
  advance(now: number, budget: number, onExpire: (i: number) => void): boolean {
    let left = budget;
    while (this.dueHead !== NIL) {
      if (left-- <= 0) return false;
      const i = this.dueHead;
      this.unlinkTimer(i);
      onExpire(i);
    }
    const nowTick = Math.floor(now / SLOT_MS);
    while (this.nextTick <= nowTick) {
      const slot = this.nextTick & WHEEL_MASK;
      // Detach the slot's list: entries re-armed into this same slot (a full lap ahead) land
      // on the new list and are not visited again in this pass.
      let i = this.wheel[slot]!;
      this.wheel[slot] = NIL;
      while (i !== NIL) {
        const next = this.wheelNext[i]!;
        this.wheelSlot[i] = NIL;
        if (this.expires[i]! <= now) {
          if (left-- <= 0) {
            // Put this entry and the rest back; continue here next time.
            this.relinkChain(i, slot);
            return false;
          }
          onExpire(i);
        } else {
          const t = Math.floor(this.expires[i]! / SLOT_MS);
          this.link(i, Math.max(t, this.nextTick) & WHEEL_MASK);
        }
        i = next;
      }
      if (this.nextTick === nowTick) break; // the current slot stays current
      this.nextTick++;
    }
    return true;
  }

  /**
   * The budget ran out in the middle of a slot: make the unvisited rest (still linked among
   * themselves, still marked with this slot) the slot's list again in O(1), and move back the
   * few entries this pass re-linked into the slot one by one (each was visited anyway).
   */
  private relinkChain(first: number, slot: number): void {
    let again = this.wheel[slot]!;
    this.wheel[slot] = first;
    this.wheelPrev[first] = NIL;
    this.wheelSlot[first] = slot;
    while (again !== NIL) {
      const next = this.wheelNext[again]!;
      this.link(again, slot);
      again = next;
    }
  }

  /** Earliest time at which advance() has work, for callers that sleep between ticks. */
  nextDeadline(): number {
    return this.dueHead !== NIL ? 0 : this.nextTick * SLOT_MS;
  }

  /** Iterate live entries (index order). */
  *entries(): IterableIterator<number> {
    for (let i = 0; i < this.high; i++) if (this.af[i] !== 0) yield i;
  }
}

// Table-private flag bits (kept in `flags` next to the kernel's IP_VS_CONN_F_* values).
const HASHED = 0x0040; // IP_VS_CONN_F_HASHED
const NO_CPORT = 0x0800;
const TEMPLATE = 0x1000;
const DUE = -2;
