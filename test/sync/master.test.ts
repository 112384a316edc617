// The master's sending schedule (spec ipvs-kernel.md §10.2) against the director with an
// injected clock: packets 3, 53, 103…; forced TCP close-side transitions (noticed on the IN
// path only); templates resent with v1 on every packet of a conn they control; the v0
// differences; sync_persist_mode; sync_refresh_period with retries and the 4-jiffy rounding;
// postponed expiry; and the sender's buffering (2 s flush, 20 ms / 8-buffer wake-up).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONN_F_TEMPLATE, FWD_DROUTE, IPPROTO_UDP, SVC_F_PERSISTENT } from '../../src/core/constants.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/core/proto/tcp.js';
import { expandJiffies16, msToJiffies } from '../../src/core/sync.js';
import { MasterThread, SYNC_FLUSH_MS } from '../../src/sync/master.js';
import { decodeMessage } from '../../src/sync/wire.js';
import { applyRules, Client, makeDirector } from '../helpers/director.js';
import { captureMaster, FakeTimers, tick } from './helpers.js';

const VIP = '198.18.0.1:80';

/** Which of packets 1..n sent the client's entry (`each` runs after every packet). */
function sentAt(cap: ReturnType<typeof captureMaster>, c: Client, n: number, flags: number, each?: () => void): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) {
    c.in(flags);
    each?.();
    if (cap.take().includes(c.conn)) out.push(i);
  }
  return out;
}

test('TCP: sent on packets 3, 53, 103; the move to ESTABLISHED waits for the count; close-side moves are forced', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN); // 1: SYN_RECV is not synced at all
  assert.deepEqual(cap.take(), []);
  c.in(TCP_ACK); // 2: ESTABLISHED, a state change but not a forced one
  assert.deepEqual(cap.take(), []);
  assert.equal(d.conns.oldState[c.conn], 0);
  const sends = sentAt(cap, c, 110, TCP_ACK).map((i) => i + 2);
  assert.deepEqual(sends, [3, 53, 103]);
  assert.equal(d.conns.oldState[c.conn], 1);
  c.in(TCP_FIN | TCP_ACK); // 113: ES → FIN_WAIT (input-only table): forced
  assert.deepEqual(cap.take(), [c.conn]);
  c.in(TCP_ACK); // 114: still FIN_WAIT: back to the count rule
  assert.deepEqual(cap.take(), []);
  c.in(TCP_RST); // 115: CLOSE, forced
  assert.deepEqual(cap.take(), [c.conn]);
  assert.equal(d.conns.inPkts[c.conn], 115);
  // the records carry state and timeout of the moment
  cap.timers.advance(3000);
  const recs = cap.records();
  assert.deepEqual(
    recs.map((r) => `${r.state}/${r.timeout}`),
    ['1/900', '1/900', '1/900', '4/120', '6/10'],
  );
});

test('NAT: a close-side move made by a reply is noticed at the next client packet', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:8080 -m`);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.open(); // SYN, ACK, ACK in: 3 packets, ESTABLISHED at 2 → sent at 3
  assert.deepEqual(cap.take(), [c.conn]);
  c.in(TCP_FIN | TCP_ACK); // CLOSE_WAIT: forced
  assert.deepEqual(cap.take(), [c.conn]);
  c.out(TCP_FIN | TCP_ACK); // TIME_WAIT through the OUT path: no sync call there
  assert.deepEqual(cap.take(), []);
  assert.equal(d.stateName(c.conn), 'TIME_WAIT');
  c.in(TCP_ACK); // the next IN packet sees state ≠ old_state
  assert.deepEqual(cap.take(), [c.conn]);
});

test('UDP: packets 3, 53, 103 only; sync_period 0 sends once, at the threshold', () => {
  const { d } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:4000', '198.18.0.1:53', IPPROTO_UDP);
  assert.deepEqual(sentAt(cap, c, 120, 0), [3, 53, 103]);
  d.setSysctl('sync_threshold', [2, 0]);
  const c2 = new Client(d, '198.18.5.6:4000', '198.18.0.1:53', IPPROTO_UDP);
  assert.deepEqual(sentAt(cap, c2, 60, 0), [2]);
  d.setSysctl('sync_threshold', [0, 10]); // threshold 0: packets 10, 20, …
  const c3 = new Client(d, '198.18.5.7:4000', '198.18.0.1:53', IPPROTO_UDP);
  assert.deepEqual(sentAt(cap, c3, 25, 0), [10, 20]);
});

test('v1 persistence: the template goes out on every IN packet of its conns (in_pkts counted by the sync code)', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 300\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  const tpl = d.conns.control[c.conn]!;
  assert.ok(d.conns.flags[tpl]! & CONN_F_TEMPLATE);
  assert.deepEqual(cap.take(), [tpl]); // SYN_RECV conn not synced, its template is
  c.in(TCP_ACK);
  assert.deepEqual(cap.take(), [tpl]);
  c.in(TCP_ACK);
  assert.deepEqual(cap.take(), [c.conn, tpl]); // conn first, then its controller
  for (let i = 0; i < 10; i++) c.in(TCP_ACK);
  assert.equal(cap.take().filter((x) => x === tpl).length, 10);
  assert.equal(d.conns.inPkts[tpl], 13);
  // a second client of the same network shares the template
  const c2 = new Client(d, '198.18.5.5:40001', VIP);
  c2.in(TCP_SYN);
  assert.equal(d.conns.control[c2.conn], tpl);
  assert.deepEqual(cap.take(), [tpl]);
  // the template record: TEMPLATE flag, cport 0, persistence timeout
  cap.timers.advance(3000);
  const t = cap.records().find((r) => r.flags & CONN_F_TEMPLATE)!;
  assert.equal([t.cport, t.vport, t.timeout].join(), '0,80,300');
});

test('sync_persist_mode 1: conns under a template are never sent, the template still is', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 300\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  d.setSysctl('sync_persist_mode', 1);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  const tpl = d.conns.control[c.conn]!;
  for (let i = 0; i < 60; i++) c.in(TCP_ACK);
  c.in(TCP_FIN);
  const q = cap.take();
  assert.equal(q.filter((x) => x === c.conn).length, 0);
  assert.equal(q.filter((x) => x === tpl).length, 62);
});

test('v0: the template only after its conn was sent; IPv6 and ONE_PACKET conns (and their templates) never', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 300\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  const k6 = { af: 6 as const, protocol: 6, addr: '2001:2::1', port: 80, fwmark: 0 };
  d.addService({ ...k6, schedName: 'rr', flags: SVC_F_PERSISTENT, timeout: 300, netmask: 128 });
  d.addDest(k6, { af: 6, addr: '2001:2:0:2::21', port: 80, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0 });
  applyRules(d, '-A -u 198.18.0.1:53 -s rr -p 300 -o\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  d.setSysctl('sync_version', 0);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  const tpl = d.conns.control[c.conn]!;
  const log: string[] = [];
  for (let i = 2; i <= 55; i++) {
    c.in(TCP_ACK);
    const q = cap.take();
    if (q.length) log.push(`${i}:${q.map((x) => (x === tpl ? 'T' : 'C')).join('')}`);
  }
  assert.deepEqual(log, ['3:CT', '53:CT']);
  assert.equal(d.conns.inPkts[tpl], 2); // counted only when its conn went out
  const c6 = new Client(d, '[2001:2::5]:40000', '[2001:2::1]:80');
  for (let i = 0; i < 5; i++) c6.in(i ? TCP_ACK : TCP_SYN);
  assert.deepEqual(cap.take(), []);
  const u = new Client(d, '198.18.5.5:4000', '198.18.0.1:53', IPPROTO_UDP);
  for (let i = 0; i < 5; i++) u.in(0);
  assert.deepEqual(cap.take(), []);
  // every record sent is a 24-byte v0 record
  cap.timers.advance(3000);
  for (const s of cap.sent) assert.equal(decodeMessage(s.msg).version, 0);
});

test('ONE_PACKET with v1: never sent itself, its template is, counting one packet per datagram', () => {
  const { d } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr -p 300 -o\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  const u = new Client(d, '198.18.5.5:4000', '198.18.0.1:53', IPPROTO_UDP);
  // without a master the IN path counts the template's packets itself
  u.in(0);
  const tpl = d.conns.control[u.conn]!;
  u.in(0);
  assert.equal(d.conns.inPkts[tpl], 2);
  const cap = captureMaster(d);
  for (let i = 0; i < 3; i++) {
    u.in(0);
    assert.deepEqual(cap.take(), [tpl]);
  }
  assert.equal(d.conns.inPkts[tpl], 5); // not counted twice
});

test('sync_refresh_period with retries: sync_endtime rounded to 4 jiffies, low bits count retries', () => {
  const { d, clock } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  d.setSysctl('sync_threshold', [3, 0]); // no packet-count rule with a refresh period
  d.setSysctl('sync_refresh_period', 10);
  d.setSysctl('sync_retries', 2);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:4000', '198.18.0.1:53', IPPROTO_UDP);
  clock.set(1_000_006); // jiffy 250001: not on a 4-jiffy boundary
  const t0 = clock.ms;
  const at = (ms: number) => {
    clock.set(t0 + ms);
    c.in(0);
    return cap.take().includes(c.conn);
  };
  const end = () => expandJiffies16(d.conns.syncEnd[c.conn]!, msToJiffies(clock.ms) + 75_000);
  assert.equal(at(0), true); // first packet: created now, 300 s ahead of that
  assert.equal(end(), 325_000); // (250001 + 75000) & ~3
  assert.equal(at(1000), false); // within 10 s and before refresh/8 (1.25 s)
  assert.equal(at(2000), true); // retry 1
  assert.equal(end() & 3, 1);
  assert.equal(end() & ~3, (250_001 + 500 + 75_000) & ~3);
  assert.equal(at(3000), false); // 1.25 s after the retry not yet passed
  assert.equal(at(4000), true); // retry 2
  assert.equal(end() & 3, 2);
  assert.equal(at(6000), false); // retries used up
  assert.equal(at(12_500), false); // still within 10 s of the last end time
  assert.equal(at(14_100), true); // 10 s moved: a fresh sync, retry bits clear
  assert.equal(end() & 3, 0);
});

test('postponed expiry: a template still controlling a conn is re-synced with sync_threshold packets', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 10\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  c.in(TCP_ACK);
  const tpl = d.conns.control[c.conn]!;
  cap.take();
  clock.advance(10_000);
  d.advance(); // the template's 10 s run out while the conn lives: postponed 60 s, synced
  assert.deepEqual(cap.take(), [tpl]);
  assert.equal(d.conns.timeout[tpl], 60_000);
  cap.timers.advance(3000);
  const t = cap.records().at(-1)!;
  assert.equal([t.flags & CONN_F_TEMPLATE, t.timeout].join(), `${CONN_F_TEMPLATE},60`);
});

test('sender: a partly filled buffer leaves at the first 1 s check after it is 2 s old', () => {
  const { d } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  d.setSysctl('sync_threshold', [1, 50]);
  const timers = new FakeTimers(0);
  const cap = captureMaster(d, { timers });
  timers.advance(500);
  new Client(d, '198.18.5.5:4000', '198.18.0.1:53', IPPROTO_UDP).in(0);
  timers.advance(2400); // checks at 1000 and 2000 find it younger than 2 s
  assert.equal(cap.sent.length, 0);
  timers.advance(100); // check at 3000
  assert.deepEqual(
    cap.sent.map((s) => s.at),
    [3000],
  );
  assert.ok(SYNC_FLUSH_MS === 2000);
});

test('sender: a full buffer wakes the sender 20 ms later; 8 queued buffers wake it at once; sync_qlen_max drops', () => {
  const timers = new FakeTimers(0);
  const counters = { records: 0, messages: 0, queueDrops: 0 };
  const sent: number[] = [];
  let qmax = 100;
  const t = new MasterThread(0, timers, () => sent.push(timers.ms), () => qmax, counters);
  const { d } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  const u = new Client(d, '198.18.5.5:4000', '198.18.0.1:53', IPPROTO_UDP);
  u.in(0);
  const rec = d.syncRecord(u.conn);
  timers.advance(100);
  // maxlen 44 = header + one IPv4 record: every further record queues the previous buffer
  t.add(rec, 1, 0, 44);
  t.add(rec, 1, 0, 44); // buffer 1 queued at 100
  timers.advance(19);
  assert.equal(sent.length, 0);
  timers.advance(1);
  assert.deepEqual(sent, [120]);
  // eight buffers queued at once: sent without waiting for the 20 ms
  for (let i = 0; i < 8; i++) t.add(rec, 1, 0, 44);
  timers.advance(0);
  assert.equal(sent.length, 9);
  assert.ok(sent.slice(1).every((x) => x === 120));
  // a version change queues the buffer (never mixed)
  t.add(rec, 0, 0, 44);
  timers.advance(20);
  assert.equal(sent.length, 10);
  // queue limit
  qmax = 2;
  timers.advance(5000);
  const before = sent.length;
  for (let i = 0; i < 4; i++) t.add(rec, 1, 0, 44); // queues 3 buffers (the 4th stays current)
  assert.equal(counters.queueDrops, 1);
  timers.advance(20);
  assert.equal(sent.length - before, 2);
  t.stop();
  timers.advance(10_000);
  assert.equal(sent.length - before, 2); // the current buffer was discarded
  assert.equal(timers.count, 0);
});

test('threads: entries spread over sync_ports threads by index; each thread its own buffer and port', () => {
  const { d } = makeDirector();
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -m');
  d.setSysctl('sync_threshold', [1, 50]);
  const cap = captureMaster(d, { threads: 4 });
  const conns: number[] = [];
  for (let i = 0; i < 8; i++) {
    const u = new Client(d, `198.18.5.${i + 1}:4000`, '198.18.0.1:53', IPPROTO_UDP);
    u.in(0);
    conns.push(u.conn);
  }
  cap.timers.advance(3000);
  assert.equal(cap.sent.length, new Set(conns.map((x) => x & 3)).size);
  for (const s of cap.sent) {
    for (const r of decodeMessage(s.msg).records) {
      const i = conns.findIndex((x) => d.conns.cport[x] === r.cport && d.conns.caddr[x * 4] === r.caddr.w0);
      assert.equal(conns[i]! & 3, s.thread);
    }
  }
});

test('records: what the master sends for an entry (addresses, ports, flags without HASHED, state, timeout)', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  const cap = captureMaster(d);
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_SYN);
  c.in(TCP_ACK);
  c.in(TCP_ACK);
  tick(clock, cap.timers, 3000);
  const [r] = cap.records();
  assert.equal(`${r!.caddr}:${r!.cport} ${r!.vaddr}:${r!.vport} ${r!.daddr}:${r!.dport}`, '198.18.5.5:40000 198.18.0.1:80 198.19.0.2:80');
  assert.equal(r!.wireFlags, 0x0083); // DR | NOOUTPUT, active, HASHED not sent
  assert.equal([r!.protocol, r!.state, r!.timeout].join(), '6,1,900');
});
