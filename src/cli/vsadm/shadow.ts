// `-R` applied by difference. ipvsadm runs a restore file line by line against the kernel, so
// the usual "-C, then add everything again" file tears down every established connection and
// all scheduler state. vsadm runs the same lines, with the same messages and exit statuses,
// against a scratch copy of the table, and then asks vsd to apply only what differs: services
// and real servers the file leaves as they were keep their connections.
//
// Operations that are not about the table's shape (-Z, --set, sync daemons) go straight to
// vsd, in order; listings inside a restore first bring vsd up to date.

import type { ApplyReport, DesiredTable } from '../../core/apply.js';
import { ManualClock } from '../../core/clock.js';
import { Director } from '../../core/director.js';
import type { ConnInfo, DestSpec, InfoSnapshot, ServiceInfo, ServiceKeySpec, ServiceSpec, TimeoutsSpec } from '../../core/model.js';
import '../../core/schedulers/index.js';
import type { DaemonInfo, DaemonSpec, IpvsApi } from '../../control/ipvs-api.js';
import { LocalApi } from '../../control/local-api.js';

export class ShadowApi implements IpvsApi {
  private dirty = false;

  private constructor(
    private readonly real: IpvsApi,
    private readonly scratch: LocalApi,
  ) {}

  /** A scratch director holding the real table (same services, same dest list order). */
  static async create(real: IpvsApi): Promise<ShadowApi> {
    const d = new Director({ now: new ManualClock().now });
    const shadow = new ShadowApi(real, new LocalApi(d));
    await shadow.load();
    return shadow;
  }

  private async load(): Promise<void> {
    const d = this.scratch.director;
    d.flush();
    for (const s of await this.real.getServices()) {
      d.addService(s);
      // dests come newest first; adding oldest first rebuilds the same list order
      for (const dest of [...s.dests].reverse()) d.addDest(s, dest);
    }
    const t = await this.real.getTimeouts();
    d.setTimeouts(t);
  }

  /** Send the scratch table to vsd (only differences are applied there). */
  async commit(): Promise<void> {
    if (!this.dirty) return;
    const services = this.scratch.director.serviceInfos().map((s) => ({
      ...s,
      // applyTable adds dests in the given order; the table lists them newest first
      dests: [...s.dests].reverse().map((x): DestSpec => x),
    }));
    await this.real.applyTable({ services });
    this.dirty = false;
  }

  private async changed<T>(f: () => Promise<T>): Promise<T> {
    const r = await f();
    this.dirty = true;
    return r;
  }

  private async read<T>(f: () => Promise<T>): Promise<T> {
    await this.commit();
    return f();
  }

  getInfo = (): Promise<InfoSnapshot> => this.real.getInfo();
  getServices = (): Promise<ServiceInfo[]> => this.read(() => this.real.getServices());
  getService = (k: ServiceKeySpec): Promise<ServiceInfo> => this.read(() => this.real.getService(k));
  addService = (s: ServiceSpec): Promise<void> => this.changed(() => this.scratch.addService(s));
  editService = (s: ServiceSpec): Promise<void> => this.changed(() => this.scratch.editService(s));
  delService = (k: ServiceKeySpec): Promise<void> => this.changed(() => this.scratch.delService(k));
  flush = (): Promise<void> => this.changed(() => this.scratch.flush());
  addDest = (k: ServiceKeySpec, d: DestSpec): Promise<void> => this.changed(() => this.scratch.addDest(k, d));
  editDest = (k: ServiceKeySpec, d: DestSpec): Promise<void> => this.changed(() => this.scratch.editDest(k, d));
  delDest = (k: ServiceKeySpec, d: Pick<DestSpec, 'af' | 'addr' | 'port'>): Promise<void> => this.changed(() => this.scratch.delDest(k, d));
  // Zeroing names a service that may exist only in the scratch table so far: check it there.
  zero = async (k?: ServiceKeySpec): Promise<void> => {
    if (k) await this.scratch.getService(k);
    await this.commit();
    await this.real.zero(k);
  };
  setTimeouts = async (t: TimeoutsSpec): Promise<void> => {
    await this.scratch.setTimeouts(t);
    await this.real.setTimeouts(t);
  };
  getTimeouts = (): Promise<TimeoutsSpec> => this.real.getTimeouts();
  startDaemon = async (d: DaemonSpec): Promise<void> => {
    await this.commit();
    await this.real.startDaemon(d);
  };
  stopDaemon = (s: 'master' | 'backup'): Promise<void> => this.real.stopDaemon(s);
  getDaemons = (): Promise<DaemonInfo[]> => this.real.getDaemons();
  getConnections = (): Promise<ConnInfo[]> => this.read(() => this.real.getConnections());
  applyTable = async (t: DesiredTable): Promise<ApplyReport> => {
    await this.commit();
    return this.real.applyTable(t);
  };
}
