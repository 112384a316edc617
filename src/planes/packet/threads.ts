// "threads" mode of the packet plane, the owner's side. Worker threads (worker.ts) own the
// receive and transmit rings (one fanout group per interface spreads the flows over them) and
// do all the frame work; this thread keeps the one Director and answers their questions.
//
// Each worker has a request/response area in shared memory: it writes a chunk of request
// records, raises its state to READY, rings the common doorbell and sleeps on its state word;
// this thread, woken by Atomics.waitAsync on the doorbell, answers every READY worker (the
// CoreServer fills the response records in place) and wakes it with ANSWERED. So every packet
// is decided by the same connection table, in the order the chunks arrive, and no scheduler or
// connection state is ever copied into a worker.

import { Worker } from 'node:worker_threads';
import { type AddrWords, PacketInfo, parseFrame } from '../../codec/index.js';
import { COUNTER_SLOTS } from './counters.js';
import { CHUNK, type CoreLink } from './engine.js';
import type { NextHops } from './neighbours.js';
import type { PlaneLogger } from './plane.js';
import { REQ_STRIDE, RESP_STRIDE } from './records.js';
import type { ServedData } from './served.js';

/** Worker state word values (ctrl[0]). */
export const IDLE = 0;
export const READY = 1;
export const ANSWERED = 2;
/** ctrl[1]: request count; ctrl[2]: stop flag; ctrl[3]: drain flag. */
export const CTRL_WORDS = 4;

export interface WorkerShared {
  ctrl: SharedArrayBuffer;
  reqs: SharedArrayBuffer;
  resps: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  nhMeta: SharedArrayBuffer;
  nhMacs: SharedArrayBuffer;
}

export interface WorkerConfig {
  id: number;
  interfaces: string[];
  netns?: string;
  fanoutGroupBase: number;
  headroom: number;
  rxBlockTimeoutMs: number;
  pmtuDisc: boolean;
  ports: { mac: number[]; mtu: number; addr4: AddrWords | null; addr6: AddrWords | null }[];
  served: ServedData;
  shared: WorkerShared;
}

export interface ThreadedOptions {
  interfaces: string[];
  netns?: string;
  threads: number;
  core: CoreLink;
  nexthops: NextHops;
  ports: { mac: Uint8Array; mtu: number; addr4: AddrWords | null; addr6: AddrWords | null }[];
  headroom: number;
  rxBlockTimeoutMs: number;
  pmtuDisc: boolean;
  /** ARP/ND frames the workers received, for the neighbour cache (parsed here again). */
  control: (port: number, buf: Uint8Array, off: number, len: number, info: PacketInfo) => void;
  logger?: PlaneLogger;
}

interface Slot {
  worker: Worker;
  ctrl: Int32Array;
  reqs: Int32Array;
  resps: Int32Array;
  counters: Float64Array;
  exited: Promise<void>;
}

export class ThreadedEngines {
  private readonly slots: Slot[] = [];
  private readonly doorbell = new Int32Array(new SharedArrayBuffer(4));
  private stopped = false;
  private readonly info = new PacketInfo();
  private served: ServedData | null = null;

  constructor(private readonly o: ThreadedOptions) {}

  get count(): number {
    return this.slots.length;
  }

  /** Starts the workers; resolves once every one has its rings open (rejects if one cannot). */
  start(timeoutMs = 20_000): Promise<void> {
    const nh = this.o.nexthops.buffers();
    const ready: Promise<void>[] = [];
    // One fanout group per interface, numbered from a per-process base (groups are per namespace).
    const base = ((process.pid * 7) & 0x7fff) + 1;
    for (let id = 0; id < Math.max(1, this.o.threads); id++) {
      const shared: WorkerShared = {
        ctrl: new SharedArrayBuffer(CTRL_WORDS * 4),
        reqs: new SharedArrayBuffer(CHUNK * REQ_STRIDE * 4),
        resps: new SharedArrayBuffer(CHUNK * RESP_STRIDE * 4),
        counters: new SharedArrayBuffer(COUNTER_SLOTS * 8),
        doorbell: this.doorbell.buffer as SharedArrayBuffer,
        nhMeta: nh.meta as SharedArrayBuffer,
        nhMacs: nh.macs as SharedArrayBuffer,
      };
      const cfg: WorkerConfig = {
        id,
        interfaces: this.o.interfaces,
        ...(this.o.netns ? { netns: this.o.netns } : {}),
        fanoutGroupBase: base,
        headroom: this.o.headroom,
        rxBlockTimeoutMs: this.o.rxBlockTimeoutMs,
        pmtuDisc: this.o.pmtuDisc,
        ports: this.o.ports.map((p) => ({ mac: [...p.mac], mtu: p.mtu, addr4: p.addr4, addr6: p.addr6 })),
        served: this.served ?? { vips: [], marks: [], natServers: [], tunnels: [], ownedVips: [], local: [] },
        shared,
      };
      const worker = startWorker(cfg);
      const slot: Slot = {
        worker,
        ctrl: new Int32Array(shared.ctrl),
        reqs: new Int32Array(shared.reqs),
        resps: new Int32Array(shared.resps),
        counters: new Float64Array(shared.counters),
        exited: new Promise((r) => worker.once('exit', () => r())),
      };
      ready.push(
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`packet worker ${id} did not start within ${timeoutMs} ms`)), timeoutMs);
          worker.on('message', (m: { ready?: boolean; control?: { port: number; frame: Uint8Array } }) => {
            if (m.ready) {
              clearTimeout(t);
              resolve();
            }
            if (m.control) this.controlFrame(m.control.port, m.control.frame);
          });
          worker.once('error', (e) => {
            clearTimeout(t);
            reject(e);
          });
          worker.once('exit', () => {
            clearTimeout(t);
            reject(new Error(`packet worker ${id} exited`));
          });
        }),
      );
      worker.on('error', (e) => this.o.logger?.error({ err: e.message, worker: id }, 'packet worker failed'));
      this.slots.push(slot);
    }
    void this.serve();
    return Promise.all(ready).then(() => undefined);
  }

  private controlFrame(port: number, frame: Uint8Array): void {
    if (parseFrame(frame, 0, frame.length, this.info) < 0) return;
    this.o.control(port, frame, 0, frame.length, this.info);
  }

  /** The owner's loop: answer every worker that is waiting, then sleep on the doorbell. */
  private async serve(): Promise<void> {
    let seen = Atomics.load(this.doorbell, 0);
    while (!this.stopped) {
      for (const s of this.slots) {
        if (Atomics.load(s.ctrl, 0) !== READY) continue;
        const n = Atomics.load(s.ctrl, 1);
        try {
          this.o.core.resolve(s.reqs, s.resps, Math.min(n, CHUNK));
        } catch (e) {
          this.o.logger?.error({ err: (e as Error).message }, 'packet core failed');
        }
        Atomics.store(s.ctrl, 0, ANSWERED);
        Atomics.notify(s.ctrl, 0);
      }
      const w = waitAsync(this.doorbell, 0, seen, 200);
      if (w.async) await w.value;
      seen = Atomics.load(this.doorbell, 0);
    }
  }

  setServed(d: ServedData): void {
    this.served = d;
    for (const s of this.slots) s.worker.postMessage({ served: d });
  }

  stopAccepting(): void {
    // The core refuses new connections itself (CoreServer.stopAccepting); nothing to tell workers.
  }

  refreshStats(): void {
    for (const s of this.slots) s.worker.postMessage({ stats: true });
  }

  counterSets(): Float64Array[] {
    return this.slots.map((s) => s.counters);
  }

  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.slots) {
      Atomics.store(s.ctrl, 2, 1);
      // A worker waiting for an answer gets one (it sees the stop flag and leaves).
      Atomics.store(s.ctrl, 0, ANSWERED);
      Atomics.notify(s.ctrl, 0);
    }
    Atomics.add(this.doorbell, 0, 1);
    Atomics.notify(this.doorbell, 0);
    for (const s of this.slots) {
      const t = setTimeout(() => void s.worker.terminate(), 2000);
      t.unref();
      void s.exited.then(() => clearTimeout(t));
    }
  }

  /** Resolves when every worker has exited. */
  async closed(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.exited));
  }
}

// Atomics.waitAsync is in Node 20 (V8) but not in the ES2023 library typings.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string };
}).waitAsync.bind(Atomics);

/** Starts worker.ts (through tsx when running from sources). */
function startWorker(cfg: WorkerConfig): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const file = new URL('./worker.ts', here).href;
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(file)}); })`;
    return new Worker(boot, { eval: true, workerData: cfg });
  }
  return new Worker(new URL('./worker.js', here), { workerData: cfg });
}
