// The namespace topology builder itself (test/helpers/netns.ts): presets reach what they should,
// addresses outside the test ranges are refused, and destroy leaves nothing behind.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { createLvsTopology, isTestAddress, netnsSkipReason, Topology, udpSend, udpSink } from '../../helpers/netns.js';

test('test address ranges: 198.18.0.0/15 and 2001:2::/48 only', () => {
  for (const a of ['198.18.0.1', '198.19.255.254/24', '2001:2::1', '2001:2:0:ffff::1/64', '2001:0002:0000:1::5']) assert.ok(isTestAddress(a), a);
  for (const a of ['198.20.0.1', '10.0.0.1', '127.0.0.1', '192.168.1.1', '2001:2:1::1', '2001:db8::1', '::1', 'fe80::1', 'nonsense']) {
    assert.ok(!isTestAddress(a), a);
  }
});

const nsNames = (): string[] => (existsSync('/run/netns') ? readdirSync('/run/netns') : []);

describe('netns topologies (root)', { skip: netnsSkipReason(), timeout: 60_000 }, () => {
  test('refuses addresses and routes outside the test ranges', async () => {
    const t = Topology.create('guard');
    try {
      const a = t.namespace('a');
      const b = t.namespace('b');
      t.veth(a, 'x0', b, 'y0');
      assert.throws(() => t.addr(a, 'x0', '10.1.2.3/24'), /refused/);
      assert.throws(() => t.addr(a, 'x0', '2001:db8::1/64'), /refused/);
      assert.throws(() => t.route(a, '0.0.0.0/0', '198.18.0.1'), /refused/);
      assert.throws(() => t.route(a, 'default', '192.168.0.1'), /refused/);
      await assert.rejects(udpSend(a, '127.0.0.1', 9, 1), /refused/);
    } finally {
      await t.destroy();
    }
    assert.ok(!nsNames().some((n) => n.startsWith(t.id)), 'namespaces left behind');
  });

  test('two arms: the client reaches every real server through the director, and back', async () => {
    const lvs = createLvsTopology('twoarm', { arms: 'two', servers: 3 });
    try {
      assert.equal(lvs.director.clientIf, 'eth0');
      assert.equal(lvs.director.serverIf, 'eth1');
      for (const rs of lvs.servers) {
        const sink = await udpSink(rs.ns, '::', 7000);
        await udpSend(lvs.client.ns, rs.v4, 7000, 2);
        await udpSend(lvs.client.ns, rs.v6, 7000, 2);
        await sink.waitFor(4, 5000);
        assert.deepEqual(new Set(sink.received().map((g) => g.from)), new Set([`::ffff:${lvs.client.v4}`, lvs.client.v6]));
        await sink.stop();
      }
      const back = await udpSink(lvs.client.ns, lvs.client.v4, 7001);
      await udpSend(lvs.servers[2]!.ns, lvs.client.v4, 7001, 1);
      await back.waitFor(1, 5000);
      await back.stop();
    } finally {
      await lvs.destroy();
    }
  });

  test('one arm with DR real servers: one LAN, the VIP on their lo, ARP quiet for it', async () => {
    const lvs = createLvsTopology('onearm', { arms: 'one', servers: 3, dr: true });
    const ids = lvs.topo.namespaces.map((n) => n.name);
    try {
      assert.equal(lvs.director.clientIf, lvs.director.serverIf);
      assert.ok(lvs.switchNs);
      const rs = lvs.servers[1]!;
      assert.match(rs.ns.ip('-4', 'addr', 'show', 'dev', 'lo'), /198\.18\.0\.100\/32/);
      assert.equal(rs.ns.run('sysctl', ['-n', 'net.ipv4.conf.all.arp_ignore']).stdout.trim(), '1');
      assert.equal(rs.ns.run('sysctl', ['-n', 'net.ipv4.conf.all.arp_announce']).stdout.trim(), '2');
      const sink = await udpSink(rs.ns, '0.0.0.0', 7002);
      await udpSend(lvs.client.ns, rs.v4, 7002, 3);
      await sink.waitFor(3, 5000);
      await sink.stop();
      // Nobody answers ARP for the VIP: the client's neighbour entry never becomes valid.
      await udpSend(lvs.client.ns, lvs.vip4, 7002, 1);
      await new Promise((r) => setTimeout(r, 1500));
      const neigh = lvs.client.ns.ip('neigh', 'show', lvs.vip4);
      assert.ok(!/REACHABLE|STALE|DELAY/.test(neigh), neigh);
    } finally {
      await lvs.destroy();
    }
    assert.ok(!nsNames().some((n) => ids.includes(n)), 'namespaces left behind');
  });
});
