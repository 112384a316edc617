// The scheduler interface: the kernel's struct ip_vs_scheduler (init_service, done_service,
// add_dest, del_dest, upd_dest, schedule), one module per algorithm, found by name in a
// registry. Custom schedulers register themselves the same way.

import type { Flow } from '../flow.js';
import type { Dest, Service } from '../service.js';

/** What a scheduler may ask of the director: time and randomness are injected. */
export interface SchedulerContext {
  /** Current time in milliseconds (the injected clock). */
  now(): number;
  /** Uniform random 32-bit unsigned integer (twos; seeded in tests). */
  random32(): number;
  /** lblc_expiration / lblcr_expiration sysctls, in seconds. */
  sysctl: { lblc_expiration: number; lblcr_expiration: number };
}

/**
 * Per-service scheduler state. The service table calls the hooks after it changed the dest list
 * (addDest after the dest went to the list head, delDest after it was unlinked, updDest after
 * weight, thresholds or flags changed). loadChanged is tsvs's own hook: the connection table
 * calls it whenever a dest's activeconns, inactconns or OVERLOAD flag changes, so that indexed
 * schedulers (the least-connection family) can keep kernel-identical choices without scanning.
 */
export interface SchedulerInstance {
  addDest(dest: Dest): void;
  delDest(dest: Dest): void;
  updDest(dest: Dest): void;
  loadChanged?(dest: Dest): void;
  /** Pick a dest for a new connection, or null ("no destination available"). */
  schedule(flow: Flow): Dest | null;
  /** Periodic work (lblc/lblcr garbage collection); called by the director's timer. */
  tick?(now: number): void;
  /** The service no longer uses this scheduler: drop references (lblc cache pins dests). */
  done(): void;
}

export interface SchedulerOps {
  readonly name: string;
  /** Build the state for a service (init_service). May throw IpvsError (mh: EINVAL). */
  init(svc: Service, ctx: SchedulerContext): SchedulerInstance;
}

const registry = new Map<string, SchedulerOps>();

export function registerScheduler(ops: SchedulerOps): void {
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(ops.name)) throw new Error(`invalid scheduler name ${JSON.stringify(ops.name)}`);
  registry.set(ops.name, ops);
}

export function findScheduler(name: string): SchedulerOps | undefined {
  return registry.get(name);
}

export function schedulerNames(): string[] {
  return [...registry.keys()];
}
