// fo — Weighted Fail Over (ip_vs_fo.c).
//
// The non-overloaded dest with the highest weight (> 0); a later dest replaces the candidate
// only with a strictly higher weight, so ties go to the first in list order. Load is ignored.

import type { Dest } from '../service.js';
import type { SchedulerOps } from './scheduler.js';
import { isOverloaded, LeastConnIndex } from './util/least-conn.js';

class FailOver extends LeastConnIndex {
  protected rank(d: Dest): boolean {
    if (isOverloaded(d) || d.weight <= 0) return false;
    // Highest weight wins: rank by its negation in the min-tree.
    this.rankNum = -d.weight;
    this.rankDen = 1;
    return true;
  }
}

export const foScheduler: SchedulerOps = {
  name: 'fo',
  init: (svc) => new FailOver(svc).rebuild(),
};
