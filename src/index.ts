// tsvs as a library: the pure director core (service table, the fourteen IPVS schedulers,
// connection table, counters and estimator) with an injected clock, plus the management model.
// See README.md ("Library") for a walk-through.

import './core/schedulers/index.js';

export { IpAddr } from './core/addr.js';
export { type ApplyReport, applyTable, type DesiredService, type DesiredTable } from './core/apply.js';
export { type Clock, ManualClock, monotonicClock, seededRandom32 } from './core/clock.js';
export * from './core/constants.js';
export { Director, type DirectorOptions, VERDICT_ACCEPT, VERDICT_DROP, VERDICT_UNREACH } from './core/director.js';
export { type Errno, IpvsError } from './core/errors.js';
export { Flow } from './core/flow.js';
export type { ConnInfo, DestInfo, DestSpec, InfoSnapshot, ServiceInfo, ServiceKeySpec, ServiceSpec, TimeoutsSpec } from './core/model.js';
export { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './core/proto/tcp.js';
export { findScheduler, registerScheduler, type SchedulerContext, type SchedulerInstance, type SchedulerOps, schedulerNames } from './core/schedulers/scheduler.js';
export { Dest, Service } from './core/service.js';
export type { CounterValues, RateValues } from './core/stats.js';
export { ControlClient, connectApi, DaemonUnavailable } from './control/client.js';
export type { IpvsApi } from './control/ipvs-api.js';
export { LocalApi } from './control/local-api.js';
