// Pinned sources (Director.pinSource), the core's part of health checks via: virtual: a flow
// from a pinned source becomes a connection to its real server, without scheduling or
// persistence, and only while that real server is in the service it reaches.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpAddr } from '../../src/core/addr.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../src/core/constants.js';
import { VERDICT_ACCEPT, VERDICT_UNREACH } from '../../src/core/director.js';
import { TCP_ACK, TCP_SYN } from '../../src/core/proto/tcp.js';
import { applyRules, Client, makeDirector } from '../helpers/director.js';

const VIP = '198.18.0.1:80';
const svcKey = { af: 4 as const, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0 };
const PROBE = IpAddr.parse('198.18.255.7');
const three = `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -g -w 1\n-a -t ${VIP} -r 198.19.0.4:80 -g -w 1`;

test('a pinned source always reaches its real server; other clients are scheduled as before', () => {
  const plain = makeDirector();
  applyRules(plain.d, three);
  const expected = [0, 1, 2, 3, 4, 5].map((k) => new Client(plain.d, `198.18.5.${k + 1}:40000`, VIP).open());

  const { d } = makeDirector();
  applyRules(d, three);
  const unpin = d.pinSource(4, IPPROTO_TCP, PROBE, { addr: IpAddr.parse('198.19.0.3'), port: 80 });
  const seen: (string | null)[] = [];
  for (let k = 0; k < 6; k++) {
    const probe = new Client(d, `198.18.255.7:${41000 + k}`, VIP);
    assert.equal(probe.open(), '198.19.0.3:80', 'the probe goes to its server');
    seen.push(new Client(d, `198.18.5.${k + 1}:40000`, VIP).open());
  }
  assert.deepEqual(seen, expected, 'the scheduler never saw the probes');
  const info = d.serviceInfo(svcKey);
  assert.equal(info.stats.conns, 12, 'probe connections count as any client');
  const pinned = info.dests.find((x) => x.addr === '198.19.0.3')!;
  assert.equal(pinned.activeConns + pinned.inactConns, 6 + 2);

  unpin();
  unpin();
  const after = new Set<string | null>();
  for (let k = 0; k < 3; k++) after.add(new Client(d, `198.18.255.7:${42000 + k}`, VIP).open());
  assert.equal(after.size, 3, 'unpinned: scheduled again');
});

test('persistence is skipped: no template, and the client network keeps its own server', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 300 -M 255.255.255.0\n-a -t ${VIP} -r 198.19.0.2:80 -g -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -g -w 1`);
  const client = new Client(d, '198.18.255.100:40000', VIP).open();
  const other = client === '198.19.0.2:80' ? '198.19.0.3' : '198.19.0.2';
  d.pinSource(4, IPPROTO_TCP, PROBE, { addr: IpAddr.parse(other), port: 80 });
  assert.equal(new Client(d, '198.18.255.7:41000', VIP).open(), `${other}:80`);
  assert.equal(new Client(d, '198.18.255.101:40000', VIP).open(), client, 'the network template still holds');
  const templates = d.connInfos().filter((x) => x.state === 'NONE' || x.state === 'ASSURED');
  assert.deepEqual(
    templates.map((x) => x.caddr),
    ['198.18.255.0'],
    'one template, the clients',
  );
});

test('quiescent: still pinned; deleted or in another service: ICMP unreachable; back: pinned again', () => {
  const { d } = makeDirector();
  applyRules(d, `${three}\n-A -t 198.18.0.9:80 -s rr\n-a -t 198.18.0.9:80 -r 198.19.0.2:80 -g -w 1`);
  const dest = { af: 4 as const, addr: '198.19.0.4', port: 80, connFlags: 3, weight: 1, uThreshold: 0, lThreshold: 0 };
  d.pinSource(4, IPPROTO_TCP, PROBE, { addr: IpAddr.parse('198.19.0.4'), port: 80 });
  d.editDest(svcKey, { ...dest, weight: 0 });
  assert.equal(new Client(d, '198.18.255.7:41000', VIP).open(), '198.19.0.4:80', 'weight 0 does not stop a check');
  d.delDest(svcKey, dest);
  const before = d.drops.noDest;
  assert.equal(new Client(d, '198.18.255.7:41001', VIP).in(TCP_SYN), VERDICT_UNREACH);
  assert.equal(d.drops.noDest, before + 1);
  assert.equal(new Client(d, '198.18.255.7:41002', '198.18.0.9:80').in(TCP_SYN), VERDICT_UNREACH, 'another service has no such server');
  assert.equal(new Client(d, '198.18.255.7:41003', VIP).in(TCP_ACK), VERDICT_ACCEPT, 'a segment without a connection is no new flow');
  d.addDest(svcKey, dest);
  assert.equal(new Client(d, '198.18.255.7:41004', VIP).open(), '198.19.0.4:80');
});

test('pins are per protocol and family', () => {
  const { d } = makeDirector();
  applyRules(d, `${three}\n-A -u ${VIP} -s rr\n-a -u ${VIP} -r 198.19.0.2:80 -g -w 1\n-a -u ${VIP} -r 198.19.0.3:80 -g -w 1`);
  const v6 = { af: 6 as const, protocol: IPPROTO_TCP, addr: '2001:2::1', port: 80, fwmark: 0 };
  d.addService({ ...v6, schedName: 'rr', flags: 0, timeout: 0, netmask: 128 });
  for (const a of ['2001:2:0:2::2', '2001:2:0:2::3']) d.addDest(v6, { af: 6, addr: a, port: 80, connFlags: 3, weight: 1, uThreshold: 0, lThreshold: 0 });
  d.pinSource(4, IPPROTO_UDP, PROBE, { addr: IpAddr.parse('198.19.0.3'), port: 80 });
  const tcp = new Set<string | null>();
  for (let k = 0; k < 3; k++) tcp.add(new Client(d, `198.18.255.7:${41000 + k}`, VIP).open());
  assert.equal(tcp.size, 3, 'TCP from the source is not pinned');
  for (let k = 0; k < 3; k++) {
    const u = new Client(d, `198.18.255.7:${42000 + k}`, VIP, IPPROTO_UDP);
    assert.ok(u.in(0) >= 0);
    assert.equal(u.server(), '198.19.0.3:80');
  }
  d.pinSource(6, IPPROTO_TCP, IpAddr.parse('2001:2:0:ffff::7'), { addr: IpAddr.parse('2001:2:0:2::3'), port: 80 });
  for (let k = 0; k < 3; k++) assert.equal(new Client(d, `[2001:2:0:ffff::7]:${43000 + k}`, '[2001:2::1]:80').open(), '2001:2:0:2::3:80');
  const near = new Set<string | null>();
  for (let k = 0; k < 2; k++) near.add(new Client(d, `[2001:2:0:ffff::8]:${44000 + k}`, '[2001:2::1]:80').open());
  assert.equal(near.size, 2, 'another source of the same /96 is scheduled');
});
