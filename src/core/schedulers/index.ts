// The fourteen IPVS schedulers, registered by name as the kernel's modules register themselves.
// Importing this module makes them available to findScheduler().

import { dhScheduler } from './dh.js';
import { foScheduler } from './fo.js';
import { lblcScheduler } from './lblc.js';
import { lblcrScheduler } from './lblcr.js';
import { lcScheduler } from './lc.js';
import { mhScheduler } from './mh.js';
import { nqScheduler } from './nq.js';
import { ovfScheduler } from './ovf.js';
import { rrScheduler } from './rr.js';
import { type SchedulerOps, registerScheduler } from './scheduler.js';
import { sedScheduler } from './sed.js';
import { shScheduler } from './sh.js';
import { twosScheduler } from './twos.js';
import { wlcScheduler } from './wlc.js';
import { wrrScheduler } from './wrr.js';

export const builtinSchedulers: readonly SchedulerOps[] = [
  rrScheduler,
  wrrScheduler,
  lcScheduler,
  wlcScheduler,
  lblcScheduler,
  lblcrScheduler,
  dhScheduler,
  shScheduler,
  sedScheduler,
  nqScheduler,
  foScheduler,
  ovfScheduler,
  mhScheduler,
  twosScheduler,
];

/** Register the built-in schedulers (idempotent; done once on import). */
export function registerBuiltinSchedulers(): void {
  for (const ops of builtinSchedulers) registerScheduler(ops);
}

registerBuiltinSchedulers();

export { createMhScheduler, MH_PRIMES } from './mh.js';
export type { MhOptions } from './mh.js';
