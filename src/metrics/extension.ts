// vsd extensions of the observability part:
//   MetricsExtension  the Prometheus endpoint (opt-in; loopback by default)
//   ProcExtension     the /proc-format directory kept current
// Both take their settings from the config (metrics, procDir), overridden by vsd's command line
// (--metrics HOST:PORT, --proc-dir DIR), and follow a reload that changes them.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../control/config.js';
import { parseHostPort } from '../control/config.js';
import type { Vsd, VsdExtension } from '../control/daemon.js';
import { defaultRuntimeDir } from '../control/protocol.js';
import { type MetricsSettings, metricsSettings, procDirSetting } from './config.js';
import { bearerMatches, closeServer, hostAllowed, hostPortText, isLoopback, listen, resolveToken } from '../control/http-util.js';
import { ProcWriter } from './proc-writer.js';
import { PromExporter } from './prometheus.js';
import { VsdSource } from './source.js';

export interface MetricsCliOptions {
  /** --metrics HOST:PORT: turns the endpoint on there, whatever the config says. */
  listen?: string;
}

function sameSettings(a: MetricsSettings | null, b: MetricsSettings | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class MetricsExtension implements VsdExtension {
  readonly name = 'metrics';
  private settings: MetricsSettings | null;
  private server: Server | null = null;
  private exporter: PromExporter | null = null;
  private source: VsdSource | null = null;
  private vsd: Vsd | null = null;
  private log: Logger | null = null;
  private token: string | undefined;
  private boundLoopback = true;
  private running: MetricsSettings | null = null;
  private restarting: Promise<void> = Promise.resolve();
  /** The port actually bound (differs from the setting when it was 0). */
  port = 0;
  scrapes = 0;

  constructor(private readonly cli: MetricsCliOptions = {}) {
    this.settings = this.fromCli(null);
  }

  private fromCli(base: MetricsSettings | null): MetricsSettings | null {
    if (!this.cli.listen) return base;
    const hp = parseHostPort(this.cli.listen);
    if (!hp) throw new Error(`--metrics: expected HOST:PORT, got ${this.cli.listen}`);
    return { path: '/metrics', defaultMetrics: true, ...(base ?? {}), host: hp.addr.toString(), port: hp.port };
  }

  checkConfig(cfg: Config): void {
    metricsSettings(cfg);
  }

  configure(cfg: Config): void {
    const next = this.fromCli(metricsSettings(cfg));
    const changed = !sameSettings(next, this.settings);
    this.settings = next;
    if (changed && this.vsd) this.restarting = this.restarting.then(() => this.apply()).catch((e) => this.vsd?.logger.error({ err: e }, `${this.name}: the new settings could not be applied`));
  }

  async start(vsd: Vsd): Promise<void> {
    this.vsd = vsd;
    this.log = vsd.logger;
    this.source = new VsdSource(vsd);
    await this.apply();
  }

  /** Bring the listener in line with the settings (start, move or stop it). */
  private async apply(): Promise<void> {
    if (sameSettings(this.running, this.settings) && (this.server || !this.settings)) return;
    await closeServer(this.server);
    this.server = null;
    this.running = null;
    const s = this.settings;
    if (!s || !this.vsd) return;
    this.exporter = new PromExporter({ ...(s.backendLabels ? { backendLabels: s.backendLabels } : {}), defaultMetrics: s.defaultMetrics });
    this.token = s.token || s.tokenFile ? resolveToken({ ...s, generatedPath: join(defaultRuntimeDir(), 'metrics-token') }).token : undefined;
    this.boundLoopback = isLoopback(s.host);
    if (!this.boundLoopback && !this.token) this.log?.warn({ listen: hostPortText(s.host, s.port) }, 'metrics endpoint is reachable beyond this host without a token');
    const server = createServer((req, res) => {
      this.serve(req, res).catch((e) => {
        this.log?.error({ err: e }, 'metrics scrape failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('scrape failed\n');
      });
    });
    try {
      this.port = await listen(server, s.host, s.port);
    } catch (e) {
      this.log?.error({ err: e, listen: hostPortText(s.host, s.port) }, 'metrics endpoint cannot listen');
      throw e;
    }
    this.server = server;
    this.running = s;
    this.log?.info({ url: `http://${hostPortText(s.host, this.port)}${s.path}` }, 'metrics endpoint listening');
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = this.running!;
    if (!hostAllowed(req, this.boundLoopback)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://metrics');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (url.pathname === '/' && s.path !== '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<html><body><h1>tsvs</h1><p><a href="${s.path}">Metrics</a></p></body></html>\n`);
      return;
    }
    if (url.pathname !== s.path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (this.token && !bearerMatches(req, this.token)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain' }).end('missing or wrong bearer token\n');
      return;
    }
    const text = await this.exporter!.render(await this.source!.snapshot());
    this.scrapes++;
    res.writeHead(200, { 'content-type': this.exporter!.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  /** Resolves once a reconfiguration (reload) has been carried out. */
  settled(): Promise<void> {
    return this.restarting.catch(() => {});
  }

  status(): Record<string, unknown> {
    const s = this.running;
    return s ? { url: `http://${hostPortText(s.host, this.port)}${s.path}`, scrapes: this.scrapes } : { enabled: false };
  }

  async stop(): Promise<void> {
    await this.restarting.catch(() => {});
    await closeServer(this.server);
    this.server = null;
    this.running = null;
    this.source?.close();
    this.vsd = null;
  }
}

export interface ProcCliOptions {
  /** --proc-dir DIR (relative to the working directory). */
  dir?: string;
  /** Rewrite period, ms (default 1000). */
  intervalMs?: number;
}

export class ProcExtension implements VsdExtension {
  readonly name = 'proc';
  private dir: string | undefined;
  private writer: ProcWriter | null = null;
  private vsd: Vsd | null = null;
  private restarting: Promise<void> = Promise.resolve();

  constructor(private readonly cli: ProcCliOptions = {}) {
    this.dir = cli.dir ? resolve(cli.dir) : undefined;
  }

  checkConfig(cfg: Config): void {
    procDirSetting(cfg);
  }

  configure(cfg: Config): void {
    const next = this.cli.dir ? resolve(this.cli.dir) : procDirSetting(cfg);
    if (next === this.dir) return;
    this.dir = next;
    if (this.vsd) this.restarting = this.restarting.then(() => this.apply()).catch((e) => this.vsd?.logger.error({ err: e }, `${this.name}: the new settings could not be applied`));
  }

  async start(vsd: Vsd): Promise<void> {
    this.vsd = vsd;
    await this.apply();
  }

  private async apply(): Promise<void> {
    if (this.writer && this.writer.netDir === (this.dir ? join(this.dir, 'net') : '')) return;
    await this.writer?.stop();
    this.writer = null;
    if (!this.dir || !this.vsd) return;
    const log = this.vsd.logger;
    let lastError = '';
    const w = new ProcWriter(this.vsd.director, {
      dir: this.dir,
      intervalMs: this.cli.intervalMs ?? 1000,
      onError: (e) => {
        // one log line per distinct failure, not one per second
        const msg = (e as Error).message;
        if (msg !== lastError) log.error({ err: e, dir: this.dir }, 'cannot write the /proc-format files');
        lastError = msg;
      },
    });
    await w.start();
    this.writer = w;
    log.info({ dir: w.netDir }, '/proc-format files kept current');
  }

  /** The directory holding ip_vs, ip_vs_stats, … (for tests and tools). */
  get netDir(): string | undefined {
    return this.writer?.netDir;
  }

  /** Rewrite everything now, the connection files included (tests, tools). */
  refresh(): Promise<void> {
    return this.writer?.refresh(true) ?? Promise.resolve();
  }

  /** Resolves once a reconfiguration (reload) has been carried out. */
  settled(): Promise<void> {
    return this.restarting.catch(() => {});
  }

  status(): Record<string, unknown> {
    return this.writer ? { dir: this.writer.netDir, writes: this.writer.writes } : { enabled: false };
  }

  async stop(): Promise<void> {
    await this.restarting.catch(() => {});
    await this.writer?.stop();
    this.writer = null;
    this.vsd = null;
  }
}

