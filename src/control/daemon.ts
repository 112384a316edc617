// vsd: holds the director (service table + connection table), runs the data planes and the
// timers, serves the control API, and applies configuration by difference on reload.

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type ApplyOptions, type ApplyReport, applyTable, type DesiredTable } from '../core/apply.js';
import { type Clock, monotonicClock } from '../core/clock.js';
import { FWD_DROUTE, FWD_MASK, FWD_MASQ, FWD_PROXY, FWD_TUNNEL } from '../core/constants.js';
import { Director } from '../core/director.js';
import { IpvsError } from '../core/errors.js';
import type { DestInfo, ServiceInfo, ServiceKeySpec } from '../core/model.js';
import '../core/schedulers/index.js';
import type { Service } from '../core/service.js';
import { type Config, ConfigError, desiredTable } from './config.js';
import { LocalApi, type SyncControl } from './local-api.js';
import type { DataPlane } from './plane.js';
import { defaultRuntimeDir } from './protocol.js';
import { ControlServer } from './server.js';

/** How often the director's timers run (connection expiry, estimator, defense). */
const TICK_MS = 50;

/**
 * A part of vsd beyond the core and the planes (health checks, metrics, dashboard, sync):
 * started after the planes, told about every (re)loaded config, stopped first.
 */
export interface VsdExtension {
  readonly name: string;
  /** Validate this extension's sections of a config; throw ConfigError (configErrorAt) if bad. */
  checkConfig?(cfg: Config): void;
  start(vsd: Vsd): Promise<void>;
  /** A new config was applied (start-up config included, before start()). */
  configure?(cfg: Config): void;
  /** Adjust or hold out a configured real server when a table is applied (health state). */
  destOverride?: ApplyOptions['destOverride'];
  /** Real servers this extension keeps in a service beyond the configured ones (sorry server). */
  extraDests?: ApplyOptions['extraDests'];
  /** Extra per-dest facts for listings (`vsadm -L --json`), e.g. health and weight reasons. */
  annotateDest?(serviceKey: string, dest: DestInfo): Record<string, unknown> | undefined;
  status?(): Record<string, unknown>;
  stop(): Promise<void>;
}

export interface VsdOptions {
  logger: Logger;
  /** Loaded config (validated). */
  config?: Config;
  /** Where it came from (shown in status). */
  configPath?: string;
  /** Loads the config again for a reload (YAML/JSON file, or a keepalived.conf translated). */
  loadConfig?: () => Config;
  socketPath: string;
  /** HTTP JSON API listen address, if wanted. */
  http?: { host: string; port: number; token?: string; tokenFile?: string };
  clock?: Clock;
  /** Builds the data planes once the director exists (the CLI decides which). */
  planes?: (director: Director, log: Logger) => DataPlane[];
  sync?: SyncControl;
  extensions?: VsdExtension[];
}

export interface ServiceStatus {
  key: string;
  servedBy: string[];
  unserved?: string;
}

export class Vsd {
  readonly director: Director;
  readonly api: LocalApi;
  private readonly log: Logger;
  private readonly control: ControlServer;
  private planes: DataPlane[] = [];
  private timer: NodeJS.Timeout | null = null;
  private config: Config | undefined;
  private readonly startedAt = Date.now();
  private httpPort = 0;
  private memPages = Number.MAX_SAFE_INTEGER;
  private memReadAt = 0;
  private lastCoverage = new Map<string, string>();
  private readonly extensions: VsdExtension[];
  readonly logger: Logger;

  constructor(private readonly opts: VsdOptions) {
    this.log = opts.logger;
    this.logger = opts.logger;
    this.config = opts.config;
    this.extensions = opts.extensions ?? [];
    this.director = new Director({
      now: opts.clock ?? monotonicClock,
      connCapacity: 1 << 16,
      availableMemoryPages: () => this.availableMemoryPages(),
      expireBudget: 4096,
    });
    this.api = new LocalApi(this.director, opts.sync ?? null);
    this.control = new ControlServer((op, args) => this.dispatch(op, args), this.log);
  }

  /** Start: table from the config, planes, timers, control endpoints. Throws on start-up errors. */
  async start(): Promise<void> {
    if (this.config) {
      for (const x of this.extensions) x.checkConfig?.(this.config);
      for (const x of this.extensions) x.configure?.(this.config);
      this.applyConfig(this.config);
    }
    await this.control.listenUnix(this.opts.socketPath);
    this.log.info({ socket: this.opts.socketPath }, 'control socket listening');
    if (this.opts.http) await this.startHttp(this.opts.http);
    this.planes = this.opts.planes?.(this.director, this.log) ?? [];
    for (const p of this.planes) {
      await p.start();
      this.log.info({ plane: p.name }, 'data plane started');
    }
    this.director.onChange(() => this.reportCoverage());
    this.reportCoverage();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    for (const x of this.extensions) {
      await x.start(this);
      this.log.info({ extension: x.name }, 'started');
    }
  }

  /** The config in effect (undefined when vsd runs without one). */
  get currentConfig(): Config | undefined {
    return this.config;
  }

  private async startHttp(h: NonNullable<VsdOptions['http']>): Promise<void> {
    let token = h.token;
    if (!token && h.tokenFile) token = readFileSync(h.tokenFile, 'utf8').trim();
    if (!token) {
      token = randomBytes(24).toString('base64url');
      const file = join(defaultRuntimeDir(), 'http-token');
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
      this.log.info({ tokenFile: file }, 'HTTP API token generated');
    }
    if (token.length < 16) throw new Error('the HTTP API token must be at least 16 characters');
    const { port } = await this.control.listenHttp(h.host, h.port, token);
    this.httpPort = port;
    this.log.info({ host: h.host, port }, 'HTTP API listening');
  }

  private tick(): void {
    try {
      // A mass expiry is done in slices, letting I/O in between (no long pause).
      if (!this.director.advance()) setImmediate(() => this.tick());
    } catch (e) {
      this.log.error({ err: e }, 'timer run failed');
    }
  }

  /** Free + buffers memory in pages, re-read once a second (DoS defense input). */
  private availableMemoryPages(): number {
    const now = Date.now();
    if (now - this.memReadAt >= 1000) {
      this.memReadAt = now;
      try {
        const text = readFileSync('/proc/meminfo', 'utf8');
        const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
        this.memPages = Math.floor((kb('MemFree') + kb('Buffers')) / 4);
      } catch {
        this.memPages = Number.MAX_SAFE_INTEGER;
      }
    }
    return this.memPages;
  }

  private applyConfig(cfg: Config): ApplyReport {
    const table: DesiredTable = desiredTable(cfg);
    // Sysctls first: they may matter to how the table changes (expire_nodest_conn).
    for (const [name, value] of Object.entries(cfg.sysctl)) this.director.setSysctl(name, value);
    const report = applyTable(this.director, table, {
      destOverride: (key, d) => this.destOverride(key, d),
      extraDests: (key) => this.extensions.flatMap((x) => x.extraDests?.(key) ?? []),
    });
    this.log.info(
      {
        added: report.addedServices.length,
        edited: report.editedServices.length,
        deleted: report.deletedServices.length,
        destsAdded: report.addedDests.length,
        destsEdited: report.editedDests.length,
        destsDeleted: report.deletedDests.length,
        unchanged: report.unchanged,
      },
      'configuration applied',
    );
    return report;
  }

  private destOverride: NonNullable<ApplyOptions['destOverride']> = (key, d) => {
    let cur: ReturnType<NonNullable<ApplyOptions['destOverride']>> = d;
    for (const x of this.extensions) {
      if (!cur || !x.destOverride) continue;
      cur = x.destOverride(key, cur);
    }
    return cur;
  };

  /** Re-read the config file and apply only the difference. A bad file changes nothing. */
  reload(): ApplyReport {
    if (!this.opts.loadConfig) throw new IpvsError('EINVAL', 'vsd was started without --config: nothing to reload');
    let cfg: Config;
    try {
      cfg = this.opts.loadConfig();
    } catch (e) {
      if (e instanceof ConfigError) throw new IpvsError('EINVAL', `bad config: ${e.message}`);
      throw e;
    }
    for (const x of this.extensions) x.checkConfig?.(cfg);
    for (const x of this.extensions) x.configure?.(cfg);
    const report = this.applyConfig(cfg);
    this.config = cfg;
    return report;
  }

  /** Which plane carries which service; services nobody carries are flagged, never refused. */
  coverage(): ServiceStatus[] {
    const out: ServiceStatus[] = [];
    const servedBy = new Map<string, string[]>();
    const reasons = new Map<string, string[]>();
    for (const p of this.planes) {
      for (const k of p.served()) servedBy.set(k, [...(servedBy.get(k) ?? []), p.name]);
      for (const u of p.unserved()) if (u.reason) reasons.set(u.key, [...(reasons.get(u.key) ?? []), `${p.name}: ${u.reason}`]);
    }
    for (const svc of this.director.table.services()) {
      const by = servedBy.get(svc.key) ?? [];
      const st: ServiceStatus = { key: svc.key, servedBy: by };
      if (by.length === 0) st.unserved = reasons.get(svc.key)?.join('; ') ?? defaultUnservedReason(svc, this.planes);
      out.push(st);
    }
    return out;
  }

  private reportCoverage(): void {
    const next = new Map<string, string>();
    for (const c of this.coverage()) {
      if (!c.unserved) continue;
      next.set(c.key, c.unserved);
      if (this.lastCoverage.get(c.key) !== c.unserved) this.log.warn({ service: c.key, reason: c.unserved }, 'no data plane can serve this service');
    }
    this.lastCoverage = next;
  }

  status(): Record<string, unknown> {
    return {
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      socket: this.opts.socketPath,
      httpPort: this.httpPort || undefined,
      config: this.opts.configPath,
      connections: this.director.conns.count,
      connTableBytes: this.director.conns.byteSize,
      planes: Object.fromEntries(this.planes.map((p) => [p.name, p.status()])),
      extensions: Object.fromEntries(this.extensions.map((x) => [x.name, x.status?.() ?? {}])),
      services: this.coverage(),
    };
  }

  private annotate(s: ServiceInfo, coverage = this.coverage()): ServiceInfo & { servedBy: string[]; unserved?: string } {
    const key = this.director.table.find(s)?.key ?? '';
    const cov = coverage.find((c) => c.key === key);
    const dests = this.extensions.some((x) => x.annotateDest)
      ? s.dests.map((d) => {
          let extra: Record<string, unknown> = {};
          for (const x of this.extensions) extra = { ...extra, ...(x.annotateDest?.(key, d) ?? {}) };
          return { ...d, ...extra };
        })
      : s.dests;
    return { ...s, dests, servedBy: cov?.servedBy ?? [], ...(cov?.unserved ? { unserved: cov.unserved } : {}) };
  }

  /** One control API operation (arguments already shape-checked). */
  private async dispatch(op: string, args: unknown[]): Promise<unknown> {
    const api = this.api as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    switch (op) {
      case 'getServices': {
        const coverage = this.coverage();
        const byKey = new Map(coverage.map((c) => [c.key, c]));
        return (await this.api.getServices()).map((s) => this.annotate(s, [byKey.get(this.director.table.find(s)?.key ?? '') ?? { key: '', servedBy: [] }]));
      }
      case 'getService':
        return this.annotate(await this.api.getService(args[0] as ServiceKeySpec));
      case 'applyTable':
        return applyTable(this.director, args[0] as DesiredTable);
      case 'getSysctls':
        return { ...this.director.sysctl };
      case 'setSysctl':
        this.director.setSysctl(args[0] as string, args[1]);
        return null;
      case 'status':
        return this.status();
      case 'reload':
        return this.reload();
      default: {
        const f = api[op];
        if (typeof f !== 'function') throw new IpvsError('EINVAL', `unknown operation ${op}`);
        const r = await f.apply(this.api, args);
        return r;
      }
    }
  }

  /** Stop: no new connections, optional drain, then everything closed. */
  async stop(drainMs = 0): Promise<void> {
    for (const x of [...this.extensions].reverse()) {
      try {
        await x.stop();
      } catch (e) {
        this.log.error({ err: e, extension: x.name }, 'error while stopping');
      }
    }
    for (const p of this.planes) await p.stopAccepting();
    if (drainMs > 0 && this.director.conns.count > 0) {
      this.log.info({ drainMs, connections: this.director.conns.count }, 'draining');
      const until = Date.now() + drainMs;
      while (Date.now() < until && this.liveConnections() > 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const p of this.planes) await p.close();
    await this.control.close();
    this.log.info({}, 'stopped');
  }

  private liveConnections(): number {
    let n = 0;
    for (const svc of this.director.table.services()) for (const d of svc.dests) n += d.activeconns;
    return n;
  }
}

function defaultUnservedReason(svc: Service, planes: DataPlane[]): string {
  const methods = new Set(svc.dests.map((d) => d.connFlags & FWD_MASK));
  if (methods.size === 0) return 'no real servers';
  const names = [...methods].map((m) => (m === FWD_MASQ ? 'masquerading' : m === FWD_DROUTE ? 'direct routing' : m === FWD_TUNNEL ? 'tunneling' : m === FWD_PROXY ? 'proxy' : `method ${m}`));
  const running = planes.map((p) => p.name).join(', ') || 'none';
  return `no running data plane serves ${names.join('/')} (running: ${running})`;
}
