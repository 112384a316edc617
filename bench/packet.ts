// Packet data plane benchmark: tsvs forwarding real traffic against the kernel forwarding the
// same traffic through an nftables DNAT rule (the ceiling on this machine), in the same run and
// the same namespace topology. Root only. Run: npm run bench:packet [-- --seconds 3 --runs 3]
//
// Topology (bench/packet-baseline.ts: two arms, one real server, veth pairs):
//   client ns (trafgen, wrk) --eth0-- director ns --eth1-- rs1 ns (nginx; UDP counted and dropped at ingress)
// Figures:
//   - 64-byte UDP packets/s reaching the real server (trafgen from 1024 source ports to VIP:9):
//     kernel DNAT on one core (trafgen on 1 CPU) and all cores (trafgen on every CPU); tsvs NAT
//     and DR in "single" mode (one thread: the one-core figure) and in "threads" mode (workers
//     on every CPU: the all-cores figure).
//   - TCP connections/s: wrk -c32 with `Connection: close` against nginx, through each.
// Ratios are tsvs / kernel. Results also go to bench/results/packet.json.
// "One core" for the kernel is trafgen --cpus 1: the sender and the kernel's forwarding (done in
// the sender's softirq) share that CPU. tsvs "single" is one thread of its own, while the
// sender's CPU still does the receive work that fills its ring: read the ratio with that in mind.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monotonicClock } from '../src/core/clock.js';
import { FWD_DROUTE, FWD_MASQ, IPPROTO_TCP, IPPROTO_UDP } from '../src/core/constants.js';
import { Director } from '../src/core/director.js';
import '../src/core/schedulers/index.js';
import { frameIoAvailable } from '../src/planes/packet/frame-io.js';
import { PacketPlane } from '../src/planes/packet/plane.js';
import { commandExists, netnsSkipReason } from '../test/helpers/netns.js';
import { ensureTools, installKernelDnat, type Measurement, type PacketBench, ReceiverCounter, setupPacketBench, startTrafgen, trafgenUdpConfig } from './packet-baseline.js';

const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) || dflt : dflt;
}

const SECONDS = arg('--seconds', 3);
const RUNS = arg('--runs', 3);
const WRK_CONNS = 32;
const CPUS = availableParallelism();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const fmt = (n: number): string => (Number.isFinite(n) ? `${(n / 1000).toFixed(1)}k` : 'n/a');

function ensureBenchTools(): void {
  ensureTools();
  const need = ['wrk', 'nginx'].filter((c) => !commandExists(c));
  if (need.length === 0) return;
  console.error(`installing ${need.join(' ')} …`);
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', ...need], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) throw new Error(`apt-get install ${need.join(' ')} failed`);
}

/** nginx on the real server (all addresses, so the VIP on lo too, for DR): a short static answer. */
function startNginx(b: PacketBench): () => Promise<void> {
  const rs = b.lvs.servers[0]!;
  const work = `/tmp/tsvs-bench-packet-${process.pid}-${rs.ns.name.slice(-8)}`;
  mkdirSync(join(work, 'www'), { recursive: true });
  writeFileSync(join(work, 'www', 'index.html'), 'tsvs packet benchmark\n');
  const tmp = ['client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path'].map((d) => `${d} ${work};`).join(' ');
  writeFileSync(
    join(work, 'nginx.conf'),
    `daemon off; master_process off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/err warn;
events { worker_connections 16384; }
http { access_log off; ${tmp} keepalive_timeout 0; server { listen 80 backlog=4096 reuseport; root ${work}/www; location / { } } }
`,
  );
  const p = rs.ns.spawn('nginx', ['-p', work, '-c', join(work, 'nginx.conf')]);
  return async () => {
    await p.stop();
    spawnSync('rm', ['-rf', work]);
  };
}

/** The director forwards with tsvs: real server on lo for DR, a plane and one UDP + one TCP service. */
async function withTsvs<T>(b: PacketBench, method: number, mode: 'single' | 'threads', fn: () => Promise<T>): Promise<T> {
  const d = b.lvs.director;
  const rs = b.lvs.servers[0]!;
  const director = new Director({ now: monotonicClock, connCapacity: 1 << 16 });
  const plane = new PacketPlane(director, { interfaces: [d.clientIf, d.serverIf], netns: d.ns.name, mode, threads: CPUS });
  await plane.start();
  const tick = setInterval(() => director.advance(), 50);
  try {
    for (const [proto, port] of [
      [IPPROTO_UDP, b.port],
      [IPPROTO_TCP, 80],
    ] as const) {
      const key = { af: 4 as const, protocol: proto, addr: b.lvs.vip4, port, fwmark: 0 };
      director.addService({ ...key, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
      director.addDest(key, { af: 4, addr: rs.v4, port, connFlags: method, weight: 1, uThreshold: 0, lThreshold: 0 });
    }
    await plane.settle();
    return await fn();
  } finally {
    clearInterval(tick);
    await plane.close();
    // Workers release their rings asynchronously; give them a moment before the next case.
    await sleep(300);
  }
}

/** Processes whose parent is `pid` (trafgen --cpus N forks one sender per CPU). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Runs trafgen for warmup + window and reports the receiver's rate over the window (as the
 * baseline's measure(), but also stopping the senders trafgen forked: they outlive a SIGINT
 * to their parent and would keep loading the machine during the next cases).
 */
async function measure(b: PacketBench, cpus: number, windowMs: number, warmupMs = 1000): Promise<Measurement> {
  const { lvs, port } = b;
  const cfg = trafgenUdpConfig({ srcMac: lvs.client.mac, dstMac: lvs.director.clientMac, src: lvs.client.v4, dst: lvs.vip4, dport: port });
  const rx = new ReceiverCounter(lvs.servers[0]!.ns, lvs.servers[0]!.ifname);
  const offered = (): number => {
    const s = lvs.client.ns.linkStats(lvs.client.ifname);
    return s.txPackets + s.txDropped;
  };
  const tg = startTrafgen(lvs.client.ns, lvs.client.ifname, cfg, cpus);
  await sleep(200);
  const children = childPids(tg.proc.pid);
  try {
    await sleep(warmupMs);
    if (!tg.proc.running) throw new Error(`trafgen exited: ${tg.proc.stderr || tg.proc.stdout}`);
    const t0 = process.hrtime.bigint();
    const r0 = rx.read();
    const o0 = offered();
    await sleep(windowMs);
    const r1 = rx.read();
    const o1 = offered();
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return { pps: (r1 - r0) / secs, offeredPps: (o1 - o0) / secs, seconds: secs };
  } finally {
    for (const c of [...children, ...childPids(tg.proc.pid)]) {
      try {
        process.kill(c, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await tg.stop();
  }
}

interface WrkResult {
  cps: number;
  errors: number;
}

function wrk(b: PacketBench, seconds: number): Promise<WrkResult> {
  return new Promise((resolve) => {
    const c = b.lvs.client.ns;
    const p = spawn('ip', ['netns', 'exec', c.name, 'wrk', '-t1', `-c${WRK_CONNS}`, `-d${seconds}s`, '-H', 'Connection: close', `http://${b.lvs.vip4}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (x: string) => {
      out += x;
    });
    p.on('exit', () => {
      const cps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
      const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      resolve({ cps, errors: se ? Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]) : 0 });
    });
  });
}

interface Case {
  key: string;
  name: string;
  kind: 'udp' | 'tcp';
  run(): Promise<number>;
}

function machine(): Record<string, unknown> {
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return { cpus: CPUS, model: cpus()[0]?.model ?? '', kernel, node: process.version, nft: spawnSync('nft', ['--version'], { encoding: 'utf8' }).stdout.trim() };
}

async function main(): Promise<void> {
  const why = netnsSkipReason();
  if (why) {
    console.log(`packet benchmark skipped: ${why}`);
    return;
  }
  const fio = frameIoAvailable();
  if (!fio.ok) {
    console.log(`packet benchmark skipped: ${fio.reason}`);
    return;
  }
  ensureBenchTools();
  const windowMs = SECONDS * 1000;
  const kernel = setupPacketBench('pktkern');
  const tsvs = setupPacketBench('pkttsvs');
  const stops: Array<() => Promise<void>> = [];
  try {
    installKernelDnat(kernel);
    kernel.lvs.director.ns.nft(`table ip tsvs_baseline_tcp {
  chain pre { type nat hook prerouting priority dstnat; policy accept; ip daddr ${kernel.lvs.vip4} tcp dport 80 dnat to ${kernel.lvs.servers[0]!.v4}:80; }
}`);
    // The kernel does not own the VIP: the client is told its MAC (the plane answers ARP itself).
    kernel.lvs.client.ns.ip('neigh', 'replace', kernel.lvs.vip4, 'lladdr', kernel.lvs.director.clientMac, 'dev', kernel.lvs.client.ifname, 'nud', 'permanent');
    // DR: the real server owns the VIP (on lo, ARP quiet); the kernel DNAT case does not use it.
    tsvs.lvs.topo.drRealServer(tsvs.lvs.servers[0]!.ns, [tsvs.lvs.vip4]);
    stops.push(startNginx(kernel), startNginx(tsvs));
    await sleep(500);

    const udp = (b: PacketBench, cpus: number) => async () => (await measure(b, cpus, windowMs)).pps;
    const cases: Case[] = [
      { key: 'kernel_1core', name: 'kernel nft DNAT, 1 core', kind: 'udp', run: udp(kernel, 1) },
      { key: 'kernel_all', name: `kernel nft DNAT, ${CPUS} cores`, kind: 'udp', run: udp(kernel, CPUS) },
      { key: 'nat_single', name: 'tsvs NAT, 1 thread', kind: 'udp', run: () => withTsvs(tsvs, FWD_MASQ, 'single', udp(tsvs, 1)) },
      { key: 'dr_single', name: 'tsvs DR, 1 thread', kind: 'udp', run: () => withTsvs(tsvs, FWD_DROUTE, 'single', udp(tsvs, 1)) },
      { key: 'nat_threads', name: `tsvs NAT, ${CPUS} worker threads`, kind: 'udp', run: () => withTsvs(tsvs, FWD_MASQ, 'threads', udp(tsvs, 1)) },
      { key: 'dr_threads', name: `tsvs DR, ${CPUS} worker threads`, kind: 'udp', run: () => withTsvs(tsvs, FWD_DROUTE, 'threads', udp(tsvs, 1)) },
      { key: 'tcp_kernel', name: 'kernel nft DNAT', kind: 'tcp', run: async () => (await wrk(kernel, SECONDS)).cps },
      { key: 'tcp_nat_single', name: 'tsvs NAT, 1 thread', kind: 'tcp', run: () => withTsvs(tsvs, FWD_MASQ, 'single', async () => (await wrk(tsvs, SECONDS)).cps) },
      { key: 'tcp_dr_single', name: 'tsvs DR, 1 thread', kind: 'tcp', run: () => withTsvs(tsvs, FWD_DROUTE, 'single', async () => (await wrk(tsvs, SECONDS)).cps) },
      { key: 'tcp_nat_threads', name: `tsvs NAT, ${CPUS} worker threads`, kind: 'tcp', run: () => withTsvs(tsvs, FWD_MASQ, 'threads', async () => (await wrk(tsvs, SECONDS)).cps) },
    ];
    const only = process.argv.includes('--cases') ? process.argv[process.argv.indexOf('--cases') + 1]!.split(',') : undefined;
    const selected = only ? cases.filter((c) => only.includes(c.key)) : cases;
    const results = new Map<string, number[]>(selected.map((c) => [c.key, []]));
    console.log(`tsvs packet plane benchmark: ${RUNS} interleaved runs of ${SECONDS} s per case, median shown (all runs in brackets)`);
    for (let r = 0; r < RUNS; r++) {
      for (const c of selected) {
        const v = await c.run();
        results.get(c.key)!.push(v);
        process.stderr.write(`  run ${r + 1}: ${c.kind} ${c.name}: ${fmt(v)}\n`);
      }
    }
    const fig = (k: string): number => median(results.get(k) ?? []);
    const ratio = (a: string, b: string): number => Math.round((fig(a) / fig(b)) * 1000) / 1000;
    const line = (c: Case) => `${c.name.padEnd(34)} ${fmt(fig(c.key)).padStart(8)}  [${(results.get(c.key) ?? []).map(fmt).join(' ')}]`;
    console.log('\n64-byte UDP packets/s at the real server');
    for (const c of selected.filter((x) => x.kind === 'udp')) console.log(`  ${line(c)}`);
    console.log('\nTCP connections/s (wrk, Connection: close)');
    for (const c of selected.filter((x) => x.kind === 'tcp')) console.log(`  ${line(c)}`);
    const ratios = {
      nat_single_vs_kernel_1core: ratio('nat_single', 'kernel_1core'),
      dr_single_vs_kernel_1core: ratio('dr_single', 'kernel_1core'),
      nat_threads_vs_kernel_all: ratio('nat_threads', 'kernel_all'),
      dr_threads_vs_kernel_all: ratio('dr_threads', 'kernel_all'),
      tcp_nat_single_vs_kernel: ratio('tcp_nat_single', 'tcp_kernel'),
      tcp_dr_single_vs_kernel: ratio('tcp_dr_single', 'tcp_kernel'),
      tcp_nat_threads_vs_kernel: ratio('tcp_nat_threads', 'tcp_kernel'),
    };
    console.log('\nratios (tsvs / kernel; bar 0.3 on one core, goal 0.5)');
    for (const [k, v] of Object.entries(ratios)) if (Number.isFinite(v)) console.log(`  ${k.padEnd(30)} ${v.toFixed(2)}`);
    const out = {
      date: new Date().toISOString(),
      machine: machine(),
      settings: { seconds: SECONDS, runs: RUNS, udp: '64-byte frames, trafgen, 1024 source ports', tcp: `wrk -t1 -c${WRK_CONNS} -H 'Connection: close', nginx 1 worker` },
      peers: { kernel: 'nftables DNAT (prerouting), kernel forwarding' },
      figures: Object.fromEntries(selected.map((c) => [c.key, { name: c.name, unit: c.kind === 'udp' ? 'packets/s' : 'connections/s', median: fig(c.key), runs: results.get(c.key) }])),
      ratios,
    };
    const file = join(here, 'results', 'packet.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwritten to ${file}`);
  } finally {
    for (const s of stops) await s();
    await kernel.destroy();
    await tsvs.destroy();
  }
}

export type { Measurement };

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
