// TCP through the proxy plane, end to end on loopback, with both relays: scheduling decisions
// made by the core (wrr, lc, sh, persistence, thresholds, weight 0, deleted real servers),
// the byte relay (half-close, resets, bulk with backpressure), and what the core learns back
// (states, counters, idle timeouts).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { SVC_F_PERSISTENT } from '../../../src/core/constants.js';
import { loadNativeRelay } from '../../../src/planes/proxy/index.js';
import { collect, connectId, expectRefused, fetchId, Harness, randomPort, randomVip, type RelayKind, sleep, until, withTimeout } from './helpers.js';

const relays: RelayKind[] = ['js', 'native', 'native-shared'];
const nativeMissing = loadNativeRelay() ? false : 'native relay addon not built (node src/planes/proxy/native/build.mjs)';

function count(ids: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
}

function destOf(h: Harness, key: Parameters<Harness['director']['serviceInfo']>[0], port: number) {
  return h.director.serviceInfo(key).dests.find((d) => d.port === port)!;
}

function stateOf(h: Harness, cport: number): string | undefined {
  return h.director.connInfos().find((c) => c.cport === cport && c.protocol === 6)?.state;
}

for (const relay of relays) {
  describe(`proxy plane TCP (${relay} relay)`, { skip: relay !== 'js' && nativeMissing, timeout: 60_000 }, () => {
    it('spreads 60 connections 3:2:1 with wrr, and tells the core how each one lived', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'wrr' });
        const a = await h.idServer('A', '127.0.0.2');
        const b = await h.idServer('B', '127.0.0.3');
        const c = await h.idServer('C', '127.0.0.4');
        h.dest(key, a.host, a.port, { weight: 3 });
        h.dest(key, b.host, b.port, { weight: 2 });
        h.dest(key, c.host, c.port, { weight: 1 });
        await h.start();
        assert.equal(h.plane.relayKind, relay === 'js' ? 'js' : 'native');
        assert.deepEqual(h.plane.served(), [`tcp:${vip}:${port}`]);
        const ids: string[] = [];
        for (let i = 0; i < 60; i++) ids.push(await fetchId(h, vip, port));
        assert.deepEqual(count(ids), { A: 30, B: 20, C: 10 });
        // every connection ended with both FINs: TIME_WAIT, inactive, bytes counted
        await until(() => h.director.connInfos().filter((x) => x.state === 'TIME_WAIT').length === 60, 3000, 'TIME_WAIT entries');
        const svc = h.director.serviceInfo(key);
        assert.equal(svc.stats.conns, 60);
        assert.equal(svc.stats.outbytes, 60 * 2); // the greeting line
        assert.deepEqual(
          svc.dests.map((d) => [d.activeConns, d.inactConns]),
          [
            [0, 10],
            [0, 20],
            [0, 30],
          ],
        );
      } finally {
        await h.close();
      }
    });

    it('lc sends new connections to the real server with the fewest held ones', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'lc' });
        const a = await h.idServer('A');
        const b = await h.idServer('B');
        h.dest(key, '127.0.0.1', a.port);
        h.dest(key, '127.0.0.1', b.port); // list head: B
        await h.start();
        const held = [];
        for (let i = 0; i < 4; i++) held.push(await connectId(h, vip, port));
        assert.deepEqual(
          held.map((c) => c.id),
          ['B', 'A', 'B', 'A'],
        );
        assert.equal(destOf(h, key, a.port).activeConns, 2);
        assert.equal(destOf(h, key, b.port).activeConns, 2);
        // B's two end: they become inactive, and B is now the least loaded
        for (const c of held.filter((x) => x.id === 'B')) c.sock.end();
        await until(() => destOf(h, key, b.port).activeConns === 0, 3000, 'B inactive');
        assert.equal(await fetchId(h, vip, port), 'B');
        const c5 = await connectId(h, vip, port);
        assert.equal(c5.id, 'B');
      } finally {
        await h.close();
      }
    });

    it('sh keeps each client address on one real server', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'sh' });
        for (const n of ['A', 'B', 'C']) {
          const s = await h.idServer(n);
          h.dest(key, '127.0.0.1', s.port);
        }
        await h.start();
        const sources = ['127.0.9.1', '127.0.9.2', '127.0.9.3', '127.0.9.4', '127.0.9.5'];
        const seen = new Set<string>();
        for (const src of sources) {
          const ids = [];
          for (let i = 0; i < 5; i++) ids.push(await fetchId(h, vip, port, { localAddress: src }));
          assert.equal(new Set(ids).size, 1, `${src} went to ${ids}`);
          seen.add(ids[0]!);
        }
        assert.ok(seen.size >= 2, 'the hash spreads different sources');
      } finally {
        await h.close();
      }
    });

    it('persistence with a netmask keeps a client network on one real server', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'rr', flags: SVC_F_PERSISTENT, timeout: 60, netmask: 0xffffff00 });
        for (const n of ['A', 'B', 'C']) {
          const s = await h.idServer(n);
          h.dest(key, '127.0.0.1', s.port);
        }
        await h.start();
        const net1 = [];
        for (const src of ['127.0.7.1', '127.0.7.2', '127.0.7.3', '127.0.7.1']) net1.push(await fetchId(h, vip, port, { localAddress: src }));
        assert.equal(new Set(net1).size, 1, `127.0.7.0/24 went to ${net1}`);
        const other = await fetchId(h, vip, port, { localAddress: '127.0.8.1' });
        assert.notEqual(other, net1[0], 'another /24 gets its own (rr: the next) real server');
        assert.equal(await fetchId(h, vip, port, { localAddress: '127.0.8.200' }), other);
        const templates = h.director.connInfos().filter((c) => c.state === 'ASSURED' || c.state === 'NONE');
        assert.equal(templates.length, 2);
      } finally {
        await h.close();
      }
    });

    it('weight 0 drains a real server: its connections continue, new ones go elsewhere', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'rr' });
        const a = await h.idServer('A');
        const b = await h.idServer('B');
        h.dest(key, '127.0.0.1', a.port);
        h.dest(key, '127.0.0.1', b.port);
        await h.start();
        let held = await connectId(h, vip, port);
        if (held.id !== 'A') held = await connectId(h, vip, port);
        assert.equal(held.id, 'A');
        h.director.editDest(key, { af: 4, addr: '127.0.0.1', port: a.port, connFlags: 0, weight: 0, uThreshold: 0, lThreshold: 0 });
        await h.synced();
        const ids = [];
        for (let i = 0; i < 6; i++) ids.push(await fetchId(h, vip, port));
        assert.deepEqual(count(ids), { B: 6 });
        held.sock.write('still here');
        await until(() => held.rest() === 'still here', 3000, 'echo on the drained server');
        held.sock.end();
        await withTimeout(held.closed, 3000, 'close');
      } finally {
        await h.close();
      }
    });

    it('-x/-y thresholds: an overloaded real server is skipped until its threshold is lifted', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        // fo: the heaviest real server that is not overloaded
        const key = h.service('tcp', vip, port, { schedName: 'fo' });
        const a = await h.idServer('A');
        const b = await h.idServer('B');
        h.dest(key, '127.0.0.1', b.port, { weight: 1 });
        h.dest(key, '127.0.0.1', a.port, { weight: 5, uThreshold: 2 });
        await h.start();
        const c1 = await connectId(h, vip, port);
        const c2 = await connectId(h, vip, port);
        assert.deepEqual([c1.id, c2.id], ['A', 'A']);
        assert.equal(await fetchId(h, vip, port), 'B');
        assert.equal(await fetchId(h, vip, port), 'B');
        h.director.editDest(key, { af: 4, addr: '127.0.0.1', port: a.port, connFlags: 0, weight: 5, uThreshold: 0, lThreshold: 0 });
        assert.equal(await fetchId(h, vip, port), 'A');
      } finally {
        await h.close();
      }
    });

    it('deleting a real server: its clients are no longer heard (kernel default), new ones go elsewhere', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'rr' });
        const a = await h.idServer('A');
        const b = await h.idServer('B');
        h.dest(key, '127.0.0.1', a.port);
        h.dest(key, '127.0.0.1', b.port);
        await h.start();
        let held = await connectId(h, vip, port);
        if (held.id !== 'A') held = await connectId(h, vip, port);
        assert.equal(held.id, 'A');
        h.director.delDest(key, { af: 4, addr: '127.0.0.1', port: a.port });
        await h.synced();
        held.sock.write('lost');
        assert.equal(await collect(held.sock, 300), '', 'client bytes are dropped');
        // the real server's bytes still reach the client (the kernel's OUT path does not check)
        for (const s of a.conns) s.write('push');
        await until(() => held.rest() === 'push', 3000, 'server push');
        assert.equal(held.sock.destroyed, false);
        assert.equal(await fetchId(h, vip, port), 'B');
        assert.equal(await fetchId(h, vip, port), 'B');
        // the server comes back (revived from the trash): the held connection flows again
        h.dest(key, '127.0.0.1', a.port);
        await h.synced();
        await until(() => held.rest() === 'pushlost', 3000, 'bytes flow again');
      } finally {
        await h.close();
      }
    });

    it('deleting a real server with expire_nodest_conn resets its connections', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'rr' });
        const a = await h.idServer('A');
        const b = await h.idServer('B');
        h.dest(key, '127.0.0.1', a.port);
        h.dest(key, '127.0.0.1', b.port);
        h.director.setSysctl('expire_nodest_conn', 1);
        await h.start();
        let held = await connectId(h, vip, port);
        if (held.id !== 'A') held = await connectId(h, vip, port);
        assert.equal(held.id, 'A');
        const serverSide = [...a.conns][0]!;
        const serverClosed = new Promise<void>((r) => serverSide.once('close', () => r()));
        h.director.delDest(key, { af: 4, addr: '127.0.0.1', port: a.port });
        const r = await withTimeout(held.closed, 3000, 'reset');
        assert.equal(r.error?.code, 'ECONNRESET');
        await withTimeout(serverClosed, 3000, 'server side closed');
        assert.equal(await fetchId(h, vip, port), 'B');
      } finally {
        await h.close();
      }
    });

    it('half-close: the client FIN reaches the server, which still answers; states follow', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port, { schedName: 'rr' });
        const s = await h.idServer('H', '127.0.0.1', {
          onConn: (sock) => {
            let n = 0;
            sock.on('data', (d) => {
              n += d.length;
            });
            sock.on('end', () => setTimeout(() => sock.end(`got:${n}`), 300));
          },
        });
        h.dest(key, '127.0.0.1', s.port);
        await h.start();
        const c = await connectId(h, vip, port, { allowHalfOpen: true });
        const cport = c.sock.localPort!;
        c.sock.end('hello world');
        await until(() => stateOf(h, cport) === 'CLOSE_WAIT', 3000, 'CLOSE_WAIT after the client FIN');
        await withTimeout(c.ended, 3000, 'server FIN');
        assert.equal(c.rest(), 'got:11');
        await withTimeout(c.closed, 3000, 'closed');
        await until(() => stateOf(h, cport) === 'TIME_WAIT', 3000, 'TIME_WAIT after both FINs');
        const st = h.director.serviceInfo(key).stats;
        assert.equal(st.inbytes, 11);
        assert.equal(st.outbytes, 2 + 6);
      } finally {
        await h.close();
      }
    });

    it('propagates a real server reset to the client', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port);
        const s = await h.idServer('R');
        h.dest(key, '127.0.0.1', s.port);
        await h.start();
        const c = await connectId(h, vip, port);
        const cport = c.sock.localPort!;
        await until(() => s.conns.size === 1, 3000, 'server side');
        for (const x of s.conns) x.resetAndDestroy();
        const r = await withTimeout(c.closed, 3000, 'client reset');
        assert.equal(r.error?.code, 'ECONNRESET');
        await until(() => stateOf(h, cport) === 'CLOSE', 3000, 'CLOSE after the server RST');
      } finally {
        await h.close();
      }
    });

    it('propagates a client reset to the real server', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port);
        const s = await h.idServer('R');
        h.dest(key, '127.0.0.1', s.port);
        await h.start();
        const c = await connectId(h, vip, port);
        const cport = c.sock.localPort!;
        await until(() => s.conns.size === 1, 3000, 'server side');
        await until(() => stateOf(h, cport) === 'ESTABLISHED', 3000, 'ESTABLISHED');
        const ss = [...s.conns][0]!;
        const err = new Promise<string>((r) => {
          ss.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
          ss.on('close', () => r('closed'));
        });
        c.sock.resetAndDestroy();
        assert.equal(await withTimeout(err, 3000, 'server reset'), 'ECONNRESET');
        await until(() => stateOf(h, cport) === 'CLOSE', 3000, 'CLOSE after the client RST');
      } finally {
        await h.close();
      }
    });

    it('connect failure resets the client and the entry ends as a refused SYN would', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port);
        const dead = await closedPort();
        h.dest(key, '127.0.0.1', dead);
        await h.start();
        const r = await expectRefused(vip, port);
        assert.ok(r === 'ECONNRESET' || r === 'closed', r);
        await until(() => h.director.connInfos().some((c) => c.state === 'CLOSE' && c.dport === dead), 3000, 'CLOSE entry');
        assert.equal(h.director.serviceInfo(key).dests[0]!.activeConns, 0);
      } finally {
        await h.close();
      }
    });

    it('refuses clients of a service without real servers', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        h.service('tcp', vip, port);
        await h.start();
        assert.deepEqual(h.plane.served(), [`tcp:${vip}:${port}`]);
        const r = await expectRefused(vip, port);
        assert.ok(r === 'ECONNRESET' || r === 'closed', r);
        assert.equal(h.director.conns.count, 0);
      } finally {
        await h.close();
      }
    });

    it('an idle connection is reset when its state times out (--set tcp)', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port);
        const s = await h.idServer('I');
        h.dest(key, '127.0.0.1', s.port);
        h.director.setTimeouts({ tcp: 1, tcpfin: 0, udp: 0 });
        await h.start();
        const c = await connectId(h, vip, port);
        const t0 = Date.now();
        const r = await withTimeout(c.closed, 6000, 'idle reset');
        assert.equal(r.error?.code, 'ECONNRESET');
        assert.ok(Date.now() - t0 >= 900, 'not before the timeout');
        assert.equal(h.director.conns.count, 0);
      } finally {
        await h.close();
      }
    });

    it('moves 8 MB each way intact, with backpressure, and counts every byte', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const port = randomPort();
        const key = h.service('tcp', vip, port);
        const s = await h.idServer('E');
        h.dest(key, '127.0.0.1', s.port);
        await h.start();
        const c = await connectId(h, vip, port, { allowHalfOpen: true });
        const data = randomBytes(8 << 20);
        const back = createHash('sha256');
        let n = 0;
        c.sock.on('data', (d: Buffer) => {
          back.update(d);
          n += d.length;
        });
        c.sock.end(data);
        await withTimeout(c.closed, 20_000, 'echo of 8 MB');
        assert.equal(n, data.length);
        assert.equal(back.digest('hex'), createHash('sha256').update(data).digest('hex'));
        await until(() => h.director.serviceInfo(key).stats.outbytes === data.length + 2, 3000, 'out bytes counted');
        assert.equal(h.director.serviceInfo(key).stats.inbytes, data.length);
      } finally {
        await h.close();
      }
    });

    it('IPv6: ::1 virtual service to ::1 real servers', async () => {
      const h = new Harness(relay);
      try {
        const port = randomPort();
        const key = h.service('tcp', '::1', port, { schedName: 'rr' });
        const a = await h.idServer('A6', '::1');
        const b = await h.idServer('B6', '::1');
        h.dest(key, '::1', a.port);
        h.dest(key, '::1', b.port);
        await h.start();
        assert.deepEqual(h.plane.served(), [`tcp:[::1]:${port}`]);
        const ids = [];
        for (let i = 0; i < 4; i++) ids.push(await fetchId(h, '::1', port));
        assert.deepEqual(count(ids), { A6: 2, B6: 2 });
        assert.ok(h.director.connInfos().every((c) => c.af === 6 && c.caddr === '::1'));
      } finally {
        await h.close();
      }
    });

    it('stops listening on a deleted service; its connections stay open (client bytes dropped as the kernel does, or relayed with keepNodestConns)', async () => {
      for (const keep of [false, true]) {
        const h = new Harness(relay, { keepNodestConns: keep });
        try {
          const vip = randomVip();
          const port = randomPort();
          const key = h.service('tcp', vip, port);
          const s = await h.idServer('D');
          h.dest(key, '127.0.0.1', s.port);
          await h.start();
          const c = await connectId(h, vip, port);
          h.director.delService(key);
          await h.synced();
          assert.deepEqual(h.plane.served(), []);
          assert.equal(await expectRefused(vip, port), 'ECONNREFUSED');
          c.sock.write('after');
          if (keep) await until(() => c.rest() === 'after', 3000, 'echo after the service went');
          else assert.equal(await collect(c.sock, 300), '');
          assert.equal(c.sock.destroyed, false);
          // the service comes back (its real server revived from the trash)
          const key2 = h.service('tcp', vip, port);
          h.dest(key2, '127.0.0.1', s.port);
          await h.synced();
          assert.equal(await fetchId(h, vip, port), 'D');
          await until(() => c.rest() === 'after', 3000, 'bytes flow again');
        } finally {
          await h.close();
        }
      }
    });
  });
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  await sleep(10);
  return p;
}
