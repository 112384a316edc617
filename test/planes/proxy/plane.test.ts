// The plane's bookkeeping: which services it carries, which it cannot (and why), mixed
// forwarding methods, listener failures, the loop guard, draining, and the onConnFree hub.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';
import { FWD_DROUTE, FWD_PROXY, FWD_TUNNEL, SVC_F_PERSISTENT } from '../../../src/core/constants.js';
import { loadNativeRelay } from '../../../src/planes/proxy/index.js';
import { connectId, expectRefused, fetchId, Harness, randomPort, randomVip, type RelayKind, udpAsk, until } from './helpers.js';

const relays: RelayKind[] = loadNativeRelay() ? ['js', 'native'] : ['js'];

describe('proxy plane: coverage and reasons', { timeout: 30_000 }, () => {
  it('lists what it cannot carry, and why; carries mixed services with a note', async () => {
    const h = new Harness('js');
    try {
      const vip = randomVip();
      const p = randomPort();
      // carried
      const tcp = h.service('tcp', vip, p);
      h.dest(tcp, '127.0.0.1', 1);
      const udp = h.service('udp', vip, p);
      h.dest(udp, '127.0.0.1', 1, { connFlags: FWD_PROXY });
      const empty = h.service('tcp', vip, p + 1);
      // mixed: carried, with a note
      const mixed = h.service('tcp', vip, p + 2);
      h.dest(mixed, '127.0.0.1', 1);
      h.dest(mixed, '127.0.0.2', 1, { connFlags: FWD_DROUTE });
      // not carried
      const dr = h.service('tcp', vip, p + 3);
      h.dest(dr, '127.0.0.1', 1, { connFlags: FWD_DROUTE });
      h.dest(dr, '127.0.0.2', 1, { connFlags: FWD_TUNNEL });
      h.director.addService({ af: 4, protocol: 6, addr: '0.0.0.0', port: 0, fwmark: 7, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
      h.director.addDest({ af: 4, protocol: 6, addr: '0.0.0.0', port: 0, fwmark: 7 }, { af: 4, addr: '127.0.0.1', port: 80, connFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0 });
      const sctp = h.service('tcp', vip, p + 4, {});
      h.director.delService(sctp);
      const sctpKey = { af: 4 as const, protocol: 132, addr: vip, port: p + 4, fwmark: 0 };
      h.director.addService({ ...sctpKey, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
      h.dest(sctpKey, '127.0.0.1', 1);
      const port0 = h.service('tcp', vip, 0, { flags: SVC_F_PERSISTENT, timeout: 60 });
      h.dest(port0, '127.0.0.1', 1);
      const remote = h.service('tcp', '192.0.2.1', p);
      h.dest(remote, '127.0.0.1', 1);
      await h.start();
      assert.deepEqual(h.plane.served().sort(), [`tcp:${vip}:${p}`, `tcp:${vip}:${p + 1}`, `tcp:${vip}:${p + 2}`, `udp:${vip}:${p}`].sort());
      const reasons = Object.fromEntries(h.plane.unservedServices().map((u) => [u.key, u.reason]));
      assert.deepEqual(Object.keys(reasons).sort(), [`tcp:${vip}:${p + 3}`, 'fwm4:7', `sctp:${vip}:${p + 4}`, `tcp:${vip}:0`, `tcp:192.0.2.1:${p}`].sort());
      assert.match(reasons[`tcp:${vip}:${p + 3}`]!, /only tunneling\/direct routing real servers: the packet plane/);
      assert.match(reasons['fwm4:7']!, /firewall-mark/);
      assert.match(reasons[`sctp:${vip}:${p + 4}`]!, /SCTP/);
      assert.match(reasons[`tcp:${vip}:0`]!, /port 0/);
      assert.equal(reasons[`tcp:192.0.2.1:${p}`], 'address not local to this host');
      // DataPlane.unserved(): only what it would carry by method
      assert.ok(!h.plane.unserved().some((u) => u.key === `tcp:${vip}:${p + 3}`));
      assert.deepEqual(
        h.plane.degradedServices().map((d) => d.key),
        [`tcp:${vip}:${p + 2}`],
      );
      assert.match(h.plane.degradedServices()[0]!.reason, /mixed forwarding methods/);
      void empty;
      // a change that makes the DR service carriable opens its listener
      h.dest(dr, '127.0.0.3', 1);
      await h.synced();
      assert.ok(h.plane.served().includes(`tcp:${vip}:${p + 3}`));
      assert.equal(h.plane.status().relay, 'js');
    } finally {
      await h.close();
    }
  });

  it('reports a busy address and port, and takes it once free (retry)', async () => {
    const vip = randomVip();
    const p = randomPort();
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(p, vip, () => r()));
    const h = new Harness('js', { retryMs: 100 });
    try {
      const key = h.service('tcp', vip, p);
      const s = await h.idServer('S');
      h.dest(key, '127.0.0.1', s.port);
      await h.start();
      assert.deepEqual(h.plane.unservedServices(), [{ key: `tcp:${vip}:${p}`, reason: 'address and port already in use by another program' }]);
      await new Promise<void>((r) => squatter.close(() => r()));
      await until(() => h.plane.served().length === 1, 3000, 'listener retried');
      assert.equal(await fetchId(h, vip, p), 'S');
    } finally {
      await h.close();
    }
  });

  it('keeps a hook installed before it, and lets others join', async () => {
    const h = new Harness('js');
    try {
      const freed: number[] = [];
      h.director.onConnFree = (i) => freed.push(i);
      const also: number[] = [];
      const off = h.director.addConnFreeListener((i) => also.push(i));
      const vip = randomVip();
      const p = randomPort();
      const key = h.service('udp', vip, p);
      const u = await h.udpServer('U');
      h.dest(key, '127.0.0.1', u.port);
      h.director.setTimeouts({ tcp: 0, tcpfin: 0, udp: 1 });
      await h.start();
      const c = h.track(dgram.createSocket('udp4'));
      assert.equal(await udpAsk(c, vip, p, 'x'), 'U:x');
      assert.equal(h.plane.udp.size, 1);
      await until(() => freed.length === 1, 4000, 'entry freed');
      assert.deepEqual(also, freed);
      assert.equal(h.plane.udp.size, 0, 'the plane was told too');
      off();
    } finally {
      await h.close();
    }
  });
});

for (const relay of relays) {
  describe(`proxy plane: lifecycle (${relay} relay)`, { timeout: 30_000 }, () => {
    it('refuses a real server that is the virtual service itself (no loop)', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const p = randomPort();
        const key = h.service('tcp', vip, p);
        h.dest(key, vip, p);
        await h.start();
        const r = await expectRefused(vip, p);
        assert.ok(r === 'ECONNRESET' || r === 'closed', r);
        assert.ok((h.plane.tcp.status().connections as number) === 0);
      } finally {
        await h.close();
      }
    });

    it('stopAccepting drains: established TCP and UDP flows continue, new ones are not taken', async () => {
      const h = new Harness(relay);
      try {
        const vip = randomVip();
        const p = randomPort();
        const key = h.service('tcp', vip, p);
        const s = await h.idServer('S');
        h.dest(key, '127.0.0.1', s.port);
        const ukey = h.service('udp', vip, p);
        const u = await h.udpServer('U');
        h.dest(ukey, '127.0.0.1', u.port);
        await h.start();
        const held = await connectId(h, vip, p);
        const c1 = h.track(dgram.createSocket('udp4'));
        assert.equal(await udpAsk(c1, vip, p, 'a'), 'U:a');
        await h.plane.stopAccepting();
        assert.equal(await expectRefused(vip, p), 'ECONNREFUSED');
        held.sock.write('echo');
        await until(() => held.rest() === 'echo', 3000, 'held connection');
        assert.equal(await udpAsk(c1, vip, p, 'b'), 'U:b');
        const c2 = h.track(dgram.createSocket('udp4'));
        await assert.rejects(udpAsk(c2, vip, p, 'c', 300), /timed out/);
        assert.ok(h.plane.unservedServices().some((x) => /draining/.test(x.reason)));
        // a table change while draining does not reopen the TCP listener
        h.service('tcp', vip, p + 1);
        await h.synced();
        assert.equal(await expectRefused(vip, p), 'ECONNREFUSED');
      } finally {
        await h.close();
      }
    });

    it('close() resets what is left and frees the ports', async () => {
      const h = new Harness(relay);
      const vip = randomVip();
      const p = randomPort();
      const key = h.service('tcp', vip, p);
      const s = await h.idServer('S');
      h.dest(key, '127.0.0.1', s.port);
      await h.start();
      const held = await connectId(h, vip, p);
      await h.plane.close();
      const r = await held.closed;
      assert.equal(r.error?.code, 'ECONNRESET');
      const again = net.createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(p, vip, () => resolve());
      });
      await new Promise<void>((r2) => again.close(() => r2()));
      await h.close();
    });
  });
}
