// A packet-plane worker thread ("threads" mode): owns one fanout ring per interface, runs the
// frame engine on what it receives, and asks the owner thread (threads.ts) about each chunk of
// packets through its shared request/response area. Busy-polls its rings, sleeping in poll(2)
// when they are empty; messages from the owner (table changes, statistics) are read between
// batches with receiveMessageOnPort, since this thread's event loop never turns.

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { PacketInfo } from '../../codec/index.js';
import { type CoreLink, Engine, type EnginePort } from './engine.js';
import { openFramePort, waitAny } from './frame-io.js';
import { NextHops } from './neighbours.js';
import { ServedIndex } from './served.js';
import { A, RESP_STRIDE, Verdict } from './records.js';
import { ANSWERED, IDLE, READY, type WorkerConfig } from './threads.js';

const cfg = workerData as WorkerConfig;
const sh = cfg.shared;
const ctrl = new Int32Array(sh.ctrl);
const doorbell = new Int32Array(sh.doorbell);
const reqs = new Int32Array(sh.reqs);
const resps = new Int32Array(sh.resps);
const counters = new Float64Array(sh.counters);
const nexthops = new NextHops(sh.nhMeta.byteLength / 8, { meta: sh.nhMeta, macs: sh.nhMacs });

const stopping = (): boolean => Atomics.load(ctrl, 2) === 1;

/** Hands a chunk of requests to the owner and sleeps until it answered. */
const core: CoreLink = {
  resolve(_q: Int32Array, _r: Int32Array, n: number): void {
    Atomics.store(ctrl, 1, n);
    Atomics.store(ctrl, 0, READY);
    Atomics.add(doorbell, 0, 1);
    Atomics.notify(doorbell, 0);
    while (Atomics.load(ctrl, 0) === READY) {
      Atomics.wait(ctrl, 0, READY, 100);
      if (stopping()) break;
    }
    if (Atomics.load(ctrl, 0) !== ANSWERED) {
      // Stopped while waiting: no answer, every packet of the chunk is dropped.
      for (let j = 0; j < n; j++) resps[j * RESP_STRIDE + A.VERDICT] = Verdict.Drop;
    }
    Atomics.store(ctrl, 0, IDLE);
  },
};

const ports: EnginePort[] = cfg.interfaces.map((ifname, index) => {
  const port = openFramePort({
    ifname,
    ...(cfg.netns ? { netns: cfg.netns } : {}),
    headroom: cfg.headroom,
    rxBlockTimeoutMs: cfg.rxBlockTimeoutMs,
    txFrameCount: 4096,
    fanout: { group: (cfg.fanoutGroupBase + index) & 0xffff, mode: 'hash' },
  });
  const p = cfg.ports[index]!;
  return { index, port, mac: Uint8Array.from(p.mac), mtu: p.mtu, headroom: cfg.headroom, addr4: p.addr4, addr6: p.addr6 };
});

const ringPorts = ports.map((p) => p.port);

const control = (port: number, buf: Uint8Array, off: number, len: number, _info: PacketInfo): void => {
  // ARP/ND are rare: a copy to the owner, whose neighbour cache learns and answers.
  parentPort?.postMessage({ control: { port, frame: Uint8Array.from(buf.subarray(off, off + len)) } });
};

const engine = new Engine({ ports, core, nexthops, counters, control, pmtuDisc: () => cfg.pmtuDisc, records: { reqs, resps } });
engine.served = new ServedIndex(cfg.served);

function readMessages(): void {
  if (!parentPort) return;
  for (let m = receiveMessageOnPort(parentPort); m; m = receiveMessageOnPort(parentPort)) {
    const msg = m.message as { served?: ServedIndex['data']; stats?: boolean };
    if (msg.served) engine.served = new ServedIndex(msg.served);
    if (msg.stats) engine.refreshRingStats();
  }
}

let lastMessages = 0;
parentPort?.postMessage({ ready: true });
try {
  while (!stopping()) {
    let got = 0;
    for (const p of ports) {
      const n = p.port.poll();
      if (n > 0) {
        got += n;
        engine.processBatch(p, p.port.rx);
      }
    }
    engine.servicePending();
    const now = Date.now();
    if (got === 0 || now - lastMessages > 20) {
      readMessages();
      lastMessages = now;
    }
    // Idle: sleep in poll(2) on every ring at once.
    if (got === 0) waitAny(ringPorts, 50);
  }
} finally {
  for (const p of ports) p.port.close();
}
