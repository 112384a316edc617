// The last minutes of estimated rates, sampled at the estimator's period, so a dashboard that
// opens now draws the recent past at once instead of starting from an empty chart.

import type { Director } from '../core/director.js';
import type { RateValues } from '../core/stats.js';

export interface RateSeries {
  cps: (number | null)[];
  inpps: (number | null)[];
  outpps: (number | null)[];
  inbps: (number | null)[];
  outbps: (number | null)[];
}

const FIELDS = ['cps', 'inpps', 'outpps', 'inbps', 'outbps'] as const;

function emptySeries(len: number): RateSeries {
  const s = {} as RateSeries;
  for (const f of FIELDS) s[f] = new Array<number | null>(len).fill(null);
  return s;
}

function push(s: RateSeries, r: RateValues | null): void {
  for (const f of FIELDS) s[f].push(r ? r[f] : null);
}

function drop(s: RateSeries, n: number): void {
  for (const f of FIELDS) s[f].splice(0, n);
}

export interface HistoryJson {
  /** Sample times, Unix seconds. */
  t: number[];
  totals: RateSeries;
  /** By service key (Service.key); null where the service did not exist. */
  services: Record<string, RateSeries>;
}

export class RateHistory {
  private readonly t: number[] = [];
  private readonly totals = emptySeries(0);
  private readonly services = new Map<string, RateSeries>();

  constructor(
    private readonly director: Director,
    /** Samples kept (default 300: ten minutes at the 2-second estimator period). */
    private readonly capacity = 300,
  ) {}

  sample(nowMs = Date.now()): void {
    const len = this.t.length;
    this.t.push(nowMs / 1000);
    push(this.totals, this.director.totalStats.rates());
    const seen = new Set<string>();
    for (const svc of this.director.table.services()) {
      seen.add(svc.key);
      let s = this.services.get(svc.key);
      if (!s) this.services.set(svc.key, (s = emptySeries(len)));
      push(s, svc.stats.rates());
    }
    for (const [k, s] of this.services) {
      if (seen.has(k)) continue;
      // gone: forget it once it has no value left in the window
      if (s.cps.every((v) => v === null)) this.services.delete(k);
      else push(s, null);
    }
    const over = this.t.length - this.capacity;
    if (over > 0) {
      this.t.splice(0, over);
      drop(this.totals, over);
      for (const s of this.services.values()) drop(s, over);
    }
  }

  toJSON(): HistoryJson {
    return { t: [...this.t], totals: this.totals, services: Object.fromEntries(this.services) };
  }
}
