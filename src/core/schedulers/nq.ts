// nq — Never Queue (ip_vs_nq.c).
//
// The first idle dest (activeconns == 0) in list order, else the sed choice; overloaded dests
// and weight 0 are skipped. In the tree an idle dest ranks 0 and a busy one (active+1)/weight,
// which is > 0, so idle dests win and among them the first in list order.

import type { Dest } from '../service.js';
import type { SchedulerOps } from './scheduler.js';
import { cmpProducts } from './util/arith.js';
import { INT_MAX, isOverloaded, LeastConnIndex } from './util/least-conn.js';

class NeverQueue extends LeastConnIndex {
  protected rank(d: Dest): boolean {
    if (isOverloaded(d) || d.weight === 0) return false;
    if (d.activeconns === 0) {
      this.rankNum = 0;
      this.rankDen = 1;
    } else {
      this.rankNum = d.activeconns + 1;
      this.rankDen = d.weight;
    }
    return true;
  }

  protected override overflows(d: Dest): boolean {
    return d.activeconns + 1 > INT_MAX;
  }

  protected override scan(): Dest | null {
    let least: Dest | null = null;
    let loh = 0;
    for (const d of this.svc.dests) {
      if (isOverloaded(d) || d.weight === 0) continue;
      const doh = (d.activeconns + 1) | 0;
      if (d.activeconns === 0) return d;
      if (!least || cmpProducts(loh, d.weight, doh, least.weight) > 0) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

export const nqScheduler: SchedulerOps = {
  name: 'nq',
  init: (svc) => new NeverQueue(svc).rebuild(),
};
