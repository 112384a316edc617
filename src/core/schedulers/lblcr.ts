// lblcr — Locality-Based Least Connection with Replication (ip_vs_lblcr.c).
//
// The cache maps a destination address to a set of dests (new members at the front). A
// decision takes the weighted least-connection member of the set (set_min: available, not
// overloaded, weight > 0 for the first candidate); if the set has more than one member and has
// not changed for lblcr_expiration, its weighted most-loaded member is dropped (set_max) —
// after set_min chose, so the dropped one may still be returned. If set_min found nothing or
// its choice is overloaded in lblc's sense, wlc picks a dest, which joins the set.

import { DEST_F_AVAILABLE } from '../constants.js';
import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';
import type { SchedulerContext, SchedulerOps } from './scheduler.js';
import { cmpProducts } from './util/arith.js';
import { isOverloaded, kernelOverhead } from './util/least-conn.js';
import { LocalityEntry, LocalityTable } from './util/locality.js';
import { LocalityIndex } from './lblc.js';

class LblcrEntry extends LocalityEntry {
  /** The dest set, most recently added first. */
  readonly set: Dest[] = [];
  /** Last time the set changed (ms). */
  lastmod = 0;
}

function setInsert(en: LblcrEntry, d: Dest, now: number): void {
  if (en.set.includes(d)) return;
  d.refcnt++;
  en.set.unshift(d);
  en.lastmod = now;
}

function setErase(en: LblcrEntry, d: Dest, now: number): void {
  const i = en.set.indexOf(d);
  if (i < 0) return;
  en.set.splice(i, 1);
  d.refcnt--;
  en.lastmod = now;
}

/** ip_vs_dest_set_min: the weighted least-loaded usable member. */
function setMin(set: readonly Dest[]): Dest | null {
  let i = 0;
  let least: Dest | null = null;
  let loh = 0;
  for (; i < set.length; i++) {
    const d = set[i]!;
    if (isOverloaded(d)) continue;
    if (d.weight > 0 && (d.flags & DEST_F_AVAILABLE) !== 0) {
      least = d;
      loh = kernelOverhead(d);
      break;
    }
  }
  if (!least) return null;
  for (i++; i < set.length; i++) {
    const d = set[i]!;
    if (isOverloaded(d)) continue;
    const doh = kernelOverhead(d);
    if (cmpProducts(loh, d.weight, doh, least.weight) > 0 && (d.flags & DEST_F_AVAILABLE) !== 0) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** ip_vs_dest_set_max: the weighted most-loaded member with weight > 0. */
function setMax(set: readonly Dest[]): Dest | null {
  let i = 0;
  let most: Dest | null = null;
  let moh = 0;
  for (; i < set.length; i++) {
    const d = set[i]!;
    if (d.weight > 0) {
      most = d;
      moh = kernelOverhead(d);
      break;
    }
  }
  if (!most) return null;
  for (i++; i < set.length; i++) {
    const d = set[i]!;
    const doh = kernelOverhead(d);
    if (cmpProducts(moh, d.weight, doh, most.weight) < 0 && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

class LocalityBasedLeastConnectionReplicated extends LocalityIndex {
  private readonly table: LocalityTable<LblcrEntry>;

  constructor(
    svc: Service,
    private readonly ctx: SchedulerContext,
  ) {
    super(svc);
    this.table = new LocalityTable<LblcrEntry>(svc.af, ctx.now(), (e) => {
      for (const d of e.set) d.refcnt--;
      e.set.length = 0;
    });
  }

  override schedule(flow: Flow): Dest | null {
    const now = this.ctx.now();
    const en = this.table.find(flow);
    if (en) {
      en.lastuse = now;
      const least = setMin(en.set);
      if (en.set.length > 1 && now > en.lastmod + this.ctx.sysctl.lblcr_expiration * 1000) {
        const most = setMax(en.set);
        if (most) setErase(en, most, now);
      }
      if (least && !this.overloaded(least)) return least;
      const d = this.pick();
      if (!d) return null;
      setInsert(en, d, now);
      return d;
    }
    const d = this.pick();
    if (!d) return null;
    const created = new LblcrEntry(this.svc.af, flow, now);
    setInsert(created, d, now);
    this.table.insert(flow, created);
    return d;
  }

  tick(now: number): void {
    this.table.tick(now, this.ctx.sysctl.lblcr_expiration * 1000);
  }

  get cacheSize(): number {
    return this.table.entries;
  }

  override done(): void {
    this.table.flush();
  }
}

export const lblcrScheduler: SchedulerOps = {
  name: 'lblcr',
  init: (svc, ctx) => new LocalityBasedLeastConnectionReplicated(svc, ctx).rebuild(),
};
