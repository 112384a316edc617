// A real vsd (the daemon class, its control socket, its extensions) in the test process, on a
// manual clock so that the 2-second estimator runs exactly when a test says; traffic is played
// through the director as a data plane would (test/helpers/director.ts), or by a real plane.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/control/config.js';
import { Vsd, type VsdExtension, type VsdOptions } from '../../src/control/daemon.js';
import { ManualClock } from '../../src/core/clock.js';
import { TCP_ACK, TCP_SYN } from '../../src/core/proto/tcp.js';
import { Client } from '../helpers/director.js';

export interface RunningVsd {
  vsd: Vsd;
  clock: ManualClock;
  dir: string;
  socketPath: string;
  /** Let the estimator run `periods` times (2 s each). */
  estimate(periods?: number): void;
  stop(): Promise<void>;
}

export async function startVsd(opts: { config: string; extensions: VsdExtension[]; planes?: VsdOptions['planes']; dir?: string }): Promise<RunningVsd> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tsvs-obs-'));
  const clock = new ManualClock(10_000_000);
  const socketPath = join(dir, 'vsd.sock');
  const vsd = new Vsd({
    logger: pino({ level: process.env.TSVS_TEST_LOG ?? 'silent' }),
    config: parseConfig(opts.config, join(dir, 'vsd.yaml')),
    socketPath,
    clock: clock.now,
    extensions: opts.extensions,
    ...(opts.planes ? { planes: opts.planes } : {}),
  });
  try {
    await vsd.start();
  } catch (e) {
    await vsd.stop().catch(() => {});
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    vsd,
    clock,
    dir,
    socketPath,
    estimate(periods = 1) {
      for (let i = 0; i < periods; i++) {
        clock.advance(2000);
        vsd.director.advance();
      }
    },
    async stop() {
      await vsd.stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A table with an IPv4 TCP service, an IPv6 UDP service and a fwmark service. */
export const TABLE_YAML = `
services:
  - protocol: tcp
    address: 10.0.0.1:80
    scheduler: wlc
    realServers:
      - { address: 10.0.1.1:8080, weight: 3 }
      - { address: 10.0.1.2:8080, weight: 1 }
  - protocol: udp
    address: "[2001:db8::53]:53"
    scheduler: rr
    realServers:
      - { address: "[2001:db8::1:53]:5353", weight: 2 }
  - fwmark: 7
    scheduler: rr
    persistent: 60
    realServers:
      - { address: 10.0.2.1:0, method: dr, weight: 4 }
`;

/**
 * TCP connections to 10.0.0.1:80: `open` established ones (left open), `closed` ones closed by
 * the client (TIME_WAIT, inactive); returns the clients.
 */
export function playTcp(r: RunningVsd, open: number, closed: number, firstPort = 40000): Client[] {
  const out: Client[] = [];
  for (let i = 0; i < open + closed; i++) {
    const c = new Client(r.vsd.director, `192.0.2.10:${firstPort + i}`, '10.0.0.1:80');
    c.open();
    if (i >= open) c.close();
    out.push(c);
  }
  return out;
}

/** More packets on already open connections (data in, ACKs out). */
export function pump(clients: Client[], rounds: number): void {
  for (let k = 0; k < rounds; k++) {
    for (const c of clients) {
      c.in(TCP_ACK, 1000);
      c.out(TCP_ACK, 52);
    }
  }
}

export { TCP_SYN };
