// A minimal tsvs process for the proxy benchmark (until vsd is the launcher): a Director with
// TCP virtual services over the given real servers (masquerading), the proxy plane, and the
// director's timers. Prints "ready <relay>" once listening; exits cleanly on SIGTERM/SIGINT.
//
//   node --import tsx bench/lib/tsvs-proxy-server.ts \
//        --map 127.0.0.1:18182=127.0.0.1:18080[,127.0.0.1:18081] [--map ...] \
//        [--relay auto|native|js] [--threads 2] [--sched rr] [--splice true|false] [--buf 65536]
//        [--pipe bytes]

import { parseArgs } from 'node:util';
import '../../src/core/schedulers/index.js';
import { monotonicClock } from '../../src/core/clock.js';
import { FWD_MASQ } from '../../src/core/constants.js';
import { Director } from '../../src/core/director.js';
import { ProxyPlane } from '../../src/planes/proxy/index.js';

function hostPort(s: string): { host: string; port: number; af: 4 | 6 } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  if (!m) throw new Error(`bad address ${s}`);
  const host = m[1]!;
  return { host, port: Number(m[2]), af: host.includes(':') ? 6 : 4 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      map: { type: 'string', multiple: true },
      relay: { type: 'string', default: 'auto' },
      threads: { type: 'string' },
      sched: { type: 'string', default: 'rr' },
      splice: { type: 'string' },
      buf: { type: 'string' },
      pipe: { type: 'string' },
    },
  });
  if (!values.map?.length) throw new Error('at least one --map vip:port=dest:port[,dest:port] is required');
  const director = new Director({ now: monotonicClock, connCapacity: 1 << 16, expireBudget: 20_000 });
  for (const m of values.map) {
    const [v, ds] = m.split('=');
    const vip = hostPort(v ?? '');
    const key = { af: vip.af, protocol: 6, addr: vip.host, port: vip.port, fwmark: 0 };
    director.addService({ ...key, schedName: values.sched!, flags: 0, timeout: 0, netmask: vip.af === 4 ? 0xffffffff : 128 });
    for (const d of (ds ?? '').split(',')) {
      const rs = hostPort(d);
      director.addDest(key, { af: rs.af, addr: rs.host, port: rs.port, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0 });
    }
  }
  const native: { threads?: number; splice?: boolean; bufSize?: number; pipeSize?: number } = {};
  if (values.threads) native.threads = Number(values.threads);
  if (values.splice) native.splice = values.splice !== 'false';
  if (values.buf) native.bufSize = Number(values.buf);
  if (values.pipe) native.pipeSize = Number(values.pipe);
  const plane = new ProxyPlane(director, { relay: values.relay as 'auto' | 'native' | 'js', native });
  await plane.start();
  if (plane.unservedServices().length) throw new Error(`not listening: ${JSON.stringify(plane.unservedServices())}`);
  const timer = setInterval(() => director.advance(), 50);
  const stop = async () => {
    clearInterval(timer);
    await plane.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.stdout.write(`ready ${plane.relayKind}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
