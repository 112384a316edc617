// Connection-table benchmark: one million live entries through the director's real IN path,
// their memory, lookup rate, and the longest pause while all of them expire at once.
// Run directly: node --expose-gc --import tsx bench/conntable.ts

import { performance } from 'node:perf_hooks';
import { ManualClock } from '../src/core/clock.js';
import { FWD_MASQ, IPPROTO_UDP } from '../src/core/constants.js';
import { Director } from '../src/core/director.js';
import { Flow } from '../src/core/flow.js';
import '../src/core/schedulers/index.js';

export interface ConnTableFigures {
  entries: number;
  heapBytes: number;
  arrayBufferBytes: number;
  bytesPerEntry: number;
  insertsPerSecond: number;
  lookupsPerSecond: number;
  expireTotalMs: number;
  expireMaxPauseMs: number;
  expireCalls: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export function benchConnTable(n = 1_000_000): ConnTableFigures {
  gc();
  const base = process.memoryUsage();
  const clock = new ManualClock(0);
  // The daemon's settings: a bounded amount of expiry work per timer run.
  const d = new Director({ now: clock.now, connCapacity: 1 << 12, expireBudget: 4096 });
  d.addService({ af: 4, protocol: IPPROTO_UDP, addr: '198.18.0.1', port: 53, fwmark: 0, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
  for (let k = 0; k < 8; k++) {
    d.addDest({ af: 4, protocol: IPPROTO_UDP, addr: '198.18.0.1', port: 53, fwmark: 0 }, { af: 4, addr: `198.19.0.${k + 2}`, port: 53, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0 });
  }
  const flow = new Flow();
  flow.protocol = IPPROTO_UDP;
  flow.family = 4;
  flow.d0 = 0xc6120001;
  flow.dport = 53;
  // Clients: 198.18.0.0/15-style addresses spread over ports.
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    flow.s0 = (0xc6130000 + (i >>> 6)) >>> 0;
    flow.sport = 1024 + (i & 63);
    if (d.inPacket(flow, 0, 100) < 0) throw new Error('schedule failed');
  }
  const t1 = performance.now();
  gc();
  const mem = process.memoryUsage();
  const heapBytes = mem.heapUsed - base.heapUsed;
  // The table's own typed arrays, summed exactly: the process-wide arrayBuffers figure also
  // counts buffers the table outgrew that V8 has not released yet.
  const arrayBufferBytes = d.conns.byteSize;
  // Lookups: every existing entry found again (inPacket on an existing flow = lookup + counters
  // + state + timer; the pure lookup is measured separately on the table).
  const c = d.conns;
  const t2 = performance.now();
  let found = 0;
  for (let i = 0; i < n; i++) {
    const s0 = (0xc6130000 + (i >>> 6)) >>> 0;
    if (c.lookupIn(4, IPPROTO_UDP, s0, 0, 0, 0, 1024 + (i & 63), 0xc6120001, 0, 0, 0, 53) >= 0) found++;
  }
  const t3 = performance.now();
  if (found !== n) throw new Error(`lookup found ${found} of ${n}`);
  // Expiry: all entries share one deadline (300 s); the daemon calls advance() every 50 ms.
  clock.set(300_001);
  let calls = 0;
  let maxPause = 0;
  const e0 = performance.now();
  for (;;) {
    const s = performance.now();
    const done = d.advance();
    const p = performance.now() - s;
    if (p > maxPause) maxPause = p;
    calls++;
    if (done) break;
  }
  const e1 = performance.now();
  if (c.count !== 0) throw new Error(`${c.count} entries left after expiry`);
  return {
    entries: n,
    heapBytes,
    arrayBufferBytes,
    bytesPerEntry: Math.round((heapBytes + arrayBufferBytes) / n),
    insertsPerSecond: Math.round(n / ((t1 - t0) / 1000)),
    lookupsPerSecond: Math.round(n / ((t3 - t2) / 1000)),
    expireTotalMs: Math.round(e1 - e0),
    expireMaxPauseMs: Number(maxPause.toFixed(2)),
    expireCalls: calls,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const f = benchConnTable();
  console.log(f);
}
