// twos — Power of Two Choices (ip_vs_twos.c, Linux 6.2+).
//
// Two independent weighted random picks among the dests that are not overloaded and have
// weight > 0 — r uniform in [0, total] (inclusive: get_random_u32_below(total + 1)), then the
// first dest in list order at which r minus the running weight sum is <= 0 — and the pick with
// the smaller overhead/weight wins, choice 1 on ties. The walk is a prefix-sum search in a sum
// tree. The kernel does this in 32-bit int arithmetic: total and the comparison products wrap;
// the comparison is reproduced with Math.imul, and a total beyond INT_MAX falls back to the
// kernel's own walk with its wrapping.

import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import type { SchedulerContext, SchedulerInstance, SchedulerOps } from './scheduler.js';
import { randomBelow } from './util/arith.js';
import { INT_MAX, isOverloaded, kernelOverhead } from './util/least-conn.js';
import { ListSlots } from './util/slots.js';
import { SumTree } from './util/sum-tree.js';

function eligibleWeight(d: Dest): number {
  return !isOverloaded(d) && d.weight > 0 ? d.weight : 0;
}

class PowerOfTwoChoices implements SchedulerInstance {
  private readonly slots = new ListSlots();
  private readonly weights = new SumTree();
  private readonly random32: () => number;

  constructor(
    private readonly svc: Service,
    ctx: SchedulerContext,
  ) {
    this.random32 = () => ctx.random32();
    this.rebuild();
  }

  private rebuild(): void {
    const capacity = this.slots.layout(this.svc.dests);
    this.weights.reset(capacity);
    const dests = this.slots.dests;
    for (let s = 0; s < capacity; s++) {
      const d = dests[s];
      if (d) this.weights.put(s, eligibleWeight(d));
    }
    this.weights.build();
  }

  addDest(dest: Dest): void {
    const slot = this.slots.insertHead(dest, this.svc.dests);
    if (slot < 0) this.rebuild();
    else this.weights.set(slot, eligibleWeight(dest));
  }

  delDest(dest: Dest): void {
    const slot = this.slots.remove(dest);
    if (slot >= 0) this.weights.set(slot, 0);
    if (this.slots.sparse) this.rebuild();
  }

  updDest(dest: Dest): void {
    this.loadChanged(dest);
  }

  loadChanged(dest: Dest): void {
    const slot = this.slots.slotOf(dest);
    if (slot >= 0) this.weights.set(slot, eligibleWeight(dest));
  }

  schedule(_flow: Flow): Dest | null {
    const total = this.weights.total;
    if (total === 0) return null;
    if (total + 1 > INT_MAX) return this.scan();
    const r1 = randomBelow(this.random32, total + 1);
    const r2 = randomBelow(this.random32, total + 1);
    // r = 0 selects the first eligible dest, as does r = 1.
    const d1 = this.slots.dests[this.weights.findPrefix(r1 > 0 ? r1 : 1)]!;
    const d2 = this.slots.dests[this.weights.findPrefix(r2 > 0 ? r2 : 1)]!;
    return Math.imul(d2.weight, kernelOverhead(d1)) > Math.imul(d1.weight, kernelOverhead(d2)) ? d2 : d1;
  }

  /** The kernel's two loops with int arithmetic, for totals that wrap. */
  private scan(): Dest | null {
    const dests = this.svc.dests;
    let total = 0;
    let choice1: Dest | null = null;
    let choice2: Dest | null = null;
    for (const d of dests) {
      if (!isOverloaded(d) && d.weight > 0) {
        total = (total + d.weight) | 0;
        choice1 = d;
      }
    }
    if (!choice1) return null;
    total = (total + 1) | 0;
    let r1 = randomBelow(this.random32, total >>> 0) | 0;
    let r2 = randomBelow(this.random32, total >>> 0) | 0;
    let weight1 = -1;
    let weight2 = -1;
    let overhead1 = 0;
    let overhead2 = 0;
    for (const d of dests) {
      if (isOverloaded(d)) continue;
      const w = d.weight;
      if (w <= 0) continue;
      r1 = (r1 - w) | 0;
      r2 = (r2 - w) | 0;
      if (r1 <= 0 && weight1 === -1) {
        choice1 = d;
        weight1 = w;
        overhead1 = kernelOverhead(d);
      }
      if (r2 <= 0 && weight2 === -1) {
        choice2 = d;
        weight2 = w;
        overhead2 = kernelOverhead(d);
      }
      if (weight1 !== -1 && weight2 !== -1) break;
    }
    if (choice2 && Math.imul(weight2, overhead1) > Math.imul(weight1, overhead2)) choice1 = choice2;
    return choice1;
  }

  done(): void {}
}

export const twosScheduler: SchedulerOps = {
  name: 'twos',
  init: (svc, ctx) => new PowerOfTwoChoices(svc, ctx),
};
