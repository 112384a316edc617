// The director's IPVS rules, each against the kernel behaviour the spec describes
// (ipvs-kernel.md §2, §3, §5, §9): states and timeouts, persistence, thresholds, quiescence,
// deleted real servers, connection reuse, the estimator, zeroing.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { IPPROTO_UDP } from '../../src/core/constants.js';
import { VERDICT_ACCEPT, VERDICT_DROP, VERDICT_UNREACH } from '../../src/core/director.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/core/proto/tcp.js';
import { applyRules, Client, makeDirector } from '../helpers/director.js';
import { GOLDEN_SCHEDULING } from '../helpers/golden.js';

const VIP = '198.18.0.1:80';
const svcKey = { af: 4 as const, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0 };

function expiresIn(d: ReturnType<typeof makeDirector>['d'], conn: number, now: number): number {
  return d.conns.expires[conn]! - now;
}

test('DR connection: input-only state table, active/inactive moves, per-state timeouts', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g -w 1`);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  const dest = d.table.get(svcKey).dests[0]!;
  c.in(TCP_SYN);
  assert.equal(d.stateName(c.conn), 'SYN_RECV');
  assert.equal([dest.activeconns, dest.inactconns].join(), '1,0');
  assert.equal(expiresIn(d, c.conn, clock.ms), 60_000);
  c.in(TCP_ACK);
  assert.equal(d.stateName(c.conn), 'ESTABLISHED');
  assert.equal(expiresIn(d, c.conn, clock.ms), 900_000);
  c.in(TCP_FIN | TCP_ACK);
  assert.equal(d.stateName(c.conn), 'FIN_WAIT'); // the input-only table: ES + fin -> FW
  assert.equal([dest.activeconns, dest.inactconns].join(), '0,1');
  assert.equal(expiresIn(d, c.conn, clock.ms), 120_000);
  c.in(TCP_RST);
  assert.equal(d.stateName(c.conn), 'CLOSE');
  assert.equal(expiresIn(d, c.conn, clock.ms), 10_000);
  // expiry exactly at the deadline, not before
  clock.advance(9_999);
  d.advance();
  assert.equal(d.conns.count, 1);
  clock.advance(1);
  d.advance();
  assert.equal(d.conns.count, 0);
  assert.equal(dest.inactconns, 0);
});

test('NAT connection: in/out table trace and TIME_WAIT', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:8080 -m -w 1`);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  assert.equal(c.server(), '198.19.0.2:8080');
  c.out(TCP_SYN | TCP_ACK);
  assert.equal(d.stateName(c.conn), 'SYN_RECV');
  c.in(TCP_ACK);
  assert.equal(d.stateName(c.conn), 'ESTABLISHED');
  c.in(TCP_FIN | TCP_ACK);
  assert.equal(d.stateName(c.conn), 'CLOSE_WAIT');
  c.out(TCP_FIN | TCP_ACK);
  assert.equal(d.stateName(c.conn), 'TIME_WAIT');
  c.in(TCP_ACK);
  assert.equal(d.stateName(c.conn), 'TIME_WAIT');
});

test('a non-SYN segment without a connection is passed on; no real server means ICMP unreachable', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 0`);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  assert.equal(c.in(TCP_ACK), VERDICT_ACCEPT);
  assert.equal(c.in(TCP_SYN | TCP_RST), VERDICT_ACCEPT);
  assert.equal(c.in(TCP_SYN), VERDICT_UNREACH); // the only real server is quiescent
  const other = new Client(d, '198.18.5.5:40000', '198.18.0.9:80');
  assert.equal(other.in(TCP_SYN), VERDICT_ACCEPT); // no such service
});

test('--set tcp tcpfin udp: 0 keeps a value, new values apply at the next transition', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g -w 1`);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  c.in(TCP_ACK);
  d.setTimeouts({ tcp: 1000, tcpfin: 0, udp: 310 });
  assert.deepEqual(d.getTimeouts(), { tcp: 1000, tcpfin: 120, udp: 310 });
  assert.equal(expiresIn(d, c.conn, clock.ms), 900_000); // timer untouched
  c.in(TCP_ACK);
  assert.equal(expiresIn(d, c.conn, clock.ms), 1_000_000);
  assert.throws(() => d.setTimeouts({ tcp: -1, tcpfin: 0, udp: 0 }), /Invalid argument/);
});

test('UDP: 300 s affinity refreshed by every datagram, always inactive', () => {
  const { d, clock } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m -w 1\n-a -u 198.18.0.1:53 -r 198.19.0.3:53 -m -w 1');
  const c = new Client(d, '198.18.5.5:5000', '198.18.0.1:53', IPPROTO_UDP);
  const first = c.datagram();
  for (let k = 0; k < 5; k++) {
    clock.advance(299_000);
    d.advance();
    assert.equal(c.datagram(), first);
  }
  const dest = d.connDest(c.conn)!;
  assert.equal([dest.activeconns, dest.inactconns].join(), '0,1');
  clock.advance(300_000);
  d.advance();
  assert.equal(d.conns.count, 0);
  assert.notEqual(c.datagram(), first); // rr moved on: a new entry, the other server
});

test('persistence: one real server per client network; template outlives its connections; 60 s rule', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 100 -M 255.255.255.0\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -m -w 1`);
  const servers = new Set<string>();
  for (let k = 0; k < 5; k++) {
    const c = new Client(d, `198.18.5.${10 + k}:${40000 + k}`, VIP);
    servers.add(c.open()!);
    c.close();
  }
  assert.equal(servers.size, 1);
  const other = new Client(d, '198.18.6.1:40000', VIP);
  assert.notEqual(other.open(), [...servers][0]);
  const tpl = d.connInfos().filter((x) => x.state === 'NONE' || x.state === 'ASSURED');
  assert.deepEqual(tpl.map((x) => x.caddr).sort(), ['198.18.5.0', '198.18.6.0']);
  assert.ok(tpl.every((x) => x.cport === 0 && x.vport === 80 && x.state === 'ASSURED'));
  // A template whose timer runs out while it still controls a connection is kept 60 s more,
  // and from then on its timeout is 60 s.
  const held = new Client(d, '198.18.7.1:40000', VIP);
  held.open(); // ESTABLISHED: 900 s
  clock.advance(100_000);
  d.advance();
  const t7 = d.connInfos().find((x) => x.caddr === '198.18.7.0')!;
  assert.equal(t7.timeout, 60);
  assert.equal(t7.expiresMs, 60_000);
});

test('persistence template survives quiescence unless expire_quiescent_template', () => {
  for (const eqt of [0, 1]) {
    const { d } = makeDirector();
    d.setSysctl('expire_quiescent_template', eqt);
    applyRules(d, `-A -t ${VIP} -s rr -p 300\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -m -w 1`);
    const a = new Client(d, '198.18.5.5:40000', VIP);
    const first = a.open()!;
    const [addr, port] = first.split(':');
    d.editDest(svcKey, { af: 4, addr: addr!, port: Number(port), connFlags: 0, weight: 0, uThreshold: 0, lThreshold: 0 });
    const b = new Client(d, '198.18.5.5:40001', VIP);
    const second = b.open()!;
    if (eqt) assert.notEqual(second, first);
    else assert.equal(second, first);
  }
});

test('thresholds: overloaded at u, cleared below 3/4 u (l unset) with hysteresis', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1 -x 4`);
  const dest = d.table.get(svcKey).dests[0]!;
  const held: Client[] = [];
  for (let k = 0; k < 4; k++) {
    const c = new Client(d, `198.18.5.5:${40000 + k}`, VIP);
    assert.ok(c.open());
    held.push(c);
  }
  assert.ok(dest.overloaded);
  assert.equal(new Client(d, '198.18.5.5:41000', VIP).in(TCP_SYN), VERDICT_UNREACH);
  // Closing keeps them counted (TIME_WAIT is inactive but still a connection).
  for (const c of held) c.reset();
  assert.ok(dest.overloaded);
});

test('thresholds: the flag clears when connections expire below l', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1 -x 4 -y 2`);
  const dest = d.table.get(svcKey).dests[0]!;
  for (let k = 0; k < 4; k++) {
    const c = new Client(d, `198.18.5.5:${40000 + k}`, VIP);
    c.open();
    if (k < 2) c.reset(); // CLOSE: 10 s
  }
  assert.ok(dest.overloaded);
  clock.advance(10_000);
  d.advance();
  assert.equal(dest.activeconns + dest.inactconns, 2);
  assert.ok(dest.overloaded); // 2 is not below l = 2
  assert.throws(() => d.editDest(svcKey, { af: 4, addr: '198.19.0.2', port: 80, connFlags: 0, weight: 1, uThreshold: 1, lThreshold: 2 }), /out of range/);
  d.editDest(svcKey, { af: 4, addr: '198.19.0.2', port: 80, connFlags: 0, weight: 1, uThreshold: 10, lThreshold: 3 });
  assert.ok(!dest.overloaded); // 2 < new l
});

test('weight 0 drains: established connections go on, new ones go elsewhere', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -m -w 1`);
  const a = new Client(d, '198.18.5.5:40000', VIP);
  const s = a.open()!;
  const [addr, port] = s.split(':');
  d.editDest(svcKey, { af: 4, addr: addr!, port: Number(port), connFlags: 0, weight: 0, uThreshold: 0, lThreshold: 0 });
  assert.ok(a.in(TCP_ACK) >= 0);
  assert.equal(a.server(), s);
  for (let k = 1; k < 5; k++) assert.notEqual(new Client(d, `198.18.5.5:${40000 + k}`, VIP).open(), s);
});

test('deleted real server: packets dropped until expiry, or rescheduled with expire_nodest_conn', () => {
  for (const endc of [0, 1]) {
    const { d, clock } = makeDirector();
    d.setSysctl('expire_nodest_conn', endc);
    applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -m -w 1`);
    const a = new Client(d, '198.18.5.5:40000', VIP);
    const s = a.open()!;
    const [addr, port] = s.split(':');
    d.delDest(svcKey, { af: 4, addr: addr!, port: Number(port) });
    clock.advance(50);
    d.advance();
    if (!endc) {
      assert.equal(a.in(TCP_ACK), VERDICT_DROP);
      assert.equal(d.conns.count, 1);
      assert.equal(d.table.trash.length, 1);
    } else {
      assert.equal(d.conns.count, 0); // flushed
      assert.notEqual(a.open(), s);
    }
  }
});

test('a trashed real server added again comes back with its counters', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1`);
  const a = new Client(d, '198.18.5.5:40000', VIP);
  a.open();
  d.delService(svcKey);
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1`);
  const dest = d.table.get(svcKey).dests[0]!;
  assert.equal(dest.activeconns, 1);
  assert.equal(dest.stats.counters().conns, 1);
});

test('conn_reuse_mode: a SYN on a TIME_WAIT entry schedules a new connection', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1\n-a -t ${VIP} -r 198.19.0.3:80 -m -w 1`);
  const a = new Client(d, '198.18.5.5:40000', VIP);
  const first = a.open()!;
  a.close();
  const second = a.open()!;
  assert.notEqual(second, first);
  assert.equal(d.stateName(a.conn), 'ESTABLISHED');
  d.setSysctl('conn_reuse_mode', 0);
  a.close();
  a.in(TCP_SYN);
  assert.equal(a.server(), second); // mode 0: the old entry takes it
});

test('one-packet scheduling: every datagram scheduled, nothing left in the table', () => {
  const { d } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr -o\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m -w 1\n-a -u 198.18.0.1:53 -r 198.19.0.3:53 -m -w 1');
  const c = new Client(d, '198.18.5.5:5000', '198.18.0.1:53', IPPROTO_UDP);
  const seen = [c.datagram(), c.datagram(), c.datagram(), c.datagram()];
  assert.deepEqual(seen, ['198.19.0.3:53', '198.19.0.2:53', '198.19.0.3:53', '198.19.0.2:53']);
  d.advance();
  assert.equal(d.conns.count, 0);
  assert.equal(d.table.get({ ...svcKey, protocol: IPPROTO_UDP, port: 53 }).stats.counters().conns, 4);
});

test('estimator: rates computed as the kernel computes them (golden estimator.txt)', () => {
  // 50 datagrams/s of 128-byte IP packets, replies of 49 bytes; the 2-s windows the kernel saw
  // held 64, 100, 100, 100, 100, 36, 0, 0 packets (500 in all).
  const { d, clock } = makeDirector();
  applyRules(d, '-A -u 198.18.100.29:53 -s rr\n-a -u 198.18.100.29:53 -r 198.19.0.11:53 -m -w 1');
  const c = new Client(d, '198.18.0.2:30000', '198.18.100.29:53', IPPROTO_UDP);
  clock.set(Math.ceil(clock.ms / 2000) * 2000);
  d.advance();
  const golden = readFileSync(`${GOLDEN_SCHEDULING}estimator.txt`, 'utf8');
  const want = [...golden.matchAll(/^UDP {2}198\.18\.100\.29:53\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/gm)].slice(0, 8).map((m) => m.slice(1).map(Number));
  const got: number[][] = [];
  for (const n of [64, 100, 100, 100, 100, 36, 0, 0]) {
    for (let k = 0; k < n; k++) {
      c.in(0, 128);
      c.out(0, 49);
    }
    clock.advance(2000);
    d.advance();
    const r = d.table.get({ af: 4, protocol: IPPROTO_UDP, addr: '198.18.100.29', port: 53, fwmark: 0 }).stats.rates();
    got.push([r.cps, r.inpps, r.outpps, r.inbps, r.outbps]);
  }
  assert.deepEqual(got, want);
});

test('zero: counters restart from the baseline, rates cleared; one service or all', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1`);
  new Client(d, '198.18.5.5:40000', VIP).open();
  assert.equal(d.totalStats.counters().conns, 1);
  d.zero(svcKey);
  assert.equal(d.table.get(svcKey).stats.counters().inpkts, 0);
  assert.equal(d.totalStats.counters().conns, 1);
  d.zero();
  assert.equal(d.totalStats.counters().conns, 0);
  new Client(d, '198.18.5.5:40001', VIP).open();
  assert.equal(d.table.get(svcKey).dests[0]!.stats.counters().conns, 1);
});

test('management errors carry the kernel errno and change nothing', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -m -w 1`);
  const before = JSON.stringify(d.serviceInfos());
  const err = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as { errno: string }).errno;
    }
    return 'none';
  };
  assert.equal(err(() => d.addService({ ...svcKey, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff })), 'EEXIST');
  assert.equal(err(() => d.addService({ ...svcKey, port: 81, schedName: 'nope', flags: 0, timeout: 0, netmask: 0xffffffff })), 'ENOENT');
  assert.equal(err(() => d.editService({ ...svcKey, port: 82, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff })), 'ESRCH');
  assert.equal(err(() => d.editService({ ...svcKey, schedName: 'nope', flags: 0, timeout: 0, netmask: 0xffffffff })), 'ENOENT');
  assert.equal(err(() => d.addDest(svcKey, { af: 4, addr: '198.19.0.2', port: 80, connFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0 })), 'EEXIST');
  assert.equal(err(() => d.addDest(svcKey, { af: 4, addr: '198.19.0.3', port: 80, connFlags: 0, weight: -1, uThreshold: 0, lThreshold: 0 })), 'ERANGE');
  assert.equal(err(() => d.addDest(svcKey, { af: 4, addr: '224.0.0.1', port: 80, connFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0 })), 'EINVAL');
  assert.equal(err(() => d.addDest(svcKey, { af: 6, addr: '2001:db8::1', port: 80, connFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0 })), 'EINVAL');
  assert.equal(err(() => d.addDest(svcKey, { af: 4, addr: '198.19.0.4', port: 80, connFlags: 2, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 1, tunPort: 0 })), 'EINVAL');
  assert.equal(err(() => d.editDest(svcKey, { af: 4, addr: '198.19.0.9', port: 80, connFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0 })), 'ENOENT');
  assert.equal(err(() => d.delDest(svcKey, { af: 4, addr: '198.19.0.9', port: 80 })), 'ENOENT');
  assert.equal(err(() => d.addService({ af: 6, protocol: 6, addr: '2001:db8::1', port: 80, fwmark: 0, schedName: 'rr', flags: 1, timeout: 60, netmask: 129 })), 'EINVAL');
  assert.equal(JSON.stringify(d.serviceInfos()), before);
  // an IPv6 tunnel real server behind an IPv4 service is fine
  d.addDest(svcKey, { af: 6, addr: '2001:db8::1', port: 80, connFlags: 2, weight: 1, uThreshold: 0, lThreshold: 0 });
});
