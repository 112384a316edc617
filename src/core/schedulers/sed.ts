// sed — Shortest Expected Delay (ip_vs_sed.c).
//
// As wlc with overhead = activeconns + 1 (inactive connections ignored, so UDP, which is
// always inactive, sees no load): the smallest (active+1)/weight, first in list on ties.

import type { Dest } from '../service.js';
import type { SchedulerOps } from './scheduler.js';
import { cmpProducts } from './util/arith.js';
import { INT_MAX, isOverloaded, LeastConnIndex } from './util/least-conn.js';

class ShortestExpectedDelay extends LeastConnIndex {
  protected rank(d: Dest): boolean {
    if (isOverloaded(d) || d.weight <= 0) return false;
    this.rankNum = d.activeconns + 1;
    this.rankDen = d.weight;
    return true;
  }

  protected override overflows(d: Dest): boolean {
    return d.activeconns + 1 > INT_MAX;
  }

  protected override scan(): Dest | null {
    const dests = this.svc.dests;
    let i = 0;
    let least: Dest | null = null;
    let loh = 0;
    for (; i < dests.length; i++) {
      const d = dests[i]!;
      if (!isOverloaded(d) && d.weight > 0) {
        least = d;
        loh = (d.activeconns + 1) | 0;
        break;
      }
    }
    if (!least) return null;
    for (i++; i < dests.length; i++) {
      const d = dests[i]!;
      if (isOverloaded(d)) continue;
      const doh = (d.activeconns + 1) | 0;
      if (cmpProducts(loh, d.weight, doh, least.weight) > 0) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

export const sedScheduler: SchedulerOps = {
  name: 'sed',
  init: (svc) => new ShortestExpectedDelay(svc).rebuild(),
};
