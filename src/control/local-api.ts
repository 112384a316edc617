// IpvsApi over a Director in the same process: what vsd's control server calls, and what
// tests and embedders use directly. Daemon-specific parts (sync daemons) are delegated to an
// optional handler so the core stays free of sockets.

import { type ApplyReport, applyTable, type DesiredTable } from '../core/apply.js';
import type { Director } from '../core/director.js';
import type { ConnInfo, DestSpec, InfoSnapshot, ServiceInfo, ServiceKeySpec, ServiceSpec, TimeoutsSpec } from '../core/model.js';
import { fail } from '../core/errors.js';
import type { DaemonInfo, DaemonSpec, IpvsApi } from './ipvs-api.js';

/** Starts and stops connection-sync daemons (provided by vsd; absent in a bare core). */
export interface SyncControl {
  start(d: DaemonSpec): void;
  stop(state: 'master' | 'backup'): void;
  list(): DaemonInfo[];
}

export class LocalApi implements IpvsApi {
  constructor(
    readonly director: Director,
    private readonly sync: SyncControl | null = null,
  ) {}

  async getInfo(): Promise<InfoSnapshot> {
    return this.director.info();
  }
  async getServices(): Promise<ServiceInfo[]> {
    return this.director.serviceInfos();
  }
  async getService(key: ServiceKeySpec): Promise<ServiceInfo> {
    return this.director.serviceInfo(key);
  }
  async addService(s: ServiceSpec): Promise<void> {
    this.director.addService(s);
  }
  async editService(s: ServiceSpec): Promise<void> {
    this.director.editService(s);
  }
  async delService(key: ServiceKeySpec): Promise<void> {
    this.director.delService(key);
  }
  async flush(): Promise<void> {
    this.director.flush();
  }
  async addDest(svc: ServiceKeySpec, d: DestSpec): Promise<void> {
    this.director.addDest(svc, d);
  }
  async editDest(svc: ServiceKeySpec, d: DestSpec): Promise<void> {
    this.director.editDest(svc, d);
  }
  async delDest(svc: ServiceKeySpec, d: Pick<DestSpec, 'af' | 'addr' | 'port'>): Promise<void> {
    this.director.delDest(svc, d);
  }
  async zero(key?: ServiceKeySpec): Promise<void> {
    this.director.zero(key);
  }
  async setTimeouts(t: TimeoutsSpec): Promise<void> {
    this.director.setTimeouts(t);
  }
  async getTimeouts(): Promise<TimeoutsSpec> {
    return this.director.getTimeouts();
  }
  async startDaemon(d: DaemonSpec): Promise<void> {
    if (!this.sync) fail('EOPNOTSUPP', 'connection sync is not available here');
    this.sync.start(d);
  }
  async stopDaemon(state: 'master' | 'backup'): Promise<void> {
    if (!this.sync) fail('ESRCH', 'No daemon is running');
    this.sync.stop(state);
  }
  async getDaemons(): Promise<DaemonInfo[]> {
    return this.sync ? this.sync.list() : [];
  }
  async getConnections(): Promise<ConnInfo[]> {
    return this.director.connInfos();
  }
  async applyTable(t: DesiredTable): Promise<ApplyReport> {
    return applyTable(this.director, t);
  }
}
