// Connection sync as a part of vsd: starts the daemons the config's `sync` section asks for,
// changes them on reload when that section changed, and stops everything on shutdown.
// Daemons started by hand (vsadm --start-daemon) are left alone unless the config names the
// same role.

import type { Config } from '../control/config.js';
import type { Vsd, VsdExtension } from '../control/daemon.js';
import type { DaemonSpec } from '../control/ipvs-api.js';
import { syncSettings, type SyncSettings } from './config.js';
import type { SyncDaemons } from './daemon.js';

const ROLES = ['master', 'backup'] as const;

export class SyncExtension implements VsdExtension {
  readonly name = 'sync';
  private desired: SyncSettings = {};
  /** The spec each config-started role runs with (JSON), to restart only what changed. */
  private readonly fromConfig = new Map<'master' | 'backup', string>();
  private started = false;

  constructor(readonly daemons: SyncDaemons) {}

  checkConfig(cfg: Config): void {
    syncSettings(cfg);
  }

  configure(cfg: Config): void {
    this.desired = syncSettings(cfg);
    if (!this.started) return;
    try {
      this.reconcile();
    } catch (e) {
      // A reload must not half fail: the table is applied anyway, the daemon error is logged.
      this.daemons.logError(e as Error);
    }
  }

  async start(_vsd: Vsd): Promise<void> {
    this.started = true;
    this.reconcile();
    await Promise.all(ROLES.filter((r) => this.desired[r]).map((r) => this.daemons.ready(r)));
  }

  async stop(): Promise<void> {
    this.started = false;
    this.daemons.stopAll();
    this.fromConfig.clear();
  }

  status(): Record<string, unknown> {
    return this.daemons.status();
  }

  private reconcile(): void {
    for (const role of ROLES) {
      const spec: DaemonSpec | undefined = this.desired[role];
      const key = spec ? JSON.stringify(spec) : undefined;
      const running = this.daemons.list().some((d) => d.state === role);
      if (key !== undefined && this.fromConfig.get(role) === key && running) continue;
      if (running && (spec || this.fromConfig.has(role))) this.daemons.stop(role);
      this.fromConfig.delete(role);
      if (spec) {
        this.daemons.start(spec);
        this.fromConfig.set(role, key!);
      }
    }
  }
}
