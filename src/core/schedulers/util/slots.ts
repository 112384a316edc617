// Positions that keep the kernel's list order while the list changes.
//
// The kernel walks svc->destinations from the head, and new dests go to the head, so "earlier in
// the list" means "added later". Indexed schedulers need a number per dest whose order is the
// list order and that does not change when another dest is added or removed: a slot. The dests
// are laid out at the end of a slot array with free room before them; a dest added at the head
// takes the slot before the current first one, a deleted dest leaves a hole. When the room runs
// out, or holes dominate, everything is laid out again (amortised O(1) per change).

import type { Dest } from '../../service.js';

const MIN_CAPACITY = 8;

export class ListSlots {
  /** Slot -> dest (null: a hole or free room). */
  dests: (Dest | null)[] = [];
  /** Number of slots, a power of two (the index trees use it as their leaf count). */
  capacity = 0;
  /** Lowest slot in use; a dest added at the head goes to front - 1. */
  private front = 0;
  /** Dests currently holding a slot. */
  live = 0;

  /** Lay the list out afresh, in list order; returns the new capacity. */
  layout(list: readonly Dest[]): number {
    const n = list.length;
    // Room for at least n/4 more head inserts before the next layout (amortised O(1) each).
    let capacity = MIN_CAPACITY;
    while (capacity < n + Math.max(MIN_CAPACITY, n >> 2)) capacity *= 2;
    this.capacity = capacity;
    this.dests = new Array<Dest | null>(capacity).fill(null);
    this.front = capacity - n;
    for (let i = 0; i < n; i++) {
      const d = list[i]!;
      this.dests[this.front + i] = d;
      d.schedSlot = this.front + i;
    }
    this.live = n;
    return capacity;
  }

  /**
   * Give a slot to a dest that was just inserted at the list head. Returns the slot, or -1 when
   * the layout must be redone (no room left, or the list changed in a way not seen here).
   */
  insertHead(dest: Dest, list: readonly Dest[]): number {
    if (this.front === 0 || list[0] !== dest || list.length !== this.live + 1) return -1;
    const slot = --this.front;
    this.dests[slot] = dest;
    dest.schedSlot = slot;
    this.live++;
    return slot;
  }

  /** Free a dest's slot; returns it, or -1 if the dest had none here. */
  remove(dest: Dest): number {
    const slot = this.slotOf(dest);
    if (slot < 0) return -1;
    this.dests[slot] = null;
    this.live--;
    return slot;
  }

  /** The dest's slot in this layout, or -1 (never laid out here, deleted, or a stale slot). */
  slotOf(dest: Dest): number {
    const slot = dest.schedSlot;
    return slot >= 0 && slot < this.capacity && this.dests[slot] === dest ? slot : -1;
  }

  /** True when holes outnumber dests enough that a fresh layout pays off. */
  get sparse(): boolean {
    return this.capacity > 4 * MIN_CAPACITY && this.live * 4 < this.capacity;
  }

  /** The live slot before `slot` in list order, or -1 (the list head). */
  previous(slot: number): number {
    for (let s = slot - 1; s >= this.front; s--) if (this.dests[s] !== null) return s;
    return -1;
  }
}
