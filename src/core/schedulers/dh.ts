// dh — Destination Hashing (ip_vs_dh.c).
//
// 256 buckets filled with the dests in list order, one bucket each, round and round (weights
// play no part), rebuilt when a dest is added or deleted but not when one is edited. The bucket
// is hash_32 of the packet's destination address; its dest is returned if it is available,
// has weight > 0 and is not overloaded, else nothing (there is no fallback).

import { DEST_F_AVAILABLE, DEST_F_OVERLOAD } from '../constants.js';
import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import { hash32 } from './hash.js';
import type { SchedulerInstance, SchedulerOps } from './scheduler.js';

const DH_TAB_BITS = 8;
const DH_TAB_SIZE = 1 << DH_TAB_BITS;

class DestinationHashing implements SchedulerInstance {
  private readonly buckets: (Dest | null)[] = new Array<Dest | null>(DH_TAB_SIZE).fill(null);

  constructor(private readonly svc: Service) {
    this.reassign();
  }

  private reassign(): void {
    const list = this.svc.dests;
    for (let b = 0; b < DH_TAB_SIZE; b++) this.buckets[b] = list.length ? list[b % list.length]! : null;
  }

  addDest(_dest: Dest): void {
    this.reassign();
  }

  delDest(_dest: Dest): void {
    this.reassign();
  }

  updDest(_dest: Dest): void {}

  schedule(flow: Flow): Dest | null {
    const fold = this.svc.af === 4 ? flow.d0 : flow.d0 ^ flow.d1 ^ flow.d2 ^ flow.d3;
    const d = this.buckets[hash32(fold, DH_TAB_BITS)]!;
    if (!d || (d.flags & DEST_F_AVAILABLE) === 0 || d.weight <= 0 || (d.flags & DEST_F_OVERLOAD) !== 0) return null;
    return d;
  }

  done(): void {
    this.buckets.fill(null);
  }
}

export const dhScheduler: SchedulerOps = {
  name: 'dh',
  init: (svc) => new DestinationHashing(svc),
};
