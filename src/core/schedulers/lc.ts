// lc — Least Connection (ip_vs_lc.c).
//
// The dest with the smallest overhead (active*256 + inactive), skipping overloaded dests and
// weight 0; ties go to the first in list order. The kernel compares overheads as unsigned int.

import type { Dest } from '../service.js';
import type { SchedulerOps } from './scheduler.js';
import { isOverloaded, LeastConnIndex, overhead } from './util/least-conn.js';

class LeastConnection extends LeastConnIndex {
  protected rank(d: Dest): boolean {
    if (isOverloaded(d) || d.weight === 0) return false;
    this.rankNum = overhead(d);
    this.rankDen = 1;
    return true;
  }

  protected override overflows(d: Dest): boolean {
    return overhead(d) > 0xffffffff;
  }

  protected override scan(): Dest | null {
    let least: Dest | null = null;
    let loh = 0;
    for (const d of this.svc.dests) {
      if (isOverloaded(d) || d.weight === 0) continue;
      const doh = ((d.activeconns << 8) + d.inactconns) >>> 0;
      if (!least || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

export const lcScheduler: SchedulerOps = {
  name: 'lc',
  init: (svc) => new LeastConnection(svc).rebuild(),
};
