// UDP through the proxy plane: one upstream socket per client address and port, kept for the
// core's UDP timeout; replies from the virtual address; one-packet scheduling; PROXY v2 DGRAM.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { IpAddr } from '../../../src/core/addr.js';
import { SVC_F_ONEPACKET } from '../../../src/core/constants.js';
import { proxyHeaderV2 } from '../../../src/planes/proxy/index.js';
import { Harness, randomPort, randomVip, sleep, udpAsk, until, withTimeout } from './helpers.js';

function client(h: Harness, v6 = false): Promise<dgram.Socket> {
  const s = h.track(dgram.createSocket(v6 ? 'udp6' : 'udp4'));
  return new Promise((r) => s.bind(0, v6 ? '::1' : '127.0.0.1', () => r(s)));
}

describe('proxy plane UDP', { timeout: 60_000 }, () => {
  it('keeps a client socket on one real server, answers from the virtual address, counts', async () => {
    const h = new Harness('js');
    try {
      const vip = randomVip();
      const port = randomPort();
      const key = h.service('udp', vip, port, { schedName: 'rr' });
      const a = await h.udpServer('A');
      const b = await h.udpServer('B');
      h.dest(key, '127.0.0.1', a.port);
      h.dest(key, '127.0.0.1', b.port);
      await h.start();
      assert.deepEqual(h.plane.served(), [`udp:${vip}:${port}`]);
      const c1 = await client(h);
      const first = (await udpAsk(c1, vip, port, 'x0')).split(':')[0]!;
      for (let i = 1; i < 5; i++) assert.equal(await udpAsk(c1, vip, port, `x${i}`), `${first}:x${i}`);
      const c2 = await client(h);
      const second = (await udpAsk(c2, vip, port, 'y')).split(':')[0]!;
      assert.notEqual(second, first, 'rr: the next client socket gets the other real server');
      // the answer comes from VIP:port
      const from = await withTimeout(
        new Promise<dgram.RemoteInfo>((r) => {
          c1.once('message', (_m, ri) => r(ri));
          c1.send('z', port, vip);
        }),
        2000,
        'reply',
      );
      assert.equal(from.address, vip);
      assert.equal(from.port, port);
      const st = h.director.serviceInfo(key).stats;
      assert.equal(st.conns, 2);
      assert.equal(st.inpkts, 7);
      await until(() => h.director.serviceInfo(key).stats.outpkts === 7, 2000, 'out packets');
      assert.equal(h.director.serviceInfo(key).stats.inbytes, 2 * 5 + 1 + 1);
      assert.ok(h.director.connInfos().every((c) => c.state === 'UDP'));
    } finally {
      await h.close();
    }
  });

  it('the entry (and its upstream socket) expires after the UDP timeout (--set), then the client is scheduled anew', async () => {
    const h = new Harness('js');
    try {
      const vip = randomVip();
      const port = randomPort();
      const key = h.service('udp', vip, port, { schedName: 'rr' });
      const a = await h.udpServer('A');
      const b = await h.udpServer('B');
      h.dest(key, '127.0.0.1', a.port);
      h.dest(key, '127.0.0.1', b.port);
      h.director.setTimeouts({ tcp: 0, tcpfin: 0, udp: 1 });
      await h.start();
      const c1 = await client(h);
      const first = (await udpAsk(c1, vip, port, 'a')).split(':')[0]!;
      // traffic every 300 ms keeps it alive past the timeout
      for (let i = 0; i < 5; i++) {
        await sleep(300);
        assert.equal(await udpAsk(c1, vip, port, 'k'), `${first}:k`);
      }
      assert.equal(h.plane.udp.size, 1);
      await until(() => h.director.conns.count === 0, 4000, 'UDP entry expiry');
      assert.equal(h.plane.udp.size, 0, 'upstream socket closed with the entry');
      const again = (await udpAsk(c1, vip, port, 'b')).split(':')[0]!;
      assert.notEqual(again, first, 'scheduled again (rr: the other real server)');
      assert.equal(h.director.serviceInfo(key).stats.conns, 2);
    } finally {
      await h.close();
    }
  });

  it('one-packet scheduling (-o) schedules every datagram', async () => {
    const h = new Harness('js');
    try {
      const vip = randomVip();
      const port = randomPort();
      const key = h.service('udp', vip, port, { schedName: 'rr', flags: SVC_F_ONEPACKET });
      const a = await h.udpServer('A');
      const b = await h.udpServer('B');
      h.dest(key, '127.0.0.1', a.port);
      h.dest(key, '127.0.0.1', b.port);
      await h.start();
      const c1 = await client(h);
      const ids = [];
      for (let i = 0; i < 6; i++) ids.push((await udpAsk(c1, vip, port, `${i}`)).split(':')[0]);
      assert.deepEqual(ids, ['B', 'A', 'B', 'A', 'B', 'A']);
      assert.equal(h.director.serviceInfo(key).stats.conns, 6);
      await sleep(50);
      h.director.advance();
      assert.equal(h.director.conns.count, 0, 'one-packet entries do not stay');
    } finally {
      await h.close();
    }
  });

  it('drops datagrams of a service without real servers', async () => {
    const h = new Harness('js');
    try {
      const vip = randomVip();
      const port = randomPort();
      h.service('udp', vip, port);
      await h.start();
      const c1 = await client(h);
      await assert.rejects(udpAsk(c1, vip, port, 'q', 300), /timed out/);
      assert.equal(h.plane.udp.status().dropped, 1);
    } finally {
      await h.close();
    }
  });

  it('PROXY protocol v2 (DGRAM) on every datagram, IPv4 and IPv6', async () => {
    for (const v6 of [false, true]) {
      const h = new Harness('js');
      try {
        const vip = v6 ? '::1' : randomVip();
        const host = v6 ? '::1' : '127.0.0.1';
        const port = randomPort();
        const key = h.service('udp', vip, port, { proxyProtocol: 2 });
        const got: Buffer[] = [];
        const s = await h.udpServer('P', host, (m) => got.push(m));
        h.dest(key, host, s.port);
        await h.start();
        const c1 = await client(h, v6);
        await udpAsk(c1, vip, port, 'one');
        await udpAsk(c1, vip, port, 'two');
        const hdr = proxyHeaderV2('dgram', IpAddr.parse(host), c1.address().port, IpAddr.parse(vip), port);
        assert.equal(got.length, 2);
        assert.deepEqual(got[0], Buffer.concat([hdr, Buffer.from('one')]));
        assert.deepEqual(got[1], Buffer.concat([hdr, Buffer.from('two')]));
        assert.equal(hdr[13], v6 ? 0x22 : 0x12);
      } finally {
        await h.close();
      }
    }
  });

  it('IPv6 service on ::1', async () => {
    const h = new Harness('js');
    try {
      const port = randomPort();
      const key = h.service('udp', '::1', port, { schedName: 'rr' });
      const a = await h.udpServer('A6', '::1');
      h.dest(key, '::1', a.port);
      await h.start();
      const c1 = await client(h, true);
      assert.equal(await udpAsk(c1, '::1', port, 'hi'), 'A6:hi');
      assert.equal(h.director.connInfos()[0]!.caddr, '::1');
    } finally {
      await h.close();
    }
  });
});
