// Pieces of the packet plane that need neither root nor frames: routes (longest prefix, next
// hop, source address), the neighbour cache's states and timers, the served index, the counters.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PacketInfo, parseFrame } from '../../../src/codec/index.js';
import { IpAddr } from '../../../src/core/addr.js';
import { FWD_DROUTE, FWD_MASQ, IPPROTO_TCP } from '../../../src/core/constants.js';
import { Director } from '../../../src/core/director.js';
import '../../../src/core/schedulers/index.js';
import { DROP_NAMES, Drop, newCounters, summarize } from '../../../src/planes/packet/counters.js';
import { HostTools } from '../../../src/planes/packet/host-tools.js';
import { NEIGH_TIMING, NeighbourCache, NextHops, NH_FAILED, NH_INCOMPLETE, NH_VALID } from '../../../src/planes/packet/neighbours.js';
import { HostRoutes } from '../../../src/planes/packet/routes.js';
import { buildServedData, ServedIndex } from '../../../src/planes/packet/served.js';

const a = (t: string) => IpAddr.parse(t);

function routes(): HostRoutes {
  const r = new HostRoutes(new HostTools());
  r.load(
    [
      { ifindex: 2, ifname: 'eth0', mtu: 1500, address: '02:00:00:00:00:01', flags: ['UP'], addr_info: [{ family: 'inet', local: '198.18.1.1', prefixlen: 24 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }, { family: 'inet6', local: '2001:2:0:1::1', prefixlen: 64 }] },
      { ifindex: 3, ifname: 'eth1', mtu: 9000, address: '02:00:00:00:00:02', flags: ['UP'], addr_info: [{ family: 'inet', local: '198.18.2.1', prefixlen: 24 }] },
    ],
    [
      { dst: 'default', gateway: '198.18.1.254', dev: 'eth0' },
      { dst: '198.18.1.0/24', dev: 'eth0', prefsrc: '198.18.1.1' },
      { dst: '198.18.2.0/24', dev: 'eth1', prefsrc: '198.18.2.1' },
      { dst: '198.18.3.0/24', gateway: '198.18.2.9', dev: 'eth1', metrics: [{ mtu: 1400 }] },
      { type: 'unreachable', dst: '198.18.9.0/24' },
    ],
    [
      { dst: '2001:2:0:1::/64', dev: 'eth0' },
      { dst: 'default', gateway: '2001:2:0:1::fe', dev: 'eth0' },
    ],
  );
  return r;
}

test('routes: longest prefix, gateways, route MTU, unreachable, local addresses, source selection', () => {
  const r = routes();
  const v = (t: string) => {
    const x = a(t);
    return r.lookup(x.family, x.w0, x.w1, x.w2, x.w3);
  };
  assert.equal(v('198.18.2.7')!.dev, 'eth1');
  assert.equal(v('198.18.2.7')!.gateway, null);
  assert.equal(v('198.18.3.7')!.gateway!.toString(), '198.18.2.9');
  assert.equal(v('198.18.3.7')!.mtu, 1400);
  assert.equal(v('203.0.113.1')!.gateway!.toString(), '198.18.1.254', 'default route');
  assert.equal(v('198.18.9.1')!.type, 'unreachable');
  assert.equal(v('2001:2:0:1::5')!.gateway, null);
  assert.equal(v('2001:2:7::1')!.gateway!.toString(), '2001:2:0:1::fe');
  assert.ok(r.isLocalAddr(a('198.18.2.1')));
  assert.ok(!r.isLocalAddr(a('198.18.2.2')));
  assert.equal(r.sourceFor(4, 'eth1', v('198.18.2.7'))!.toString(), '198.18.2.1');
  assert.equal(r.sourceFor(6, 'eth0', null, a('2001:2:0:1::5'))!.toString(), '2001:2:0:1::1', 'global before link-local');
  assert.equal(r.sourceFor(6, 'eth0', null, a('fe80::9'))!.toString(), 'fe80::1', 'link-local for a link-local target');
  assert.ok(r.onLink('eth1', a('198.18.2.50')));
  assert.ok(!r.onLink('eth1', a('198.18.3.50')));
  const g = r.generation;
  assert.equal(r.load([], [], []), true);
  assert.equal(r.generation, g + 1);
});

test('neighbours: INCOMPLETE retries then FAILED; an answer makes it REACHABLE, then STALE, DELAY, PROBE', () => {
  let now = 0;
  const sent: Array<{ port: number; frame: Buffer }> = [];
  const nh = new NextHops(64);
  const changes: Array<[number, number]> = [];
  const cache = new NeighbourCache({
    nexthops: nh,
    ports: [{ index: 0, name: 'eth0', mac: Uint8Array.of(2, 0, 0, 0, 0, 1) }],
    now: () => now,
    send: (port, frame, len) => sent.push({ port, frame: Buffer.from(frame.subarray(0, len)) }),
    sourceFor: () => a('198.18.1.1'),
    onChange: (id, st) => changes.push([id, st]),
  });
  const t = a('198.18.1.20');
  const id = cache.idFor(0, 4, t.w0);
  assert.equal(nh.state(id), NH_INCOMPLETE);
  assert.equal(sent.length, 1, 'broadcast request');
  assert.equal(sent[0]!.frame.readUInt16BE(20), 1);
  for (let i = 0; i < NEIGH_TIMING.probes + 1; i++) {
    now += NEIGH_TIMING.retrans;
    cache.tick();
  }
  assert.equal(nh.state(id), NH_FAILED);
  assert.equal(sent.length, NEIGH_TIMING.probes, 'three requests in all');
  assert.deepEqual(changes.at(-1), [id, NH_FAILED]);
  // Used again after a while: resolving starts over, and an answer arrives.
  now += NEIGH_TIMING.failedRetry;
  cache.idFor(0, 4, t.w0);
  assert.equal(nh.state(id), NH_INCOMPLETE);
  cache.learn(0, t, Uint8Array.of(2, 0, 0, 0, 0, 0x20), 0, true, false);
  assert.equal(nh.state(id), NH_VALID);
  assert.equal(cache.get(id)!.state, 'reachable');
  assert.deepEqual([...nh.macs.subarray(nh.macOff(id), nh.macOff(id) + 6)], [2, 0, 0, 0, 0, 0x20]);
  now += NEIGH_TIMING.reachable;
  cache.tick();
  assert.equal(cache.get(id)!.state, 'stale');
  assert.equal(nh.state(id), NH_VALID, 'a stale entry is still used');
  cache.idFor(0, 4, t.w0);
  cache.tick();
  assert.equal(cache.get(id)!.state, 'delay');
  now += NEIGH_TIMING.delayFirstProbe;
  const before = sent.length;
  cache.tick();
  assert.equal(cache.get(id)!.state, 'probe');
  assert.equal(sent.length, before + 1);
  assert.deepEqual([...sent.at(-1)!.frame.subarray(0, 6)], [2, 0, 0, 0, 0, 0x20], 'probes are unicast');
});

test('neighbours: answers ARP for the addresses it is given, learns the asker, seeds from the kernel', () => {
  const sent: Buffer[] = [];
  const nh = new NextHops(16);
  const mac = Uint8Array.of(2, 0, 0, 0, 0, 1);
  const cache = new NeighbourCache({ nexthops: nh, ports: [{ index: 0, name: 'eth0', mac }], now: () => 0, send: (_p, f, l) => sent.push(Buffer.from(f.subarray(0, l))), sourceFor: () => null });
  assert.deepEqual(cache.setAnswered([a('198.18.1.100')]).map(String), ['198.18.1.100']);
  assert.deepEqual(cache.setAnswered([a('198.18.1.100')]), [], 'announced once');
  const req = Buffer.alloc(42);
  req.fill(0xff, 0, 6);
  req.set([2, 0, 0, 0, 0, 9], 6);
  req.writeUInt16BE(0x0806, 12);
  req.set([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 198, 18, 1, 9, 0, 0, 0, 0, 0, 0, 198, 18, 1, 100], 14);
  const info = new PacketInfo();
  assert.equal(parseFrame(req, 0, 42, info), 0);
  assert.equal(cache.handleArp(0, req, info), true);
  assert.equal(sent[0]!.readUInt16BE(20), 2);
  assert.equal(cache.entries().find((n) => n.addr.toString() === '198.18.1.9')?.state, 'stale');
  req.set([198, 18, 1, 50], 38);
  parseFrame(req, 0, 42, info);
  assert.equal(cache.handleArp(0, req, info), false, 'not ours');
  cache.seed([{ dst: '198.18.1.30', dev: 'eth0', lladdr: '02:00:00:00:00:30', state: ['PERMANENT'] }, { dst: '198.18.1.31', dev: 'eth0', state: ['FAILED'] }]);
  assert.equal(cache.entries().find((n) => n.addr.toString() === '198.18.1.30')?.state, 'permanent');
  assert.equal(cache.entries().some((n) => n.addr.toString() === '198.18.1.31'), false);
});

test('served index: address services, NAT real servers, ownership of unconfigured VIPs', () => {
  const d = new Director({ now: () => 0 });
  const key = { af: 4 as const, protocol: IPPROTO_TCP, addr: '198.18.1.100', port: 80, fwmark: 0 };
  d.addService({ ...key, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
  d.addDest(key, { af: 4, addr: '198.18.2.21', port: 8080, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0 });
  d.addDest(key, { af: 4, addr: '198.18.2.22', port: 80, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0 });
  const data = buildServedData(d.table.services(), [], [a('198.18.1.1')], (x) => x.toString() === '198.18.1.1');
  const idx = new ServedIndex(data);
  const vip = a('198.18.1.100').w0;
  assert.equal(idx.matchIn(4, IPPROTO_TCP, vip, 0, 0, 0, 80), 0);
  assert.equal(idx.matchIn(4, IPPROTO_TCP, vip, 0, 0, 0, 81), -1);
  assert.equal(idx.matchIn(4, 17, vip, 0, 0, 0, 80), -1);
  assert.ok(idx.ownsAddress(4, vip, 0, 0, 0));
  assert.ok(idx.matchNatServer(4, IPPROTO_TCP, a('198.18.2.21').w0, 0, 0, 0, 8080));
  assert.ok(!idx.matchNatServer(4, IPPROTO_TCP, a('198.18.2.22').w0, 0, 0, 0, 80), 'DR servers never reply through us');
  assert.ok(idx.isLocal(4, a('198.18.1.1').w0, 0, 0, 0));
});

test('counters: drops summed by name across engines; codec reasons and plane reasons both named', () => {
  const x = newCounters();
  const y = newCounters(true);
  x[1]++; // truncated
  y[Drop.NoDest] += 2;
  const s = summarize([x, y]);
  assert.deepEqual(s.drops, { truncated: 1, no_dest: 2 });
  assert.equal(new Set(DROP_NAMES).size, DROP_NAMES.length);
});
