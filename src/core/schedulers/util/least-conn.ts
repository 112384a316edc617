// The engine behind the least-connection family (lc, wlc, sed, nq, fo, ovf and the wlc
// fallback of lblc/lblcr). The kernel scans the whole dest list on every decision; here every
// dest's standing is kept in a tournament tree over list slots, refreshed when the connection
// table reports a load change (loadChanged) or the service table edits the dest, so a decision
// reads the root. The winner is the first dest in list order among the best, as in the kernel.
//
// The kernel computes overheads in int (or unsigned int) arithmetic; past 2^31 (8.4 million
// active connections on one dest) those wrap, and the wrapped order is not something a tree can
// hold. While any dest is in that range the scheduler answers with the kernel's own linear scan.

import { DEST_F_OVERLOAD } from '../../constants.js';
import type { Flow } from '../../flow.js';
import type { Dest, Service } from '../../service.js';
import type { SchedulerInstance } from '../scheduler.js';
import { MinTree } from './min-tree.js';
import { ListSlots } from './slots.js';

export const INT_MAX = 0x7fffffff;

/** ip_vs_dest_conn_overhead() as the kernel's int computes it (wraps like two's complement). */
export function kernelOverhead(d: Dest): number {
  return ((d.activeconns << 8) + d.inactconns) | 0;
}

/** The true overhead, active*256 + inactive. */
export function overhead(d: Dest): number {
  return d.activeconns * 256 + d.inactconns;
}

export function isOverloaded(d: Dest): boolean {
  return (d.flags & DEST_F_OVERLOAD) !== 0;
}

export abstract class LeastConnIndex implements SchedulerInstance {
  protected readonly slots = new ListSlots();
  protected readonly tree = new MinTree();
  /** Output of rank(): the dest's load as the ratio rankNum / rankDen (smaller wins). */
  protected rankNum = 0;
  protected rankDen = 1;
  /** Per slot: 1 while the dest's counters are beyond the kernel's integer range. */
  private overflow = new Uint8Array(0);
  private overflowCount = 0;

  constructor(protected readonly svc: Service) {}

  /**
   * The dest's standing: false if the scheduler would skip it, else true with its load written
   * to rankNum/rankDen (rankDen > 0).
   */
  protected abstract rank(d: Dest): boolean;

  /** True when the kernel's arithmetic for this dest overflows (then scan() decides). */
  protected overflows(_d: Dest): boolean {
    return false;
  }

  /** The kernel's linear scan, used only while some dest overflows. */
  protected scan(): Dest | null {
    return this.best();
  }

  /** Build the index from the service's current list (init, and after a fresh layout). */
  rebuild(): this {
    const capacity = this.slots.layout(this.svc.dests);
    this.tree.reset(capacity);
    this.overflow = new Uint8Array(capacity);
    this.overflowCount = 0;
    this.layoutChanged(capacity);
    const dests = this.slots.dests;
    for (let s = 0; s < capacity; s++) {
      const d = dests[s];
      if (!d) continue;
      this.track(s, d);
      if (this.rank(d)) this.tree.put(s, this.rankNum, this.rankDen);
    }
    this.tree.build();
    return this;
  }

  /** A fresh layout with `capacity` slots: reset per-slot state kept by subclasses. */
  protected layoutChanged(_capacity: number): void {}

  /** Per-slot bookkeeping besides the tree; subclasses add theirs (call super). */
  protected track(slot: number, d: Dest): void {
    const o = this.overflows(d) ? 1 : 0;
    if (o !== this.overflow[slot]) {
      this.overflowCount += o ? 1 : -1;
      this.overflow[slot] = o;
    }
  }

  /** The slot was freed. */
  protected untrack(slot: number): void {
    if (this.overflow[slot]) {
      this.overflowCount--;
      this.overflow[slot] = 0;
    }
  }

  private refresh(slot: number, d: Dest): void {
    this.track(slot, d);
    if (this.rank(d)) this.tree.set(slot, this.rankNum, this.rankDen);
    else this.tree.clear(slot);
  }

  addDest(dest: Dest): void {
    const slot = this.slots.insertHead(dest, this.svc.dests);
    if (slot < 0) this.rebuild();
    else this.refresh(slot, dest);
  }

  delDest(dest: Dest): void {
    const slot = this.slots.remove(dest);
    if (slot >= 0) {
      this.untrack(slot);
      this.tree.clear(slot);
    }
    if (this.slots.sparse) this.rebuild();
  }

  updDest(dest: Dest): void {
    const slot = this.slots.slotOf(dest);
    if (slot >= 0) this.refresh(slot, dest);
  }

  loadChanged(dest: Dest): void {
    // Dests in the trash (deleted, connections still expiring) have no slot and do not matter.
    const slot = this.slots.slotOf(dest);
    if (slot >= 0) this.refresh(slot, dest);
  }

  schedule(_flow: Flow): Dest | null {
    return this.pick();
  }

  /** The dest the kernel's scan would return. */
  protected pick(): Dest | null {
    return this.overflowCount > 0 ? this.scan() : this.best();
  }

  private best(): Dest | null {
    const s = this.tree.best();
    return s < 0 ? null : this.slots.dests[s]!;
  }

  done(): void {}
}
