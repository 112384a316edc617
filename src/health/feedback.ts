// Dynamic feedback load balancing, as the LVS design describes it (Wensong Zhang, "Dynamic
// Feedback Load Balancing Scheduling"): a monitor on the director gathers each real server's load
// indicators, combines them into one aggregate load
//
//     AGGREGATE_LOAD_i = Σ_k R_k · INDICATOR_k,i        (Σ R_k = 1; 1.0 = fully loaded)
//
// and moves the server's weight towards the point where that load sits at the target utilisation:
//
//     w_i ← w_i + A · ∛(target − AGGREGATE_LOAD_i)       (unchanged when the load equals target)
//
// bounded by [minWeight, SCALE · DEFAULT_WEIGHT_i], and written to the table only when the
// rounded weight differs from the current one by more than a threshold. A server whose default
// weight is 0 is left alone. The cube root makes big errors move fast and small ones gently;
// the loop is negative feedback, so the weights settle where each server carries what it can.
//
// Pure functions; the manager polls the agents and applies the results.

import type { AgentReport } from './agent-protocol.js';
import type { Indicator, ResolvedFeedback } from './config.js';

/** Each indicator normalised so 1.0 means fully loaded (undefined when not reported). */
export type IndicatorValues = Partial<Record<Indicator, number>>;

/**
 * The normalised indicators of one server: from its agent's report, the poll's round-trip time
 * (response) and its share of the service's new connections in the interval (input).
 */
export function indicatorValues(report: AgentReport, rttMs: number, inputShare: number | undefined, capacity: ResolvedFeedback['capacity']): IndicatorValues {
  const v: IndicatorValues = {};
  if (inputShare !== undefined) v.input = inputShare;
  if (report.cpu !== undefined) v.cpu = report.cpu;
  if (report.loadavg !== undefined && report.ncpu) v.loadavg = report.loadavg[0] / report.ncpu;
  if (report.memory !== undefined) v.memory = report.memory;
  if (report.connections !== undefined) v.connections = report.connections / capacity.connections;
  v.response = rttMs / capacity.responseMs;
  if (report.disk !== undefined) v.disk = report.disk;
  if (report.custom !== undefined && report.custom !== null) v.custom = report.custom;
  return v;
}

export interface AggregateLoad {
  load: number;
  /** R·value per indicator, for the logs and `vsadm -L --json`. */
  terms: Partial<Record<Indicator, { r: number; value: number }>>;
  /** Indicators with a coefficient that the agent did not report (counted as 0). */
  missing: Indicator[];
}

export function aggregateLoad(values: IndicatorValues, coefficients: Partial<Record<Indicator, number>>): AggregateLoad {
  let load = 0;
  const terms: AggregateLoad['terms'] = {};
  const missing: Indicator[] = [];
  for (const [k, r] of Object.entries(coefficients) as [Indicator, number][]) {
    if (!r) continue;
    const value = values[k];
    if (value === undefined || !Number.isFinite(value)) {
      missing.push(k);
      continue;
    }
    const x = Math.max(0, value);
    terms[k] = { r, value: x };
    load += r * x;
  }
  return { load, terms, missing };
}

/**
 * One step of the formula. `current` is the unrounded weight the loop keeps, `base` the
 * server's default (configured) weight.
 */
export function nextWeight(current: number, base: number, load: number, f: Pick<ResolvedFeedback, 'adjust' | 'target' | 'scale' | 'minWeight'>): number {
  if (base <= 0) return current;
  if (load === f.target) return current;
  const w = current + f.adjust * Math.cbrt(f.target - load);
  return clampWeight(w, base, f);
}

export function clampWeight(w: number, base: number, f: Pick<ResolvedFeedback, 'scale' | 'minWeight'>): number {
  const hi = Math.max(f.scale * base, 0);
  const lo = Math.min(f.minWeight, hi);
  return Math.min(hi, Math.max(lo, w));
}

/** Whether a rounded new weight is worth writing (differs by more than the threshold). */
export function worthWriting(newWeight: number, current: number, threshold: number): boolean {
  return Math.abs(newWeight - current) > threshold;
}

/** Shares of new connections: N_i / (Σ N / n); undefined when the service saw none. */
export function inputShares(newConns: number[]): (number | undefined)[] {
  const total = newConns.reduce((a, b) => a + b, 0);
  if (total <= 0 || newConns.length === 0) return newConns.map(() => undefined);
  const mean = total / newConns.length;
  return newConns.map((n) => n / mean);
}
