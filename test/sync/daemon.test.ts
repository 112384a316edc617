// The sync daemons: the kernel's start/stop errors in its order (EINVAL, ENODEV before
// EEXIST, ESRCH), the effective values `-L --daemon` prints (maxlen from the MTU or clamped,
// group/port/ttl defaults), the control API path, and two directors exchanging real UDP
// multicast on loopback: the backup ends up with the master's connections and carries them
// on after a fail-over.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FWD_TUNNEL, IPPROTO_UDP } from '../../src/core/constants.js';
import type { Director } from '../../src/core/director.js';
import { IpvsError } from '../../src/core/errors.js';
import { TCP_ACK, TCP_FIN, TCP_SYN } from '../../src/core/proto/tcp.js';
import { LocalApi } from '../../src/control/local-api.js';
import { type InterfaceProbe, SyncDaemons } from '../../src/sync/daemon.js';
import { applyRules, Client, makeDirector } from '../helpers/director.js';

const VIP = '198.18.0.1:80';
const fakeIfaces: InterfaceProbe = (n) => (n === 'eth0' ? { mtu: 1500, ipv4: '127.0.0.1' } : n === 'jumbo0' ? { mtu: 9000, ipv4: '127.0.0.1' } : n === 'tiny0' ? { mtu: 1280, ipv4: '127.0.0.1' } : null);

function errno(f: () => void): string {
  try {
    f();
  } catch (e) {
    if (e instanceof IpvsError) return e.errno;
    throw e;
  }
  return 'ok';
}

/** A free-ish port for this test run (tests run in parallel with other people's). */
const basePort = 20000 + (process.pid % 20000) * 2;

test('start/stop errors in the kernel order, and the effective values the listing shows', async (t) => {
  const { d } = makeDirector();
  const s = new SyncDaemons({ director: d, interfaces: fakeIfaces });
  t.after(() => s.stopAll());
  const m = { state: 'master' as const, mcastIfn: 'eth0', syncid: 0 };
  assert.equal(errno(() => s.stop('master')), 'ESRCH');
  assert.equal(errno(() => s.start({ ...m, mcastIfn: '' })), 'EINVAL');
  assert.equal(errno(() => s.start({ ...m, mcastIfn: 'nosuch0' })), 'ENODEV');
  assert.equal(errno(() => s.start({ ...m, mcastGroup: '198.18.0.1' })), 'EINVAL');
  assert.equal(errno(() => s.start({ ...m, mcastGroup: '2001:2::1' })), 'EINVAL');
  assert.equal(errno(() => s.start({ ...m, mcastGroup: 'bogus' })), 'EINVAL');
  assert.equal(errno(() => s.start({ ...m, syncMaxlen: 70000 })), 'EINVAL');
  assert.equal(errno(() => s.start({ ...m, state: 'both' as 'master' })), 'EINVAL');
  assert.deepEqual(s.list(), []);
  s.start({ ...m, mcastPort: basePort });
  assert.deepEqual(s.list(), [{ state: 'master', mcastIfn: 'eth0', syncid: 0, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: basePort, mcastTtl: 1 }]);
  assert.equal(errno(() => s.start({ ...m, mcastPort: basePort })), 'EEXIST');
  assert.equal(errno(() => s.start({ ...m, mcastIfn: 'nosuch0' })), 'ENODEV'); // checked before EEXIST
  // backup: maxlen from the device MTU (at least 1500), a given one at least 1024
  s.start({ state: 'backup', mcastIfn: 'jumbo0', syncid: 10, syncMaxlen: 1000, mcastPort: basePort, mcastTtl: 0 });
  const [, b] = s.list();
  assert.deepEqual(b, { state: 'backup', mcastIfn: 'jumbo0', syncid: 10, syncMaxlen: 1024, mcastGroup: '224.0.0.81', mcastPort: basePort, mcastTtl: 1 });
  s.stop('backup');
  s.start({ state: 'backup', mcastIfn: 'jumbo0', syncid: 10, mcastPort: basePort });
  assert.equal(s.list()[1]!.syncMaxlen, 9000 - 28);
  s.stop('backup');
  s.start({ state: 'backup', mcastIfn: 'tiny0', syncid: 10, mcastPort: basePort });
  assert.equal(s.list()[1]!.syncMaxlen, 1500 - 28);
  s.stop('backup');
  s.stop('master');
  assert.equal(errno(() => s.stop('master')), 'ESRCH');
  // master: a given maxlen is clamped to 65535 - headers; IPv6 headers are 48 bytes
  s.start({ ...m, syncMaxlen: 65535, mcastPort: basePort });
  assert.equal(s.list()[0]!.syncMaxlen, 65507);
  s.stop('master');
  s.start({ ...m, mcastGroup: 'ff02::51', mcastPort: basePort, mcastTtl: 3 });
  assert.deepEqual(s.list()[0], { state: 'master', mcastIfn: 'eth0', syncid: 0, syncMaxlen: 1452, mcastGroup: 'ff02::51', mcastPort: basePort, mcastTtl: 3 });
  s.stop('master');
  // an interface name is cut to 15 characters, as the kernel's 16-byte field does
  assert.equal(errno(() => s.start({ ...m, mcastIfn: 'eth0-but-much-longer' })), 'ENODEV');
});

test('a real server of another family than its service makes the start fail with EINVAL', () => {
  const { d } = makeDirector();
  const k = { af: 4 as const, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0 };
  d.addService({ ...k, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
  d.addDest(k, { af: 6, addr: '2001:2::21', port: 80, connFlags: FWD_TUNNEL, weight: 1, uThreshold: 0, lThreshold: 0 });
  const s = new SyncDaemons({ director: d, interfaces: fakeIfaces });
  assert.equal(errno(() => s.start({ state: 'backup', mcastIfn: 'eth0', syncid: 0 })), 'EINVAL');
  assert.equal(errno(() => s.start({ state: 'master', mcastIfn: 'nosuch0', syncid: 0 })), 'EINVAL'); // before ENODEV
});

test('through the control API: startDaemon / getDaemons / stopDaemon with the kernel errnos', async (t) => {
  const { d } = makeDirector();
  const s = new SyncDaemons({ director: d, interfaces: fakeIfaces });
  t.after(() => s.stopAll());
  const api = new LocalApi(d, s);
  await api.startDaemon({ state: 'backup', mcastIfn: 'eth0', syncid: 3, mcastPort: basePort + 1 });
  assert.deepEqual(
    (await api.getDaemons()).map((x) => `${x.state} ${x.mcastIfn} ${x.syncid} ${x.syncMaxlen}`),
    ['backup eth0 3 1472'],
  );
  await assert.rejects(api.startDaemon({ state: 'backup', mcastIfn: 'eth0', syncid: 3 }), (e: IpvsError) => e.errno === 'EEXIST');
  await api.stopDaemon('backup');
  await assert.rejects(api.stopDaemon('backup'), (e: IpvsError) => e.errno === 'ESRCH');
});

/** Poll `cond` every 20 ms for at most `ms`. */
async function until(cond: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited >= ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function table(d: Director): string[] {
  return d
    .connInfos()
    .map((c) => `${c.protocol} ${c.caddr}:${c.cport} ${c.vaddr}:${c.vport} -> ${c.daddr}:${c.dport} ${c.state} ${c.timeout}`)
    .sort();
}

test('two directors over real multicast on lo: the backup learns the connections and serves them after fail-over', async (t) => {
  const port = basePort + 2;
  const rules = `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g\n-a -t ${VIP} -r 198.19.0.3:80 -g\n-a -t ${VIP} -r 198.19.0.4:80 -g\n-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.5:53 -g\n-a -u 198.18.0.1:53 -r 198.19.0.6:53 -g`;
  const m = makeDirector(1);
  const b = makeDirector(99); // another random sequence: rr starts elsewhere
  applyRules(m.d, rules);
  applyRules(b.d, rules);
  const master = new SyncDaemons({ director: m.d });
  const backup = new SyncDaemons({ director: b.d });
  t.after(() => {
    master.stopAll();
    backup.stopAll();
  });
  const syncid = 1 + (process.pid % 250);
  backup.start({ state: 'backup', mcastIfn: 'lo', syncid, mcastPort: port });
  master.start({ state: 'master', mcastIfn: 'lo', syncid, mcastPort: port });
  await Promise.all([backup.ready('backup'), master.ready('master')]);
  assert.equal(backup.list()[0]!.syncMaxlen, 65507); // lo's MTU 65536, clamped to 65535
  // 60 TCP connections (3 packets: synced at the third) and 30 UDP flows (3 datagrams)
  const tcp: Client[] = [];
  for (let i = 0; i < 60; i++) {
    const c = new Client(m.d, `198.18.${5 + (i >> 6)}.${(i & 63) + 1}:${40000 + i}`, VIP);
    c.in(TCP_SYN);
    c.in(TCP_ACK);
    c.in(TCP_ACK);
    tcp.push(c);
  }
  for (let i = 0; i < 30; i++) {
    const u = new Client(m.d, `198.18.7.${i + 1}:5353`, '198.18.0.1:53', IPPROTO_UDP);
    for (let k = 0; k < 3; k++) u.in(0);
  }
  // one closing connection: forced out at once with its FIN_WAIT state
  tcp[0]!.in(TCP_FIN | TCP_ACK);
  // 91 records ≈ 3.3 kB: two full 1472-byte messages leave after 20 ms, the rest within 3 s
  await until(() => b.d.conns.count === 90, 4000);
  assert.deepEqual(table(b.d), table(m.d));
  const st = backup.status() as { backup: { records: Record<string, number>; errors: object } };
  assert.equal(st.backup.records.created, 90);
  assert.equal(st.backup.records.updated, 1); // the FIN_WAIT update of a conn sent before
  assert.deepEqual(st.backup.errors, {});
  // fail-over: the master stops, packets now reach the backup
  master.stop('master');
  assert.equal(m.d.syncMaster, null);
  for (const c of tcp) {
    const server = c.server();
    const onBackup = new Client(b.d, `${c.flow.source()}:${c.flow.sport}`, VIP);
    assert.ok(onBackup.in(TCP_ACK) >= 0, 'the backup knows the connection');
    assert.equal(onBackup.server(), server);
  }
  const dests = (d: Director) => [...d.table.services()].flatMap((s) => s.dests.map((x) => `${x}:${x.activeconns}/${x.inactconns}`)).sort();
  assert.deepEqual(dests(b.d), dests(m.d));
});

test('syncid: a backup with syncid ≠ 0 ignores other ids; 0 takes any', async (t) => {
  const port = basePort + 4;
  const m = makeDirector(1);
  const b = makeDirector(2);
  const b0 = makeDirector(3);
  const rules = '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.5:53 -g';
  for (const x of [m, b, b0]) applyRules(x.d, rules);
  m.d.setSysctl('sync_threshold', [1, 50]);
  const master = new SyncDaemons({ director: m.d });
  const backup = new SyncDaemons({ director: b.d });
  const any = new SyncDaemons({ director: b0.d });
  t.after(() => {
    for (const s of [master, backup, any]) s.stopAll();
  });
  backup.start({ state: 'backup', mcastIfn: 'lo', syncid: 200, mcastPort: port });
  any.start({ state: 'backup', mcastIfn: 'lo', syncid: 0, mcastPort: port });
  master.start({ state: 'master', mcastIfn: 'lo', syncid: 201, mcastPort: port, syncMaxlen: 44 }); // one record per message
  await Promise.all([backup.ready('backup'), any.ready('backup'), master.ready('master')]);
  for (let i = 0; i < 3; i++) new Client(m.d, `198.18.7.${i + 1}:5353`, '198.18.0.1:53', IPPROTO_UDP).in(0);
  // three records at maxlen 44: two messages queued (sent after 20 ms), the third buffered
  await until(() => b0.d.conns.count >= 2, 2000);
  assert.equal(b.d.conns.count, 0);
  assert.ok((backup.status() as { backup: { ignored: number } }).backup.ignored >= 2);
});

test('while a sync daemon runs, a real server of another family is refused (EINVAL)', async () => {
  const { d } = makeDirector();
  const sync = new SyncDaemons({ director: () => d });
  d.addService({ af: 4, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
  sync.start({ state: 'backup', mcastIfn: 'lo', syncid: 0, mcastGroup: '239.255.77.1', mcastPort: 19848 });
  try {
    await sync.ready('backup');
    assert.throws(() => d.addDest({ af: 4, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0 }, { af: 6, addr: '2001:2::9', port: 80, connFlags: 2, weight: 1, uThreshold: 0, lThreshold: 0 }), /Invalid argument/);
  } finally {
    sync.stopAll();
  }
  d.addDest({ af: 4, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0 }, { af: 6, addr: '2001:2::9', port: 80, connFlags: 2, weight: 1, uThreshold: 0, lThreshold: 0 });
});
