// Scheduler benchmark: decisions per second of every IPVS scheduler at 3, 100 and 10,000 real
// servers on one core, and the Maglev table build with the largest prime (M = 131071) at 1,000
// real servers. The least-connection family (and twos, lblc, lblcr) runs with connection
// churn: every decision binds a connection to the chosen dest and unbinds an older one, each
// reported through loadChanged as the connection table does, so their indexes are exercised.
// For comparison, the kernel's linear wlc scan runs the same loop.
//
// Each scheduler is measured in its own process, so that JIT feedback from the others does not
// blur its figures. Run directly: node --import tsx bench/schedulers.ts

import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { IpAddr } from '../src/core/addr.js';
import { DEST_F_AVAILABLE, IPPROTO_TCP } from '../src/core/constants.js';
import { Flow } from '../src/core/flow.js';
import { builtinSchedulers, createMhScheduler } from '../src/core/schedulers/index.js';
import type { SchedulerContext, SchedulerInstance, SchedulerOps } from '../src/core/schedulers/scheduler.js';
import { wlcScan } from '../src/core/schedulers/wlc.js';
import { Dest, Service } from '../src/core/service.js';

const SIZES = [3, 100, 10_000] as const;
/** Schedulers whose decisions depend on connection counts: measured with churn. */
const CHURN = new Set(['lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'lblc', 'lblcr', 'twos', 'wlc-linear']);
/** The kernel's linear wlc scan, as a yardstick for the indexed least-connection family. */
const LINEAR = 'wlc-linear';
const ORDER = [...builtinSchedulers.map((s) => s.name), LINEAR];
const WINDOW_MS = 200;
const ROUNDS = 3;
const FLOWS = 4096;

interface Sizes {
  [servers: number]: number;
}

export interface SchedulerFigures {
  /** Decisions per CPU-second, best of ROUNDS windows, per scheduler and pool size. */
  decisionsPerSecond: Record<string, Sizes>;
  mhBuild: { servers: number; tableSize: number; minMs: number; medianMs: number; runs: number };
  notes: string[];
  loadAverage: number[];
}

function context(): SchedulerContext {
  let state = 0x2545f491;
  return {
    now: () => performance.now(),
    random32: () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    },
    sysctl: { lblc_expiration: 24 * 3600, lblcr_expiration: 24 * 3600 },
  };
}

function service(servers: number): Service {
  const svc = new Service(4, IPPROTO_TCP, IpAddr.parse('192.0.2.1'), 80, 0);
  for (let i = 0; i < servers; i++) {
    const d = new Dest(svc, IpAddr.v4(0x0a000001 + i), 8080);
    d.weight = 1 + (i % 4);
    d.lastWeight = d.weight;
    d.flags = DEST_F_AVAILABLE;
    svc.dests.unshift(d);
  }
  svc.reindex();
  return svc;
}

/** Clients from many sources to 1024 destination addresses (dh, lblc and lblcr key on it). */
function flows(): Flow[] {
  let x = 12345;
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    return x >>> 0;
  };
  return Array.from({ length: FLOWS }, () => {
    const f = new Flow();
    f.protocol = IPPROTO_TCP;
    f.setSource(IpAddr.v4(next()), 1024 + (next() % 60000));
    f.setDest(IpAddr.v4(0xc6336400 + (next() % 1024)), 80);
    return f;
  });
}

function opsFor(name: string, servers: number): SchedulerOps {
  // The default Maglev table (4093 slots) cannot hold 10,000 dests (EINVAL): use the largest.
  if (name === 'mh' && servers > 4093) return createMhScheduler({ tabIndex: 17 });
  if (name === LINEAR) {
    return {
      name,
      init: (svc) => ({
        addDest() {},
        delDest() {},
        updDest() {},
        loadChanged() {},
        schedule: () => wlcScan(svc.dests),
        done() {},
      }),
    };
  }
  const ops = builtinSchedulers.find((s) => s.name === name);
  if (!ops) throw new Error(`unknown scheduler ${name}`);
  return ops;
}

/** CPU time of this process in ms: other processes on a busy machine do not count against us. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Decisions per CPU-second over one window. */
function window(sched: SchedulerInstance, fl: Flow[], churn: boolean, ring: (Dest | null)[], ms: number): number {
  const mask = FLOWS - 1;
  const ringMask = ring.length - 1;
  let n = 0;
  let pos = 0;
  const t0 = cpuMs();
  let t = t0;
  do {
    if (churn) {
      for (let i = 0; i < 4096; i++) {
        const d = sched.schedule(fl[(n + i) & mask]!);
        if (d) {
          d.activeconns++;
          sched.loadChanged!(d);
        }
        const old = ring[pos];
        if (old) {
          old.activeconns--;
          sched.loadChanged!(old);
        }
        ring[pos] = d;
        pos = (pos + 1) & ringMask;
      }
    } else {
      for (let i = 0; i < 4096; i++) if (sched.schedule(fl[(n + i) & mask]!) === undefined) throw new Error('unreachable');
    }
    n += 4096;
    t = cpuMs();
  } while (t - t0 < ms);
  return (n * 1000) / (t - t0);
}

/** One scheduler at every pool size (run in a child process). */
function measureScheduler(name: string): Sizes {
  const out: Sizes = {};
  const fl = flows();
  for (const servers of SIZES) {
    const sched = opsFor(name, servers).init(service(servers), context());
    const churn = CHURN.has(name);
    // About 8 live connections per server, at most 65536.
    let ringSize = 1;
    while (ringSize < Math.min(8 * servers, 65536)) ringSize *= 2;
    const ring = new Array<Dest | null>(ringSize).fill(null);
    window(sched, fl, churn, ring, 100); // warm-up
    let best = 0;
    for (let r = 0; r < ROUNDS; r++) best = Math.max(best, window(sched, fl, churn, ring, WINDOW_MS));
    out[servers] = Math.round(best);
  }
  return out;
}

/** mh table builds at 1,000 servers with M = 131071. */
function measureMhBuild(runs = 40): SchedulerFigures['mhBuild'] {
  const ops = createMhScheduler({ tabIndex: 17 });
  const svc = service(1000);
  const ctx = context();
  for (let i = 0; i < 5; i++) ops.init(svc, ctx);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = cpuMs();
    ops.init(svc, ctx);
    times.push(cpuMs() - t0);
  }
  times.sort((a, b) => a - b);
  const round = (x: number) => Number(x.toFixed(2));
  return { servers: 1000, tableSize: 131071, minMs: round(times[0]!), medianMs: round(times[runs >> 1]!), runs };
}

function child(args: string[]): unknown {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function benchSchedulers(): Promise<Record<string, unknown>> {
  const decisionsPerSecond: Record<string, Sizes> = {};
  for (const name of ORDER) decisionsPerSecond[name] = child(['--one', name]) as Sizes;
  const mhBuild = child(['--mh-build']) as SchedulerFigures['mhBuild'];
  const figures: SchedulerFigures = {
    decisionsPerSecond,
    mhBuild,
    notes: [
      'decisions per CPU-second of the measuring process (so other load on the machine does not count): best of 3 windows of 200 ms CPU after a 100 ms warm-up, one process per scheduler',
      'weights 1..4 in turn; 4096 client flows to 1024 destination addresses',
      `with connection churn (bind the chosen dest, unbind an older one, loadChanged for both): ${[...CHURN].join(', ')}`,
      'mh at 10,000 servers uses M = 131071 (the default 4093 slots cannot hold them: EINVAL)',
    ],
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  };
  print(figures);
  return figures as unknown as Record<string, unknown>;
}

function print(f: SchedulerFigures): void {
  const m = (x: number | undefined) => (x === undefined ? '-' : `${(x / 1e6).toFixed(2)} M/s`).padStart(14);
  console.log(`${'scheduler'.padEnd(12)}${SIZES.map((s) => `${s.toLocaleString('en')} servers`.padStart(14)).join('')}`);
  for (const [name, sizes] of Object.entries(f.decisionsPerSecond)) {
    console.log(`${name.padEnd(12)}${SIZES.map((s) => m(sizes[s])).join('')}`);
  }
  const b = f.mhBuild;
  console.log(`mh table build, M = ${b.tableSize}, ${b.servers} servers: min ${b.minMs} ms, median ${b.medianMs} ms CPU (${b.runs} builds)`);
  for (const n of f.notes) console.log(`  - ${n}`);
  console.log(`  - load average during the run: ${f.loadAverage.join(' ')}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--one');
  if (i > 0) process.stdout.write(JSON.stringify(measureScheduler(process.argv[i + 1]!)));
  else if (process.argv.includes('--mh-build')) process.stdout.write(JSON.stringify(measureMhBuild()));
  else await benchSchedulers();
}
