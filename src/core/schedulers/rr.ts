// rr — Round Robin (ip_vs_rr.c).
//
// A cursor names the last chosen dest, or the list head before the first pick. A decision takes
// the first dest after the cursor that is not overloaded and has weight > 0, wrapping once over
// the head up to and including the cursor itself. Adding a dest does not move the cursor (the
// new dest sits at the head, reached after the wrap); deleting the cursor's dest moves the
// cursor back to its predecessor, so the next pick is the dest that followed the deleted one.
// "Next usable slot after the cursor" is a max-tree query, so a pick costs O(1) usually and
// O(log n) at worst, not a walk over unusable dests.

import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import type { SchedulerInstance, SchedulerOps } from './scheduler.js';
import { isOverloaded } from './util/least-conn.js';
import { MaxTree } from './util/max-tree.js';
import { ListSlots } from './util/slots.js';

function usable(d: Dest): number {
  return !isOverloaded(d) && d.weight > 0 ? 1 : 0;
}

class RoundRobin implements SchedulerInstance {
  private readonly slots = new ListSlots();
  private readonly usable = new MaxTree();
  /** The last chosen dest; null stands for the list head. */
  private cursor: Dest | null = null;

  constructor(private readonly svc: Service) {
    this.rebuild();
  }

  private rebuild(): void {
    const capacity = this.slots.layout(this.svc.dests);
    this.usable.reset(capacity);
    const dests = this.slots.dests;
    for (let s = 0; s < capacity; s++) {
      const d = dests[s];
      if (d) this.usable.put(s, usable(d));
    }
    this.usable.build();
  }

  addDest(dest: Dest): void {
    const slot = this.slots.insertHead(dest, this.svc.dests);
    if (slot < 0) this.rebuild();
    else this.usable.set(slot, usable(dest));
  }

  delDest(dest: Dest): void {
    const slot = this.slots.slotOf(dest);
    if (slot < 0) return;
    if (this.cursor === dest) {
      const prev = this.slots.previous(slot);
      this.cursor = prev < 0 ? null : this.slots.dests[prev]!;
    }
    this.slots.remove(dest);
    this.usable.set(slot, -1);
    if (this.slots.sparse) this.rebuild();
  }

  updDest(dest: Dest): void {
    this.loadChanged(dest);
  }

  loadChanged(dest: Dest): void {
    const slot = this.slots.slotOf(dest);
    if (slot < 0) return;
    const u = usable(dest);
    if (this.usable.get(slot) !== u) this.usable.set(slot, u);
  }

  schedule(_flow: Flow): Dest | null {
    const from = this.cursor === null ? -1 : this.cursor.schedSlot;
    let slot = this.usable.firstAtLeast(from + 1, 1);
    if (slot < 0) {
      // From the head there is no second lap; otherwise wrap up to the cursor itself.
      if (from < 0) return null;
      slot = this.usable.firstAtLeast(0, 1);
      if (slot < 0 || slot > from) return null;
    }
    const d = this.slots.dests[slot]!;
    this.cursor = d;
    return d;
  }

  done(): void {
    this.cursor = null;
  }
}

export const rrScheduler: SchedulerOps = {
  name: 'rr',
  init: (svc) => new RoundRobin(svc),
};
