// lblc — Locality-Based Least Connection (ip_vs_lblc.c).
//
// A cache maps the packet's destination address to a dest. A cached dest is used while it is
// available, has weight > 0 and is not "overloaded" in lblc's own sense — more active
// connections than its weight while some dest in the service has fewer than half its weight
// (the OVERLOAD flag itself is not checked). Otherwise wlc picks a dest and the cache entry is
// replaced. Entries pin their dest (refcnt) until the garbage collection (tick) drops them.
// The "some dest under half its weight" test is a counter kept with the index, not a scan.

import { DEST_F_AVAILABLE } from '../constants.js';
import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import type { SchedulerContext, SchedulerOps } from './scheduler.js';
import { LocalityEntry, LocalityTable } from './util/locality.js';
import { WeightedLeastConnection } from './wlc.js';

class LblcEntry extends LocalityEntry {
  constructor(
    af: 4 | 6,
    flow: Flow,
    now: number,
    public dest: Dest,
  ) {
    super(af, flow, now);
    dest.refcnt++;
  }
}

/** wlc plus the count of dests with activeconns * 2 < weight (lblc's "less loaded server"). */
export class LocalityIndex extends WeightedLeastConnection {
  private under = new Uint8Array(0);
  private underCount = 0;

  protected override layoutChanged(capacity: number): void {
    this.under = new Uint8Array(capacity);
    this.underCount = 0;
  }

  protected override track(slot: number, d: Dest): void {
    super.track(slot, d);
    const u = Math.imul(d.activeconns, 2) < d.weight ? 1 : 0;
    if (u !== this.under[slot]) {
      this.underCount += u ? 1 : -1;
      this.under[slot] = u;
    }
  }

  protected override untrack(slot: number): void {
    super.untrack(slot);
    if (this.under[slot]) {
      this.underCount--;
      this.under[slot] = 0;
    }
  }

  /** is_overloaded(): busier than its weight while another dest is under half of its own. */
  protected overloaded(d: Dest): boolean {
    return d.activeconns > d.weight && this.underCount > 0;
  }
}

class LocalityBasedLeastConnection extends LocalityIndex {
  private readonly table: LocalityTable<LblcEntry>;

  constructor(
    svc: Service,
    private readonly ctx: SchedulerContext,
  ) {
    super(svc);
    this.table = new LocalityTable<LblcEntry>(svc.af, ctx.now(), (e) => {
      e.dest.refcnt--;
    });
  }

  override schedule(flow: Flow): Dest | null {
    const now = this.ctx.now();
    const en = this.table.find(flow);
    if (en) {
      en.lastuse = now;
      const d = en.dest;
      if ((d.flags & DEST_F_AVAILABLE) !== 0 && d.weight > 0 && !this.overloaded(d)) return d;
    }
    const d = this.pick();
    if (!d) return null;
    if (en) {
      // The kernel frees the entry and hashes a new one; rewriting it in place is the same
      // thing (its position inside the bucket decides nothing) without an allocation.
      if (en.dest !== d) {
        en.dest.refcnt--;
        d.refcnt++;
        en.dest = d;
      }
      return d;
    }
    this.table.insert(flow, new LblcEntry(this.svc.af, flow, now, d));
    return d;
  }

  tick(now: number): void {
    this.table.tick(now, this.ctx.sysctl.lblc_expiration * 1000);
  }

  /** Number of cache entries (for tests and status). */
  get cacheSize(): number {
    return this.table.entries;
  }

  override done(): void {
    this.table.flush();
  }
}

export const lblcScheduler: SchedulerOps = {
  name: 'lblc',
  init: (svc, ctx) => new LocalityBasedLeastConnection(svc, ctx).rebuild(),
};
