// sh — Source Hashing (ip_vs_sh.c).
//
// 256 buckets filled in list order, each dest taking `weight` consecutive buckets (at least one),
// the list repeated until the table is full; rebuilt on add, delete and edit, so any weight
// change remaps buckets. The bucket is hash_32(source port + source address fold) — the port only
// with sh-port (SCHED2) and only for TCP/UDP/SCTP. A dest with weight <= 0 or overloaded is not
// used; with sh-fallback (SCHED1) the kernel then walks the table from a point derived from the
// original hash and takes the first usable dest.

import { SVC_F_SCHED_SH_FALLBACK, SVC_F_SCHED_SH_PORT } from '../constants.js';
import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import { hash32, hashPort, sourceFold } from './hash.js';
import type { SchedulerInstance, SchedulerOps } from './scheduler.js';
import { isOverloaded } from './util/least-conn.js';

const SH_TAB_BITS = 8;
const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || isOverloaded(d);
}

class SourceHashing implements SchedulerInstance {
  private readonly buckets: (Dest | null)[] = new Array<Dest | null>(SH_TAB_SIZE).fill(null);

  constructor(private readonly svc: Service) {
    this.reassign();
  }

  private reassign(): void {
    const list = this.svc.dests;
    if (list.length === 0) {
      this.buckets.fill(null);
      return;
    }
    let p = 0;
    let count = 0;
    for (let b = 0; b < SH_TAB_SIZE; b++) {
      const d = list[p]!;
      this.buckets[b] = d;
      // A dest keeps taking buckets until it has `weight` of them.
      if (++count >= d.weight) {
        p = p + 1 === list.length ? 0 : p + 1;
        count = 0;
      }
    }
  }

  addDest(_dest: Dest): void {
    this.reassign();
  }

  delDest(_dest: Dest): void {
    this.reassign();
  }

  updDest(_dest: Dest): void {
    this.reassign();
  }

  schedule(flow: Flow): Dest | null {
    const svc = this.svc;
    const port = svc.flags & SVC_F_SCHED_SH_PORT ? hashPort(flow) : 0;
    const ihash = hash32((port + sourceFold(svc, flow)) >>> 0, SH_TAB_BITS);
    const d = this.buckets[ihash]!;
    if (!d) return null;
    if (!unavailable(d)) return d;
    if ((svc.flags & SVC_F_SCHED_SH_FALLBACK) === 0) return null;
    // Fallback: bucket (roffset + ihash) for roffset = ihash, ihash + 1, ... (mod 256).
    for (let offset = 0; offset < SH_TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % SH_TAB_SIZE;
      const e = this.buckets[(roffset + ihash) & SH_TAB_MASK]!;
      if (!e) break;
      if (!unavailable(e)) return e;
    }
    return null;
  }

  done(): void {
    this.buckets.fill(null);
  }
}

export const shScheduler: SchedulerOps = {
  name: 'sh',
  init: (svc) => new SourceHashing(svc),
};
