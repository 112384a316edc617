// wlc — Weighted Least Connection (ip_vs_wlc.c), the default scheduler.
//
// The dest with the smallest overhead/weight, compared as 64-bit cross products: the first dest
// that is not overloaded and has weight > 0 is the first candidate, a later non-overloaded dest
// replaces it only if strictly less loaded (weight-0 dests then never win). Ties: first in list.
// lblc and lblcr use the same choice as their fallback.

import type { Dest } from '../service.js';
import type { SchedulerOps } from './scheduler.js';
import { cmpProducts } from './util/arith.js';
import { INT_MAX, isOverloaded, kernelOverhead, LeastConnIndex, overhead } from './util/least-conn.js';

export class WeightedLeastConnection extends LeastConnIndex {
  protected rank(d: Dest): boolean {
    if (isOverloaded(d) || d.weight <= 0) return false;
    this.rankNum = overhead(d);
    this.rankDen = d.weight;
    return true;
  }

  protected override overflows(d: Dest): boolean {
    return overhead(d) > INT_MAX;
  }

  protected override scan(): Dest | null {
    return wlcScan(this.svc.dests);
  }
}

/** The kernel's wlc loop with its int overheads and 64-bit products, as written. */
export function wlcScan(dests: readonly Dest[]): Dest | null {
  let i = 0;
  let least: Dest | null = null;
  let loh = 0;
  for (; i < dests.length; i++) {
    const d = dests[i]!;
    if (!isOverloaded(d) && d.weight > 0) {
      least = d;
      loh = kernelOverhead(d);
      break;
    }
  }
  if (!least) return null;
  for (i++; i < dests.length; i++) {
    const d = dests[i]!;
    if (isOverloaded(d)) continue;
    const doh = kernelOverhead(d);
    if (cmpProducts(loh, d.weight, doh, least.weight) > 0) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

export const wlcScheduler: SchedulerOps = {
  name: 'wlc',
  init: (svc) => new WeightedLeastConnection(svc).rebuild(),
};
