// vsagent: the load agent for dynamic feedback, run on each real server. It samples the
// server's load from /proc (CPU busy time, load average, memory in use, established TCP
// connections, disk busy time) plus an optional custom command, and answers the director's
// polls over HTTP (GET /load) or UDP with one JSON report (src/health/agent-protocol.ts).
//
// Everything is measured by the sampler, one sample every --interval seconds (rates between two
// samples), so a poll never waits on a measurement: /proc/net/tcp alone can take a while to
// read on a host with many sockets.

import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseHostPort } from '../control/config.js';
import { AGENT_DEFAULT_PORT, AGENT_PATH, AGENT_PROTOCOL_VERSION, type AgentReport } from '../health/agent-protocol.js';
import { VERSION } from '../version.js';

const HELP = `Usage: vsagent [options]

Reports this real server's load to the tsvs director (vsd) for dynamic feedback load balancing:
CPU, load average, memory, established TCP connections, disk I/O and an optional custom value,
as JSON at http://HOST:PORT${AGENT_PATH} (and over UDP with --udp).

Options:
      --listen HOST:PORT    HTTP address (default 0.0.0.0:${AGENT_DEFAULT_PORT}; port 0 = any)
      --udp HOST:PORT       also answer UDP polls there
      --ports LIST          count only connections to these local ports (e.g. 80,443)
      --custom CMD          run CMD (through sh) each interval; the first number it prints is
                            reported as "custom" (by convention 1.0 = fully loaded)
      --custom-timeout S    kill the custom command after S seconds (default 5)
      --interval S          sampling interval in seconds (default 1)
      --proc DIR            where /proc is (default /proc)
  -h, --help                show this help
  -V, --version             show the version`;

export interface SamplerOptions {
  procDir?: string;
  ports?: number[];
  custom?: string;
  customTimeoutMs?: number;
  /** Count established connections (default true; costly on hosts with very many sockets). */
  connections?: boolean;
}

interface CpuSample {
  busy: number;
  total: number;
}

/** Parses /proc and keeps the last two samples for the rates. */
export class LoadSampler {
  private readonly proc: string;
  private readonly ports: Set<number> | null;
  private prevCpu: CpuSample | null = null;
  private prevDisk: { ticks: Map<string, number>; at: number } | null = null;
  private cpu: number | undefined;
  private disk: number | undefined;
  private custom: number | null = null;
  private customBusy = false;
  private connections: number | undefined;
  private countBusy = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: SamplerOptions = {}) {
    this.proc = opts.procDir ?? '/proc';
    this.ports = opts.ports?.length ? new Set(opts.ports) : null;
  }

  private read(name: string): string | null {
    try {
      return readFileSync(join(this.proc, name), 'utf8');
    } catch {
      return null;
    }
  }

  /** /proc/stat's first line: busy = total − idle − iowait. */
  static parseCpu(stat: string): CpuSample | null {
    const line = stat.split('\n').find((l) => l.startsWith('cpu '));
    if (!line) return null;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return null;
    // guest time is already counted in user/nice: only the first eight fields add up
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = f[3]! + (f[4] ?? 0);
    return { busy: total - idle, total };
  }

  static parseNcpu(stat: string): number {
    return stat.split('\n').filter((l) => /^cpu\d+\s/.test(l)).length || 1;
  }

  static parseLoadavg(text: string): [number, number, number] | undefined {
    const f = text.trim().split(/\s+/).slice(0, 3).map(Number);
    return f.length === 3 && f.every((x) => Number.isFinite(x) && x >= 0) ? (f as [number, number, number]) : undefined;
  }

  /** Used fraction: 1 − MemAvailable/MemTotal (older kernels: free + buffers + cached). */
  static parseMemory(text: string): number | undefined {
    const kb = (k: string) => {
      const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const total = kb('MemTotal');
    if (!total) return undefined;
    const avail = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
    return Math.min(1, Math.max(0, 1 - avail / total));
  }

  /**
   * Established connections in /proc/net/tcp{,6}, optionally only to some local ports. The
   * lines are fixed-format ("sl: LOCAL:PORT REMOTE:PORT ST …"); one regex pass over the text
   * keeps this fast on hosts with tens of thousands of sockets.
   */
  static countEstablished(text: string, ports: Set<number> | null): number {
    let n = 0;
    const re = /^\s*\d+: [0-9A-Fa-f]+:([0-9A-Fa-f]{4}) [0-9A-Fa-f]+:[0-9A-Fa-f]{4} 01 /gm;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (!ports || ports.has(Number.parseInt(m[1]!, 16))) n++;
    }
    return n;
  }

  /** io_ticks (ms busy) per block device from /proc/diskstats; loop and ram devices left out. */
  static parseDiskTicks(text: string): Map<string, number> {
    const m = new Map<string, number>();
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13) continue;
      const name = f[2]!;
      if (/^(loop|ram|zram|fd|sr)\d*/.test(name)) continue;
      const ticks = Number(f[12]);
      if (Number.isFinite(ticks)) m.set(name, ticks);
    }
    return m;
  }

  /** Take one sample (rates against the previous one); resolves when the slow parts are read. */
  async sample(now = Date.now()): Promise<void> {
    const stat = this.read('stat');
    const cpu = stat ? LoadSampler.parseCpu(stat) : null;
    if (cpu && this.prevCpu && cpu.total > this.prevCpu.total) this.cpu = Math.min(1, Math.max(0, (cpu.busy - this.prevCpu.busy) / (cpu.total - this.prevCpu.total)));
    if (cpu) this.prevCpu = cpu;
    const ds = this.read('diskstats');
    if (ds) {
      const ticks = LoadSampler.parseDiskTicks(ds);
      if (this.prevDisk && now > this.prevDisk.at) {
        let max = 0;
        for (const [name, t] of ticks) {
          const p = this.prevDisk.ticks.get(name);
          if (p !== undefined && t >= p) max = Math.max(max, (t - p) / (now - this.prevDisk.at));
        }
        this.disk = Math.min(1, max);
      }
      this.prevDisk = { ticks, at: now };
    }
    if (this.opts.custom) this.runCustom(this.opts.custom);
    if (this.opts.connections !== false) await this.countConnections();
  }

  /** Established connections, read off the event loop's thread (one count at a time). */
  private async countConnections(): Promise<void> {
    if (this.countBusy) return;
    this.countBusy = true;
    try {
      const [t4, t6] = await Promise.all(['net/tcp', 'net/tcp6'].map((f) => readFile(join(this.proc, f), 'utf8').catch(() => null)));
      if (t4 !== null || t6 !== null) this.connections = LoadSampler.countEstablished(t4 ?? '', this.ports) + LoadSampler.countEstablished(t6 ?? '', this.ports);
    } finally {
      this.countBusy = false;
    }
  }

  private runCustom(cmd: string): void {
    if (this.customBusy) return;
    this.customBusy = true;
    let out = '';
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    } catch {
      this.customBusy = false;
      this.custom = null;
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, this.opts.customTimeoutMs ?? 5000);
    child.stdout!.on('data', (d: Buffer) => {
      if (out.length < 4096) out += d.toString('utf8');
    });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      this.customBusy = false;
      const m = ok ? /-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/.exec(out) : null;
      this.custom = m ? Number(m[0]) : null;
    };
    child.on('error', () => done(false));
    child.on('close', (code) => done(code === 0));
  }

  /** The report for a poll (from the last sample; load average and memory read now). */
  report(): AgentReport {
    const r: AgentReport = { agent: 'vsagent', version: AGENT_PROTOCOL_VERSION, host: hostname(), time: Date.now() };
    const stat = this.read('stat');
    if (stat) r.ncpu = LoadSampler.parseNcpu(stat);
    if (this.cpu !== undefined) r.cpu = round(this.cpu);
    const la = this.read('loadavg');
    const loadavg = la ? LoadSampler.parseLoadavg(la) : undefined;
    if (loadavg) r.loadavg = loadavg;
    const mem = this.read('meminfo');
    const memory = mem ? LoadSampler.parseMemory(mem) : undefined;
    if (memory !== undefined) r.memory = round(memory);
    if (this.connections !== undefined) r.connections = this.connections;
    if (this.disk !== undefined) r.disk = round(this.disk);
    if (this.opts.custom) r.custom = this.custom;
    return r;
  }

  start(intervalMs: number): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}

export interface AgentServers {
  http: Server;
  httpPort: number;
  udp?: UdpSocket;
  udpPort?: number;
  close(): Promise<void>;
}

/** Serve reports over HTTP (and UDP when asked). */
export async function startAgent(sampler: LoadSampler, listen: { host: string; port: number }, udp?: { host: string; port: number }): Promise<AgentServers> {
  const http = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== AGENT_PATH && req.url !== `${AGENT_PATH}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`vsagent: GET ${AGENT_PATH}\n`);
      return;
    }
    const body = JSON.stringify(sampler.report());
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  });
  http.requestTimeout = 5000;
  http.headersTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(listen.port, listen.host, () => resolve());
  });
  const addr = http.address();
  const out: AgentServers = {
    http,
    httpPort: typeof addr === 'object' && addr ? addr.port : listen.port,
    close: async () => {
      await new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections?.();
      if (out.udp) out.udp.close();
    },
  };
  if (udp) {
    const sock = createSocket(udp.host.includes(':') ? 'udp6' : 'udp4');
    sock.on('message', (_msg, rinfo) => {
      sock.send(JSON.stringify(sampler.report()), rinfo.port, rinfo.address);
    });
    sock.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(udp.port, udp.host, () => resolve());
    });
    out.udp = sock;
    out.udpPort = sock.address().port;
  }
  return out;
}

function hostPortArg(name: string, v: string): { host: string; port: number } {
  const hp = parseHostPort(v);
  if (!hp) throw new Error(`--${name}: expected HOST:PORT, got ${v}`);
  return { host: hp.addr.toString(), port: hp.port };
}

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        udp: { type: 'string' },
        ports: { type: 'string' },
        custom: { type: 'string' },
        'custom-timeout': { type: 'string' },
        interval: { type: 'string' },
        proc: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`vsagent: ${(e as Error).message}\nTry 'vsagent --help' for more information.\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`vsagent (tsvs) ${VERSION}\n`);
    return 0;
  }
  let listen: { host: string; port: number };
  let udp: { host: string; port: number } | undefined;
  let ports: number[] | undefined;
  let intervalMs = 1000;
  let customTimeoutMs = 5000;
  try {
    listen = hostPortArg('listen', (values.listen as string | undefined) ?? `0.0.0.0:${AGENT_DEFAULT_PORT}`);
    if (values.udp) udp = hostPortArg('udp', values.udp as string);
    if (values.ports) {
      ports = (values.ports as string).split(',').map((p) => Number(p.trim()));
      if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new Error(`--ports: expected port numbers, got ${values.ports}`);
    }
    if (values.interval !== undefined) {
      intervalMs = Number(values.interval) * 1000;
      if (!Number.isFinite(intervalMs) || intervalMs < 10) throw new Error(`--interval: expected seconds, got ${values.interval}`);
    }
    if (values['custom-timeout'] !== undefined) {
      customTimeoutMs = Number(values['custom-timeout']) * 1000;
      if (!Number.isFinite(customTimeoutMs) || customTimeoutMs <= 0) throw new Error(`--custom-timeout: expected seconds, got ${values['custom-timeout']}`);
    }
  } catch (e) {
    process.stderr.write(`vsagent: ${(e as Error).message}\n`);
    return 2;
  }
  const sampler = new LoadSampler({
    ...(values.proc ? { procDir: values.proc as string } : {}),
    ...(ports ? { ports } : {}),
    ...(values.custom ? { custom: values.custom as string } : {}),
    customTimeoutMs,
  });
  sampler.start(intervalMs);
  let servers: AgentServers;
  try {
    servers = await startAgent(sampler, listen, udp);
  } catch (e) {
    process.stderr.write(`vsagent: cannot listen: ${(e as Error).message}\n`);
    sampler.stop();
    return 1;
  }
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  process.stdout.write(`vsagent: listening on http://${host}:${servers.httpPort}${AGENT_PATH}${servers.udpPort ? ` and udp port ${servers.udpPort}` : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      sampler.stop();
      void servers.close().finally(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
