// Proxy data plane benchmark: tsvs against HAProxy (mode tcp, 1 and 2 threads) and nginx
// stream, in one run, over the same real servers, on loopback only.
//
//   npm run bench:proxy -- [--duration 5] [--runs 3] [--conns 50] [--rate 1000] [--quick]
//                          [--peers direct,tsvs,tsvs-js,haproxy-1t,haproxy-2t,nginx] [--threads N]
//
// Figures, for every peer:
//   - new connections/s: wrk, `Connection: close`, fixed duration, median of `runs` runs
//     interleaved across peers (one round = every peer once);
//   - proxy CPU per connection: utime+stime of the proxy process (/proc/<pid>/stat, all its
//     threads) over the wrk run, divided by the requests done;
//   - bulk Gbit/s: iperf3 through the proxy, 1 and 4 parallel streams (median of the rounds);
//   - latency p50/p99 at a fixed moderate rate (open loop, connect included; bench/lib/rate-client.ts).
// Real servers: nginx serving a short static file (one process), and iperf3. Missing tools are
// installed from Debian (apt-get) when possible. Results go to bench/results/proxy.json with
// the ratios to HAProxy. Every process started here is stopped by its pid at the end.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runRate } from './lib/rate-client.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    conns: { type: 'string', default: '50' },
    rate: { type: 'string', default: '1000' },
    'iperf-seconds': { type: 'string', default: '4' },
    peers: { type: 'string', default: 'direct,tsvs,tsvs-js,haproxy-1t,haproxy-2t,nginx' },
    threads: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'bench', 'results', 'proxy.json') },
  },
});
const quick = opt.quick!;
const DURATION = quick ? 2 : Number(opt.duration);
const RUNS = quick ? 1 : Number(opt.runs);
const CONNS = Number(opt.conns);
const RATE = Number(opt.rate);
const IPERF_S = quick ? 2 : Number(opt['iperf-seconds']);
const PEERS = opt.peers!.split(',').map((s) => s.trim());
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const children: ChildProcess[] = [];
const work = mkdtempSync(join(tmpdir(), 'tsvs-bench-proxy-'));

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureTools(): void {
  const missing = ['haproxy', 'nginx', 'wrk', 'iperf3'].filter((c) => !have(c));
  if (missing.length === 0 && readable('/usr/lib/nginx/modules/ngx_stream_module.so')) return;
  log(`installing peers from Debian (missing: ${missing.join(' ') || 'nginx stream module'})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('apt-get', ['install', '-y', 'haproxy', 'nginx', 'libnginx-mod-stream', 'wrk', 'iperf3'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    const r2 = spawnSync('apt-get', ['install', '-y', 'haproxy', 'nginx', 'libnginx-mod-stream', 'wrk', 'iperf3'], { stdio: 'inherit', env });
    if (r2.status !== 0) throw new Error('could not install haproxy nginx libnginx-mod-stream wrk iperf3 (root needed)');
  }
}

function readable(p: string): boolean {
  try {
    readFileSync(p, { flag: 'r' }).subarray(0, 1);
    return true;
  } catch {
    return false;
  }
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim())?.trim() ?? '?';
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.on('connect', () => {
      c.destroy();
      r(true);
    });
    c.on('error', () => r(false));
  });
}

async function waitPorts(ports: number[], what: string, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode})`);
    let ok = true;
    for (const p of ports) if (!(await canConnect(p))) ok = false;
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${ports.join(', ')}`);
}

function start(name: string, cmd: string, args: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  children.push(p);
  let err = '';
  p.stderr?.on('data', (d) => {
    err = (err + d).slice(-4000);
  });
  p.on('exit', (code, sig) => {
    if (!stopping) log(`${name} exited (${code ?? sig})${err ? `: ${err.trim()}` : ''}`);
  });
  p.stdout?.resume();
  return p;
}

let stopping = false;
async function stopAll(): Promise<void> {
  stopping = true;
  for (const c of children) {
    if (c.pid && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const c of children) {
    if (c.pid && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  rmSync(work, { recursive: true, force: true });
}

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}

interface Peer {
  name: string;
  http: number;
  iperf: number;
  proc: ChildProcess | null;
  note: string;
}

interface WrkResult {
  rps: number;
  requests: number;
  errors: number;
}

function runWrk(port: number, seconds: number, conns: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('error', reject);
    p.on('exit', () => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
      const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = (se ? Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]) : 0) + non2xx;
      resolve({ rps, requests, errors });
    });
  });
}

function runIperf(port: number, streams: number, seconds: number): Promise<number> {
  return new Promise((resolve) => {
    const p = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-P', String(streams), '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('exit', () => {
      try {
        const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
        resolve((j.end?.sum_received?.bits_per_second ?? Number.NaN) / 1e9);
      } catch {
        resolve(Number.NaN);
      }
    });
  });
}

const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

const r2 = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

async function main(): Promise<void> {
  ensureTools();
  process.on('SIGINT', () => {
    void stopAll().then(() => process.exit(130));
  });

  // ---- real servers ----------------------------------------------------------------------
  const backendHttp = await freePort();
  const backendIperf = await freePort();
  mkdirSync(join(work, 'www'));
  writeFileSync(join(work, 'www', 'index.html'), `${'tsvs proxy benchmark: a short static answer. '.repeat(2)}\n`);
  const tmpPaths = ['client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path'].map((d) => `${d} ${work};`).join(' ');
  writeFileSync(
    join(work, 'backend.conf'),
    `daemon off; master_process off; worker_processes 1; pid ${work}/backend.pid; error_log ${work}/backend.err warn;
events { worker_connections 16384; }
http { access_log off; ${tmpPaths} keepalive_timeout 0;
  server { listen 127.0.0.1:${backendHttp} backlog=4096; root ${work}/www; location / { } } }
`,
  );
  const backend = start('nginx backend', 'nginx', ['-p', work, '-e', `${work}/backend.err`, '-c', join(work, 'backend.conf')]);
  const iperfd = start('iperf3 server', 'iperf3', ['-s', '-p', String(backendIperf), '-B', '127.0.0.1']);
  await waitPorts([backendHttp], 'nginx backend', backend);
  await waitPorts([backendIperf], 'iperf3 server', iperfd);

  // ---- peers -----------------------------------------------------------------------------
  const peers: Peer[] = [];
  for (const name of PEERS) {
    if (name === 'direct') {
      peers.push({ name, http: backendHttp, iperf: backendIperf, proc: null, note: 'no proxy' });
      continue;
    }
    const http = await freePort();
    const iperf = await freePort();
    let proc: ChildProcess;
    let note = '';
    if (name === 'tsvs' || name === 'tsvs-js') {
      const args = ['--import', 'tsx', join(root, 'bench', 'lib', 'tsvs-proxy-server.ts'), '--map', `127.0.0.1:${http}=127.0.0.1:${backendHttp}`, '--map', `127.0.0.1:${iperf}=127.0.0.1:${backendIperf}`, '--relay', name === 'tsvs' ? 'auto' : 'js'];
      if (opt.threads) args.push('--threads', opt.threads);
      proc = start(name, process.execPath, args);
      note = await new Promise<string>((resolve, reject) => {
        let buf = '';
        proc.stdout?.on('data', (d) => {
          buf += d;
          const m = /ready (\w+)/.exec(buf);
          if (m) resolve(`relay ${m[1]}`);
        });
        proc.on('exit', () => reject(new Error(`${name} did not start`)));
      });
    } else if (name === 'haproxy-1t' || name === 'haproxy-2t') {
      const cfg = join(work, `${name}.cfg`);
      writeFileSync(
        cfg,
        `global
  nbthread ${name === 'haproxy-2t' ? 2 : 1}
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen http
  bind 127.0.0.1:${http}
  server s1 127.0.0.1:${backendHttp}
listen iperf
  bind 127.0.0.1:${iperf}
  server s1 127.0.0.1:${backendIperf}
`,
      );
      proc = start(name, 'haproxy', ['-db', '-f', cfg]);
      note = `mode tcp, nbthread ${name === 'haproxy-2t' ? 2 : 1}`;
    } else if (name === 'nginx') {
      const cfg = join(work, 'stream.conf');
      writeFileSync(
        cfg,
        `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process off; worker_processes 1; pid ${work}/stream.pid; error_log ${work}/stream.err warn;
events { worker_connections 16384; }
stream {
  server { listen 127.0.0.1:${http} backlog=4096; proxy_pass 127.0.0.1:${backendHttp}; }
  server { listen 127.0.0.1:${iperf}; proxy_pass 127.0.0.1:${backendIperf}; }
}
`,
      );
      proc = start(name, 'nginx', ['-p', work, '-e', `${work}/stream.err`, '-c', cfg]);
      note = 'stream, 1 worker';
    } else {
      throw new Error(`unknown peer ${name}`);
    }
    await waitPorts([http, iperf], name, proc);
    peers.push({ name, http, iperf, proc, note });
  }
  log(`peers: ${peers.map((p) => `${p.name} (${p.note})`).join(', ')}`);
  log(`settings: wrk -t1 -c${CONNS} -d${DURATION}s x${RUNS} rounds; iperf3 ${IPERF_S}s; latency at ${RATE} conn/s`);

  // warm-up (JIT, caches, accept queues)
  for (const p of peers) await runWrk(p.http, 1, CONNS);

  // ---- new connections/s and CPU per connection ----------------------------------------------
  const conn: Record<string, { rps: number[]; cpu: number[]; errors: number }> = {};
  for (const p of peers) conn[p.name] = { rps: [], cpu: [], errors: 0 };
  for (let round = 0; round < RUNS; round++) {
    for (const p of peers) {
      const pid = p.proc?.pid;
      const t0 = pid ? cpuTicks(pid) : 0;
      const r = await runWrk(p.http, DURATION, CONNS);
      const t1 = pid ? cpuTicks(pid) : 0;
      const c = conn[p.name]!;
      c.rps.push(r.rps);
      c.errors += r.errors;
      if (pid) c.cpu.push((((t1 - t0) / CLK_TCK) * 1e6) / r.requests);
      log(`  conn/s  round ${round + 1}  ${p.name.padEnd(11)} ${r.rps.toFixed(0).padStart(7)}/s${pid ? `  ${c.cpu.at(-1)!.toFixed(1)} µs CPU/conn` : ''}${r.errors ? `  errors ${r.errors}` : ''}`);
    }
  }

  // ---- bulk --------------------------------------------------------------------------------------
  const bulk: Record<string, { g1: number[]; g4: number[] }> = {};
  for (const p of peers) bulk[p.name] = { g1: [], g4: [] };
  for (const streams of [1, 4]) {
    for (let round = 0; round < RUNS; round++) {
      for (const p of peers) {
        const g = await runIperf(p.iperf, streams, IPERF_S);
        (streams === 1 ? bulk[p.name]!.g1 : bulk[p.name]!.g4).push(g);
        log(`  bulk ${streams}x   round ${round + 1}  ${p.name.padEnd(11)} ${g.toFixed(2).padStart(7)} Gbit/s`);
      }
    }
  }

  // ---- latency at a fixed moderate rate -------------------------------------------------------
  const lat: Record<string, { p50: number; p99: number; errors: number }> = {};
  for (const p of peers) {
    const r = await runRate('127.0.0.1', p.http, RATE, DURATION);
    lat[p.name] = { p50: r.p50, p99: r.p99, errors: r.errors };
    log(`  latency @${RATE}/s  ${p.name.padEnd(11)} p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms${r.errors ? `  errors ${r.errors}` : ''}`);
  }

  // ---- report ----------------------------------------------------------------------------------
  const figures: Record<string, Record<string, number | null>> = {};
  for (const p of peers) {
    figures[p.name] = {
      connPerSec: r2(median(conn[p.name]!.rps), 0),
      cpuUsPerConn: p.proc ? r2(median(conn[p.name]!.cpu), 1) : null,
      gbps1: r2(median(bulk[p.name]!.g1)),
      gbps4: r2(median(bulk[p.name]!.g4)),
      p50ms: r2(lat[p.name]!.p50, 3),
      p99ms: r2(lat[p.name]!.p99, 3),
      errors: conn[p.name]!.errors + lat[p.name]!.errors,
    };
  }
  const ratios: Record<string, Record<string, Record<string, number | null>>> = {};
  for (const ref of ['haproxy-1t', 'haproxy-2t']) {
    const base = figures[ref];
    if (!base) continue;
    const out: Record<string, Record<string, number | null>> = {};
    for (const p of peers) {
      if (p.name === ref) continue;
      const f = figures[p.name]!;
      const div = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b !== 0 ? r2(a / b) : null);
      out[p.name] = {
        connPerSec: div(f.connPerSec, base.connPerSec),
        // below 1 means less CPU than the reference
        cpuUsPerConn: div(f.cpuUsPerConn, base.cpuUsPerConn),
        gbps1: div(f.gbps1, base.gbps1),
        gbps4: div(f.gbps4, base.gbps4),
        p50ms: div(f.p50ms, base.p50ms),
        p99ms: div(f.p99ms, base.p99ms),
      };
    }
    ratios[`vs ${ref}`] = out;
  }

  const cols = ['connPerSec', 'cpuUsPerConn', 'gbps1', 'gbps4', 'p50ms', 'p99ms'];
  const head = ['peer', 'conn/s', 'µs CPU/conn', 'Gbit/s 1x', 'Gbit/s 4x', 'p50 ms', 'p99 ms'];
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(12) : c.padStart(12))).join('');
  console.log(`\n${line(head)}`);
  for (const p of peers) console.log(line([p.name, ...cols.map((c) => String(figures[p.name]![c] ?? '—'))]));
  for (const [k, v] of Object.entries(ratios)) {
    console.log(`\nratios ${k}`);
    for (const [name, r] of Object.entries(v)) console.log(line([name, ...cols.map((c) => String(r[c] ?? '—'))]));
  }

  const cpu = cpus();
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? '?', kernel: release(), node: process.version },
    settings: { wrk: `-t1 -c${CONNS} -d${DURATION}s -H 'Connection: close'`, runs: RUNS, iperfSeconds: IPERF_S, latencyRate: RATE, latencySeconds: DURATION, threads: opt.threads ?? 'default' },
    figures,
    peers: {
      tsvs: peers.find((p) => p.name === 'tsvs')?.note ?? null,
      haproxy: version('haproxy', ['-v']),
      nginx: version('nginx', ['-v']),
      wrk: version('wrk', ['-v']),
      iperf3: version('iperf3', ['-v']),
      notes: Object.fromEntries(peers.map((p) => [p.name, p.note])),
    },
    ratios,
  };
  mkdirSync(dirname(opt.out!), { recursive: true });
  writeFileSync(opt.out!, `${JSON.stringify(result, null, 2)}\n`);
  log(`\nwrote ${opt.out}`);
}

main()
  .catch((e) => {
    log(`bench failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
