// Test helpers for the health checker: a vsd with the health extension and a log we can read,
// real servers that can be stopped and started again on the same port (in-process, or child
// processes killed by pid), and waiting with deadlines.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfigFile, parseConfig } from '../../src/control/config.js';
import { Vsd } from '../../src/control/daemon.js';
import type { ServiceKeySpec } from '../../src/core/model.js';
import { HealthManager } from '../../src/health/manager.js';

export interface LogLine {
  time: number;
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface TestVsd {
  vsd: Vsd;
  health: HealthManager;
  logs: LogLine[];
  dir: string;
  /** "addr:port" → weight for the real servers in the table. */
  table(svc?: ServiceKeySpec): Record<string, number>;
  /** First log line (at or after `since`) whose message matches. */
  logged(re: RegExp, since?: number): LogLine | undefined;
  stop(): Promise<void>;
}

export const TCP_SVC = (port: number, addr = '127.0.0.1'): ServiceKeySpec => ({ af: 4, protocol: 6, addr, port, fwmark: 0 });

/** Start vsd (no data planes) with the health extension on a config object or YAML text. */
export async function startVsd(config: unknown, opts: { configPath?: string } = {}): Promise<TestVsd> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-health-'));
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as LogLine) });
  const cfg = parseConfig(typeof config === 'string' ? config : JSON.stringify(config), 'test.yaml');
  const health = new HealthManager({ random: () => 0 });
  const vsd = new Vsd({ logger, config: cfg, socketPath: join(dir, 'vsd.sock'), extensions: [health], ...(opts.configPath ? { configPath: opts.configPath, loadConfig: () => loadConfigFile(opts.configPath!) } : {}) });
  await vsd.start();
  const firstKey = (): ServiceKeySpec => {
    const s = [...vsd.director.table.services()][0]!;
    return { af: s.af, protocol: s.protocol, addr: s.addr.toString(), port: s.port, fwmark: s.fwmark };
  };
  return {
    vsd,
    health,
    logs,
    dir,
    table(svc) {
      const out: Record<string, number> = {};
      const s = vsd.director.table.find(svc ?? firstKey());
      for (const d of s?.dests ?? []) out[`${d.addr}:${d.port}`] = d.weight;
      return out;
    },
    logged(re, since = 0) {
      return logs.find((l) => l.time >= since && re.test(l.msg));
    },
    async stop() {
      await vsd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with Date.now() once pred() holds; rejects after timeoutMs with the description. */
export async function waitFor(pred: () => boolean, timeoutMs: number, what = 'condition'): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (pred()) return Date.now();
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP server on 127.0.0.1 that can be closed and reopened on the same port. */
export class TcpServer {
  port = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  constructor(private readonly onConn: (s: Socket) => void = (s) => s.end()) {}

  async start(): Promise<this> {
    const server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
      this.onConn(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const c of this.sockets) c.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** An HTTP server whose answers the test changes on the fly. */
export class HttpServer {
  status = 200;
  body = 'OK\n';
  delayMs = 0;
  requests = 0;
  /** Called per request when set (overrides status/body). */
  handler: ((req: IncomingMessage, res: ServerResponse, n: number) => void) | null = null;
  readonly hosts: string[] = [];
  private readonly tcp: TcpServer;
  private readonly http = createHttpServer((req, res) => {
    const n = ++this.requests;
    this.hosts.push(req.headers.host ?? '');
    const answer = () => {
      if (this.handler) return this.handler(req, res, n);
      res.writeHead(this.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(this.body) });
      res.end(this.body);
    };
    if (this.delayMs) setTimeout(answer, this.delayMs).unref();
    else answer();
  });
  constructor() {
    this.tcp = new TcpServer((s) => this.http.emit('connection', s));
  }
  get port(): number {
    return this.tcp.port;
  }
  async start(): Promise<this> {
    await this.tcp.start();
    return this;
  }
  stop(): Promise<void> {
    return this.tcp.stop();
  }
}

/** A real server in its own process (node), killed by pid and started again on its port. */
export class ChildServer {
  port = 0;
  child: ChildProcess | null = null;

  async start(): Promise<this> {
    const script = `
      const net = require('node:net');
      const s = net.createServer((c) => { c.on('error', () => {}); c.end('hello\\n'); });
      s.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
    `;
    const child = spawn(process.execPath, ['-e', script, String(this.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    });
    return this;
  }

  /** SIGKILL by pid; resolves once the process is gone. */
  async kill(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    process.kill(c.pid!, 'SIGKILL');
    await gone;
  }
}

/** A Cleanup run when the test ends (so one test's servers and checkers do not load the next). */
export function scoped(ctx: { after(fn: () => unknown): void }): Cleanup {
  const c = new Cleanup();
  ctx.after(() => c.run());
  return c;
}

/** Run cleanups (servers, vsd) in reverse order, ignoring their errors. */
export class Cleanup {
  private readonly fns: (() => unknown)[] = [];
  add<T>(x: T, f: (x: T) => unknown): T {
    this.fns.push(() => f(x));
    return x;
  }
  async run(): Promise<void> {
    for (const f of this.fns.reverse()) {
      try {
        await f();
      } catch {
        // best effort
      }
    }
    this.fns.length = 0;
  }
}
