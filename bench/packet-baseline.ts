// The kernel baseline the packet data plane is measured against, and the ceiling of the frame
// layer under it. Root only. Run: node --import tsx bench/packet-baseline.ts [--seconds 3] [--runs 3]
//
// Topology (test/helpers/netns.ts, two arms, one real server, every link a veth pair):
//   client ns (trafgen) --eth0/eth0-- director ns --eth1/eth0-- rs1 ns (counts, then drops)
// Traffic: 64-byte frames (60 + FCS) of UDP to the VIP 198.18.1.100:9 from 1024 source ports.
//
// 1. kernel DNAT: nftables dnat in the director's prerouting, the kernel forwards; trafgen on
//    one CPU, then on both (everything, sender included, shares the machine's two cores).
// 2. raw frame forwarding on our frame I/O: the director's kernel drops the frames at ingress
//    (nft netdev: AF_PACKET taps see them first), a loop receives on eth0, rewrites both MACs
//    in place and forward()s them out of eth1 (no IPVS logic, no IP rewrite): the frame layer's
//    ceiling. Busy loop in a worker thread, and event-loop driven in the main thread.
// The receiver counts what reached rs1's eth0 (veth rx counter), where nft drops it at ingress.
//
// Exports are meant for bench/packet.ts: setupPacketBench, startTrafgen, trafgenUdpConfig,
// ReceiverCounter, measure, rawForwardLoop.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { frameIoAvailable, openFramePort, receiveLoop } from '../src/planes/packet/frame-io.js';
import { commandExists, createLvsTopology, type LvsTopology, type Netns, netnsSkipReason, type NsProcess } from '../test/helpers/netns.js';

// ---------------------------------------------------------------------------------------------
// Tools

/** Installs missing Debian packages (waits for another apt/dpkg to finish). */
export function ensureTools(): void {
  const need: string[] = [];
  if (!commandExists('nft')) need.push('nftables');
  if (!commandExists('trafgen')) need.push('netsniff-ng');
  if (!commandExists('ip')) need.push('iproute2');
  if (!commandExists('ethtool')) need.push('ethtool');
  if (need.length === 0) return;
  console.error(`installing ${need.join(' ')} …`);
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', ...need], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new Error(`apt-get install ${need.join(' ')} failed`);
}

// ---------------------------------------------------------------------------------------------
// Topology

export interface PacketBench {
  lvs: LvsTopology;
  /** UDP port the traffic goes to, on the VIP and on the real server. */
  port: number;
  destroy(): Promise<void>;
}

/**
 * client -> director -> rs1, two arms, with static neighbour entries (no ARP during a run) and
 * an nft counter-and-drop for UDP at rs1's ingress (it counts, and rs1's stack does no work).
 */
export function setupPacketBench(tag = 'pktbench'): PacketBench {
  const lvs = createLvsTopology(tag, { arms: 'two', servers: 1 });
  const d = lvs.director;
  const rs = lvs.servers[0]!;
  const c = lvs.client;
  d.ns.ip('neigh', 'replace', rs.v4, 'lladdr', rs.mac, 'dev', d.serverIf, 'nud', 'permanent');
  d.ns.ip('neigh', 'replace', c.v4, 'lladdr', c.mac, 'dev', d.clientIf, 'nud', 'permanent');
  rs.ns.nft(`table netdev tsvs_sink {
  chain in { type filter hook ingress device "${rs.ifname}" priority 0; policy accept; ip protocol udp counter drop; }
}`);
  return { lvs, port: 9, destroy: () => lvs.destroy() };
}

/** The kernel's DNAT of VIP:port to the real server, in the director. */
export function installKernelDnat(b: PacketBench): void {
  const { lvs, port } = b;
  lvs.director.ns.nft(`table ip tsvs_baseline {
  chain pre { type nat hook prerouting priority dstnat; policy accept; ip daddr ${lvs.vip4} udp dport ${port} dnat to ${lvs.servers[0]!.v4}:${port}; }
}`);
}

/** Drop UDP at the director's client-side ingress: its kernel stays out, AF_PACKET still sees it. */
export function installDirectorIngressDrop(b: PacketBench): void {
  const d = b.lvs.director;
  d.ns.nft(`table netdev tsvs_plane {
  chain in { type filter hook ingress device "${d.clientIf}" priority 0; policy accept; ip protocol udp drop; }
}`);
}

// ---------------------------------------------------------------------------------------------
// Sender

export interface TrafgenUdp {
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  dport: number;
  /** Source ports cycle through [first, last] (flows, for conntrack and fanout hashing). */
  sportFirst?: number;
  sportLast?: number;
  /** Frame size without FCS (default 60: a 64-byte frame on the wire). */
  frameSize?: number;
}

/** A trafgen packet configuration; trafgen fills in the IPv4 and UDP checksums. */
export function trafgenUdpConfig(o: TrafgenUdp): string {
  const size = o.frameSize ?? 60;
  const fill = size - 14 - 20 - 8;
  if (fill < 0) throw new RangeError('frame too small for UDP/IPv4');
  return `{
  eth(da=${o.dstMac}, sa=${o.srcMac}),
  ipv4(sa=${o.src}, da=${o.dst}, ttl=64),
  udp(sp=dinc(${o.sportFirst ?? 1024}, ${o.sportLast ?? 2047}), dp=${o.dport}),
  fill(0x00, ${fill})
}
`;
}

export interface TrafgenRun {
  proc: NsProcess;
  stop(): Promise<void>;
}

/** Starts trafgen in ns on ifname with `cpus` processes (pinned to CPUs 0..cpus-1), until stopped. */
export function startTrafgen(ns: Netns, ifname: string, config: string, cpus: number): TrafgenRun {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-trafgen-'));
  const file = join(dir, 'udp.cfg');
  writeFileSync(file, config);
  const proc = ns.spawn('trafgen', ['--dev', ifname, '--conf', file, '--cpus', String(cpus), '--num', '0']);
  return {
    proc,
    stop: async () => {
      proc.signal('SIGINT');
      const t = setTimeout(() => proc.signal('SIGKILL'), 2000);
      await proc.exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Receiver

/** Counts frames delivered to an interface (its veth rx counter). */
export class ReceiverCounter {
  constructor(
    readonly ns: Netns,
    readonly ifname: string,
  ) {}
  read(): number {
    return this.ns.linkStats(this.ifname).rxPackets;
  }
}

export interface Measurement {
  /** Frames per second that reached the receiver. */
  pps: number;
  /** Frames per second the sender got onto its wire. */
  offeredPps: number;
  seconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs trafgen for warmup + window and reports the receiver's rate over the window. */
export async function measure(b: PacketBench, cpus: number, opts: { warmupMs?: number; windowMs?: number } = {}): Promise<Measurement> {
  const { lvs, port } = b;
  const cfg = trafgenUdpConfig({ srcMac: lvs.client.mac, dstMac: lvs.director.clientMac, src: lvs.client.v4, dst: lvs.vip4, dport: port });
  const rx = new ReceiverCounter(lvs.servers[0]!.ns, lvs.servers[0]!.ifname);
  const offered = (): number => {
    const s = lvs.client.ns.linkStats(lvs.client.ifname);
    return s.txPackets + s.txDropped;
  };
  const tg = startTrafgen(lvs.client.ns, lvs.client.ifname, cfg, cpus);
  try {
    await sleep(opts.warmupMs ?? 1000);
    if (!tg.proc.running) throw new Error(`trafgen exited: ${tg.proc.stderr || tg.proc.stdout}`);
    const t0 = process.hrtime.bigint();
    const r0 = rx.read();
    const o0 = offered();
    await sleep(opts.windowMs ?? 3000);
    const r1 = rx.read();
    const o1 = offered();
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return { pps: (r1 - r0) / secs, offeredPps: (o1 - o0) / secs, seconds: secs };
  } finally {
    await tg.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The raw forwarding loop on our frame I/O

/** This thread's CPU time (utime + stime from /proc, in clock ticks of 10 ms). */
function threadCpuMs(): number {
  const f = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

// Frames per send(): the tx path is fastest with moderate batches (sweep: 16-64 beat 1 and 1024).
const FORWARD_CHUNK = Number(process.env.FORWARD_CHUNK) || 64;

export interface ForwardLoopOptions {
  netns: string;
  inIf: string;
  outIf: string;
  /** Next hop MAC on the out side. */
  dstMac: string;
}

export interface ForwardLoopResult {
  frames: number;
  /** CPU time of the loop's thread (user + system, softirq work it triggered included), ms. */
  cpuMs: number;
  rxDrops: number;
  rxFreezes: number;
  txDropped: number;
}

/**
 * Receives on inIf, rewrites both MACs in place and forwards every IPv4 frame out of outIf.
 * Busy mode returns only once the stop flag is set (a worker); onReady runs once the ports are open.
 */
export function rawForwardLoop(o: ForwardLoopOptions, mode: 'busy' | 'event', onReady?: () => void): { stop(): ForwardLoopResult } {
  const inPort = openFramePort({ ifname: o.inIf, netns: o.netns, tx: false });
  const outPort = openFramePort({ ifname: o.outIf, netns: o.netns, rx: false, txFrameCount: 4096 });
  const hdr = Buffer.alloc(12);
  Buffer.from(o.dstMac.replaceAll(':', ''), 'hex').copy(hdr, 0);
  outPort.mac.copy(hdr, 6);
  let frames = 0;
  const cpu0 = threadCpuMs();
  const onBatch = (): void => {
    const rx = inPort.rx;
    const buf = rx.buffer;
    const idx = outPort.forwardIndex;
    let k = 0;
    for (let i = 0; i < rx.count; i++) {
      const off = rx.offsets[i]!;
      if (buf[off + 12] !== 0x08 || buf[off + 13] !== 0x00) continue;
      buf.set(hdr, off);
      idx[k++] = i;
      // forwardIndex holds one tx ring's worth: a bigger batch goes out in chunks.
      if (k === FORWARD_CHUNK) {
        frames += outPort.forward(inPort, k);
        k = 0;
      }
    }
    if (k > 0) frames += outPort.forward(inPort, k);
  };
  onReady?.();
  if (mode === 'event') inPort.start(onBatch);
  else {
    // Busy mode owns the thread until another thread sets the stop flag.
    receiveLoop(inPort, onBatch, stopRequested);
  }
  return {
    stop: () => {
      const rx = inPort.stats();
      const tx = outPort.stats();
      inPort.close();
      outPort.close();
      return { frames, cpuMs: threadCpuMs() - cpu0, rxDrops: rx.kernelDrops, rxFreezes: rx.kernelFreezes, txDropped: tx.txDropped };
    },
  };
}

// A worker's busy loop checks this flag (set by the main thread through shared memory).
let stopFlag: Int32Array | undefined;
function stopRequested(): boolean {
  return stopFlag !== undefined && Atomics.load(stopFlag, 0) === 1;
}

/** Runs rawForwardLoop('busy') in a worker thread until stop() (flag in shared memory). */
function startBusyWorker(o: ForwardLoopOptions): { ready: Promise<void>; stop(): Promise<ForwardLoopResult> } {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  // Workers do not inherit tsx's loader: register it, then load this file in the worker.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const w = new Worker(boot, { eval: true, workerData: { forward: o, flag } });
  let result: ForwardLoopResult = { frames: 0, cpuMs: 0, rxDrops: 0, rxFreezes: 0, txDropped: 0 };
  const ready = new Promise<void>((resolve, reject) => {
    w.on('message', (m: { ready?: boolean } & Partial<ForwardLoopResult>) => {
      if (m.ready) resolve();
      if (m.frames !== undefined) result = m as ForwardLoopResult;
    });
    w.once('error', reject);
  });
  return {
    ready,
    stop: async () => {
      Atomics.store(flag, 0, 1);
      await new Promise((r) => w.once('exit', r));
      return result;
    },
  };
}

if (!isMainThread && workerData?.forward) {
  stopFlag = workerData.flag as Int32Array;
  // The loop blocks this thread until the flag is set; "ready" goes out once the ports are open.
  const loop = rawForwardLoop(workerData.forward as ForwardLoopOptions, 'busy', () => parentPort!.postMessage({ ready: true }));
  parentPort!.postMessage(loop.stop());
}

// ---------------------------------------------------------------------------------------------
// Main

const fmt = (n: number): string => `${(n / 1000).toFixed(0)}k`;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) || dflt : dflt;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Case {
  name: string;
  run(): Promise<Measurement & { loop?: ForwardLoopResult }>;
}

async function main(): Promise<void> {
  const why = netnsSkipReason();
  if (why) {
    console.log(`packet baseline skipped: ${why}`);
    return;
  }
  ensureTools();
  const windowMs = arg('--seconds', 3) * 1000;
  const runs = arg('--runs', 3);
  const fio = frameIoAvailable();
  if (!fio.ok) console.log(`raw frame forwarding skipped: ${fio.reason}`);

  const kernel = setupPacketBench('pktbase');
  const raw = fio.ok ? setupPacketBench('pktraw') : undefined;
  try {
    installKernelDnat(kernel);
    const cases: Case[] = [
      { name: 'kernel nft DNAT forwarding, 1 core', run: () => measure(kernel, 1, { windowMs }) },
      { name: 'kernel nft DNAT forwarding, 2 cores', run: () => measure(kernel, 2, { windowMs }) },
    ];
    if (raw) {
      const d = raw.lvs.director;
      d.ns.sysctl('net.ipv4.ip_forward', 0);
      installDirectorIngressDrop(raw);
      const o: ForwardLoopOptions = { netns: d.ns.name, inIf: d.clientIf, outIf: d.serverIf, dstMac: raw.lvs.servers[0]!.mac };
      // trafgen (one process) pins itself to CPU 0; the loop is left to the scheduler (pinning it
      // to CPU 1 only hurts when anything else runs there).
      cases.push(
        {
          name: 'raw frame forwarding on frame I/O, busy worker',
          run: async () => {
            const worker = startBusyWorker(o);
            await worker.ready;
            const m = await measure(raw, 1, { windowMs });
            return { ...m, loop: await worker.stop() };
          },
        },
        {
          name: 'raw frame forwarding on frame I/O, event loop',
          run: async () => {
            const loop = rawForwardLoop(o, 'event');
            const m = await measure(raw, 1, { windowMs });
            return { ...m, loop: loop.stop() };
          },
        },
      );
    }
    // Interleaved runs, median reported: this machine's two cores are shared and noisy.
    const results = cases.map(() => [] as Array<Measurement & { loop?: ForwardLoopResult }>);
    for (let r = 0; r < runs; r++) {
      for (let c = 0; c < cases.length; c++) results[c]!.push(await cases[c]!.run());
    }
    console.log(`64-byte UDP frames/s at the receiver: median and best of ${runs} interleaved runs of ${windowMs / 1000} s (all in brackets)`);
    cases.forEach((c, i) => {
      const rs = results[i]!;
      const pps = rs.map((m) => m.pps);
      const line = `${c.name.padEnd(48)} ${fmt(median(pps)).padStart(6)} pps  best ${fmt(Math.max(...pps))}  [${pps.map(fmt).join(' ')}]  offered ${fmt(median(rs.map((m) => m.offeredPps)))}`;
      const loops = rs.flatMap((m) => (m.loop ? [m.loop] : []));
      const perFrame = loops.map((l) => (l.frames ? (l.cpuMs * 1000) / l.frames : 0));
      const drops = loops.length
        ? `\n${''.padEnd(48)} loop thread CPU per frame ${median(perFrame).toFixed(2)} µs [${perFrame.map((x) => x.toFixed(2)).join(' ')}]` +
          `, ring drops ${loops.map((l) => l.rxDrops).join('/')}, tx drops ${loops.map((l) => l.txDropped).join('/')}`
        : '';
      console.log(line + drops);
    });
  } finally {
    await kernel.destroy();
    await raw?.destroy();
  }
}

if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
