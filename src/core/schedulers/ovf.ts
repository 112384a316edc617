// ovf — Overflow connection (ip_vs_ovf.c).
//
// The highest-weight dest among those not overloaded, with weight != 0 and no more active
// connections than its weight; ties go to the first in list order. Only activeconns count, so
// with UDP (always inactive) it never overflows to the next dest.

import type { Dest } from '../service.js';
import type { SchedulerOps } from './scheduler.js';
import { isOverloaded, LeastConnIndex } from './util/least-conn.js';

class Overflow extends LeastConnIndex {
  protected rank(d: Dest): boolean {
    const w = d.weight;
    if (isOverloaded(d) || d.activeconns > w || w === 0) return false;
    this.rankNum = -w;
    this.rankDen = 1;
    return true;
  }
}

export const ovfScheduler: SchedulerOps = {
  name: 'ovf',
  init: (svc) => new Overflow(svc).rebuild(),
};
