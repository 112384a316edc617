// The management interface of a director, as vsadm and the other clients see it: the
// operations of the kernel's sockopt/netlink interface (spec ipvs-kernel.md §11). Implemented
// in-process over a Director (local-api.ts) and over the control socket of vsd (client.ts).
// Failures are IpvsError with the kernel's errno, so callers print what ipvsadm prints.

import type { ApplyReport, DesiredTable } from '../core/apply.js';
import type {
  ConnInfo,
  DestSpec,
  InfoSnapshot,
  ServiceInfo,
  ServiceKeySpec,
  ServiceSpec,
  TimeoutsSpec,
} from '../core/model.js';

export interface DaemonSpec {
  state: 'master' | 'backup';
  /** Multicast interface name (ipvsadm default eth0). */
  mcastIfn: string;
  syncid: number;
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** A running sync daemon with its effective values (what `ipvsadm -L --daemon` prints). */
export interface DaemonInfo {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  syncMaxlen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

export interface IpvsApi {
  getInfo(): Promise<InfoSnapshot>;
  /** Every service with its dests, in the table's own order (ipvsadm sorts for display). */
  getServices(): Promise<ServiceInfo[]>;
  /** One service; IpvsError ESRCH when there is none. */
  getService(key: ServiceKeySpec): Promise<ServiceInfo>;
  addService(s: ServiceSpec): Promise<void>;
  editService(s: ServiceSpec): Promise<void>;
  delService(key: ServiceKeySpec): Promise<void>;
  flush(): Promise<void>;
  addDest(svc: ServiceKeySpec, d: DestSpec): Promise<void>;
  editDest(svc: ServiceKeySpec, d: DestSpec): Promise<void>;
  delDest(svc: ServiceKeySpec, d: Pick<DestSpec, 'af' | 'addr' | 'port'>): Promise<void>;
  /** Zero the counters of one service and its dests, or of everything (no key). */
  zero(key?: ServiceKeySpec): Promise<void>;
  setTimeouts(t: TimeoutsSpec): Promise<void>;
  getTimeouts(): Promise<TimeoutsSpec>;
  startDaemon(d: DaemonSpec): Promise<void>;
  stopDaemon(state: 'master' | 'backup'): Promise<void>;
  getDaemons(): Promise<DaemonInfo[]>;
  /** Connection entries and persistence templates, as /proc/net/ip_vs_conn lists them. */
  getConnections(): Promise<ConnInfo[]>;
  /** Make the table equal to `t`, changing only what differs (reload, `vsadm -R`). */
  applyTable(t: DesiredTable): Promise<ApplyReport>;
}
