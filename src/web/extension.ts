// vsd extension: the web dashboard (opt-in through the `web` config section or --web HOST:PORT;
// loopback by default). Follows a reload that moves or removes it.

import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Config, parseHostPort } from '../control/config.js';
import type { Vsd, VsdExtension } from '../control/daemon.js';
import { defaultRuntimeDir } from '../control/protocol.js';
import { ESTIMATOR_PERIOD_MS } from '../core/stats.js';
import { closeServer, hostPortText, isLoopback, listen, resolveToken } from '../control/http-util.js';
import { VsdSource } from '../metrics/source.js';
import { type WebSettings, webSettings } from './config.js';
import { RateHistory } from './history.js';
import { WebServer } from './server.js';

export interface WebCliOptions {
  /** --web HOST:PORT: turns the dashboard on there, whatever the config says. */
  listen?: string;
  /** The token (tests and embedders; otherwise config or a generated one). */
  token?: string;
}

export class WebExtension implements VsdExtension {
  readonly name = 'web';
  private settings: WebSettings | null;
  private running: WebSettings | null = null;
  private server: Server | null = null;
  private source: VsdSource | null = null;
  private history: RateHistory | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private vsd: Vsd | null = null;
  private log: Logger | null = null;
  private restarting: Promise<void> = Promise.resolve();
  /** The port actually bound. */
  port = 0;
  /** Where a generated token was written, if one was. */
  tokenFile: string | undefined;

  constructor(private readonly cli: WebCliOptions = {}) {
    this.settings = this.withCli(null);
  }

  private withCli(base: WebSettings | null): WebSettings | null {
    let s = base;
    if (this.cli.listen) {
      const hp = parseHostPort(this.cli.listen);
      if (!hp) throw new Error(`--web: expected HOST:PORT, got ${this.cli.listen}`);
      s = { ...(base ?? {}), host: hp.addr.toString(), port: hp.port };
    }
    if (s && this.cli.token) s = { ...s, token: this.cli.token };
    return s;
  }

  checkConfig(cfg: Config): void {
    webSettings(cfg);
  }

  configure(cfg: Config): void {
    const next = this.withCli(webSettings(cfg));
    const changed = JSON.stringify(next) !== JSON.stringify(this.settings);
    this.settings = next;
    if (changed && this.vsd) this.restarting = this.restarting.then(() => this.apply()).catch((e) => this.vsd?.logger.error({ err: e }, `${this.name}: the new settings could not be applied`));
  }

  async start(vsd: Vsd): Promise<void> {
    this.vsd = vsd;
    this.log = vsd.logger;
    this.source = new VsdSource(vsd);
    this.history = new RateHistory(vsd.director);
    this.history.sample();
    this.sampler = setInterval(() => this.history?.sample(), ESTIMATOR_PERIOD_MS);
    this.sampler.unref();
    await this.apply();
  }

  private async apply(): Promise<void> {
    if (JSON.stringify(this.running) === JSON.stringify(this.settings) && (this.server || !this.settings)) return;
    await closeServer(this.server);
    this.server = null;
    this.running = null;
    const s = this.settings;
    if (!s || !this.vsd || !this.source || !this.history) return;
    const { token, generatedFile } = resolveToken({ ...s, generatedPath: join(defaultRuntimeDir(), 'web-token') });
    this.tokenFile = generatedFile ?? s.tokenFile;
    const boundLoopback = isLoopback(s.host);
    const web = new WebServer({ source: this.source, token, boundLoopback, history: this.history, ...(this.log ? { log: this.log } : {}) });
    const server = createServer(web.handle);
    this.port = await listen(server, s.host, s.port);
    this.server = server;
    this.running = s;
    this.log?.info(
      { url: `http://${hostPortText(s.host, this.port)}/`, ...(this.tokenFile ? { tokenFile: this.tokenFile } : {}), readsNeedToken: !boundLoopback },
      'web dashboard listening (open it with #token=<token> to allow changes)',
    );
  }

  /** Resolves once a reconfiguration (reload) has been carried out. */
  settled(): Promise<void> {
    return this.restarting.catch(() => {});
  }

  status(): Record<string, unknown> {
    const s = this.running;
    return s ? { url: `http://${hostPortText(s.host, this.port)}/`, ...(this.tokenFile ? { tokenFile: this.tokenFile } : {}) } : { enabled: false };
  }

  async stop(): Promise<void> {
    await this.restarting.catch(() => {});
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
    await closeServer(this.server);
    this.server = null;
    this.running = null;
    this.source?.close();
    this.vsd = null;
  }
}
