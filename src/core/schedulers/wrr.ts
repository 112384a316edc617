// wrr — Weighted Round Robin (ip_vs_wrr.c).
//
// State: cursor cl (a dest, or the list head), current weight cw, mw = max weight - (di - 1),
// di = gcd of the positive weights. A decision takes the first dest after cl that is not
// overloaded and has weight >= cw; at the end of the list cw drops by di and the scan restarts
// from the head. The stop rules (last_pass, restarted, stop) are the kernel's, which end a
// decision after every dest was checked at cw = 1. Every add/del/edit resets cl to the head and
// adjusts cw without setting it to mw, which is why a service filled by successive adds starts
// with a pass at cw = 1 (spec §4.4).
// "First dest after cl with usable weight >= cw" is a max-tree query instead of a walk, and runs
// of passes that cannot match anything are skipped arithmetically, with the same end state.

import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import type { SchedulerInstance, SchedulerOps } from './scheduler.js';
import { gcd } from './util/arith.js';
import { isOverloaded } from './util/least-conn.js';
import { MaxTree } from './util/max-tree.js';
import { ListSlots } from './util/slots.js';

const HEAD = -1;
const NO_STOP = -2;

function usableWeight(d: Dest): number {
  return isOverloaded(d) ? 0 : d.weight;
}

class WeightedRoundRobin implements SchedulerInstance {
  private readonly slots = new ListSlots();
  private readonly weights = new MaxTree();
  /** Slot of the current dest (mark->cl), or HEAD. */
  private cl = HEAD;
  private cw: number;
  private mw = 0;
  private di = 1;

  constructor(private readonly svc: Service) {
    this.rebuild();
    this.measure();
    this.cw = this.mw;
  }

  private rebuild(): void {
    const capacity = this.slots.layout(this.svc.dests);
    this.weights.reset(capacity);
    const dests = this.slots.dests;
    for (let s = 0; s < capacity; s++) {
      const d = dests[s];
      if (d) this.weights.put(s, usableWeight(d));
    }
    this.weights.build();
  }

  /** di and mw from the current weights (ip_vs_wrr_gcd_weight, ip_vs_wrr_max_weight). */
  private measure(): void {
    let g = 0;
    let max = 0;
    for (const d of this.svc.dests) {
      const w = d.weight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > max) max = w;
    }
    this.di = g > 0 ? g : 1;
    this.mw = max - (this.di - 1);
  }

  /** ip_vs_wrr_dest_changed: the hook for add, delete and edit alike. */
  private destChanged(): void {
    this.cl = HEAD;
    this.measure();
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }

  addDest(dest: Dest): void {
    const slot = this.slots.insertHead(dest, this.svc.dests);
    if (slot < 0) this.rebuild();
    else this.weights.set(slot, usableWeight(dest));
    this.destChanged();
  }

  delDest(dest: Dest): void {
    const slot = this.slots.remove(dest);
    if (slot >= 0) this.weights.set(slot, -1);
    if (this.slots.sparse) this.rebuild();
    this.destChanged();
  }

  updDest(dest: Dest): void {
    this.refresh(dest);
    this.destChanged();
  }

  loadChanged(dest: Dest): void {
    this.refresh(dest);
  }

  private refresh(dest: Dest): void {
    const slot = this.slots.slotOf(dest);
    if (slot < 0) return;
    const w = usableWeight(dest);
    if (this.weights.get(slot) !== w) this.weights.set(slot, w);
  }

  schedule(_flow: Flow): Dest | null {
    if (this.mw === 0) return null;
    const weights = this.weights;
    const di = this.di;
    const last = this.cl;
    let stop = NO_STOP;
    let lastPass = false;
    let restarted = false;
    let from = last;
    for (;;) {
      const slot = weights.firstAtLeast(from + 1, this.cw);
      // The kernel checks a dest's weight before comparing it with stop.
      if (stop !== NO_STOP && stop > from && (slot < 0 || stop < slot)) {
        this.cl = stop;
        return null;
      }
      if (slot >= 0) {
        this.cl = slot;
        return this.slots.dests[slot]!;
      }
      this.cw -= di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === HEAD) {
          this.cl = HEAD;
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= di;
      if (lastPass && restarted && last !== HEAD) stop = last;
      from = HEAD;
      if (stop === NO_STOP) this.skipBarrenPasses();
    }
  }

  /**
   * Before a full pass: passes whose cw exceeds every usable weight find nothing and only lower
   * cw by di. Skip them in one step, as long as cw stays above di (so last_pass stays false and
   * no restart happens in between), leaving exactly the state the kernel would reach.
   */
  private skipBarrenPasses(): void {
    const max = this.weights.max;
    const cw = this.cw;
    const di = this.di;
    if (cw <= max) return;
    const toMatch = Math.ceil((cw - Math.max(max, 0)) / di);
    const aboveDi = Math.floor((cw - di - 1) / di);
    const k = Math.min(toMatch, aboveDi);
    if (k > 0) this.cw = cw - k * di;
  }

  done(): void {}
}

export const wrrScheduler: SchedulerOps = {
  name: 'wrr',
  init: (svc) => new WeightedRoundRobin(svc),
};
