// What the backup does with records (spec ipvs-kernel.md §10.5, ip_vs_proc_conn): new entries
// bound to the local dest (forwarding method from the local dest), unbound entries bound
// later, INACTIVE/SEQ updates with counter moves, stale and replacing records, the
// (daddr, port) then (daddr, port ^ dport) dest lookup, timeouts from the record or the local
// protocol table, templates, and packets after a fail-over.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpAddr } from '../../src/core/addr.js';
import {
  CONN_F_INACTIVE,
  CONN_F_IN_SEQ,
  CONN_F_NOOUTPUT,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
  FWD_DROUTE,
  FWD_MASK,
  FWD_MASQ,
  FWD_TUNNEL,
  IPPROTO_IP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_PERSISTENT,
} from '../../src/core/constants.js';
import type { Director } from '../../src/core/director.js';
import { TCP_ACK, TCP_FIN, TCP_SYN } from '../../src/core/proto/tcp.js';
import type { SyncConnRecord } from '../../src/core/sync.js';
import { decodeMessage, encodeMessage } from '../../src/sync/wire.js';
import { applyRules, Client, makeDirector } from '../helpers/director.js';

const VIP = '198.18.0.1:80';
const KEY = { af: 4 as const, protocol: IPPROTO_TCP, addr: '198.18.0.1', port: 80, fwmark: 0 };
const A = (s: string) => IpAddr.parse(s);

/** A record as a backup receives it (v1 unless told: flags reduced accordingly). */
function received(over: Partial<SyncConnRecord> = {}, version: 0 | 1 = 1): SyncConnRecord {
  const r: SyncConnRecord = {
    af: 4,
    protocol: IPPROTO_TCP,
    flags: FWD_DROUTE | CONN_F_NOOUTPUT,
    state: 1,
    cport: 40000,
    vport: 80,
    dport: 80,
    fwmark: 0,
    timeout: 900,
    caddr: A('198.18.5.5'),
    vaddr: A('198.18.0.1'),
    daddr: A('198.19.0.2'),
    ...over,
  };
  const rec = decodeMessage(encodeMessage(version, 0, [r])).records[0];
  assert.ok(rec, 'record decodes');
  return rec;
}

function dest(d: Director, addr: string, port: number) {
  return d.table.get(KEY).dests.find((x) => x.addr.toString() === addr && x.port === port)!;
}

function only(d: Director): number {
  const all = [...d.conns.entries()];
  assert.equal(all.length, 1);
  return all[0]!;
}

test('new entry: bound to the local dest, its forwarding method, SYNC, state/old_state, in_pkts = sync_threshold, record timeout', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -i`); // the backup tunnels
  assert.equal(d.applySyncRecord(received({ flags: FWD_DROUTE | CONN_F_NOOUTPUT })), 'created');
  const cp = only(d);
  const c = d.conns;
  assert.equal(d.connDest(cp), dest(d, '198.19.0.2', 80));
  assert.equal(c.flags[cp]! & FWD_MASK, FWD_TUNNEL); // from the local dest, not the message
  assert.ok(c.flags[cp]! & CONN_F_SYNC);
  assert.equal(d.stateName(cp), 'ESTABLISHED');
  assert.equal(c.oldState[cp], 1);
  assert.equal(c.inPkts[cp], 3);
  assert.equal(c.expires[cp]! - clock.ms, 900_000);
  const ds = dest(d, '198.19.0.2', 80);
  assert.equal([ds.activeconns, ds.inactconns].join(), '1,0'); // INACTIVE clear in the record
  assert.equal(ds.stats.conns, 0); // not a scheduled connection
  const info = d.connInfo(cp);
  assert.equal(`${info.caddr}:${info.cport} ${info.vaddr}:${info.vport} ${info.daddr}:${info.dport}`, '198.18.5.5:40000 198.18.0.1:80 198.19.0.2:80');
});

test('existing entry: only INACTIVE and SEQ bits change, counters move, state and timer follow the record', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  d.applySyncRecord(received());
  const cp = only(d);
  const ds = dest(d, '198.19.0.2', 80);
  clock.advance(5000);
  assert.equal(d.applySyncRecord(received({ state: 4, timeout: 120, flags: FWD_MASQ | CONN_F_INACTIVE | CONN_F_IN_SEQ })), 'updated');
  assert.equal(only(d), cp);
  assert.equal([ds.activeconns, ds.inactconns].join(), '0,1');
  const f = d.conns.flags[cp]!;
  assert.equal(f & FWD_MASK, FWD_DROUTE); // the method bits did not change
  assert.ok(f & CONN_F_INACTIVE && f & CONN_F_IN_SEQ && f & CONN_F_SYNC);
  assert.equal(d.stateName(cp), 'FIN_WAIT');
  assert.equal(d.conns.expires[cp]! - clock.ms, 120_000);
  // and back to active
  d.applySyncRecord(received());
  assert.equal([ds.activeconns, ds.inactconns].join(), '1,0');
});

test('a record naming another real server: active replaces the entry, inactive is a stale expiry notice', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g\n-a -t ${VIP} -r 198.19.0.3:80 -g`);
  d.applySyncRecord(received());
  const old = only(d);
  assert.equal(d.applySyncRecord(received({ daddr: A('198.19.0.3'), flags: FWD_DROUTE | CONN_F_INACTIVE, state: 4 })), 'stale');
  assert.equal(only(d), old);
  assert.equal(d.connInfo(old).daddr, '198.19.0.2');
  assert.equal(d.applySyncRecord(received({ daddr: A('198.19.0.3') })), 'replaced');
  // the new entry is what lookups find; the old one counts until its timer runs
  const c = new Client(d, '198.18.5.5:40000', VIP);
  c.in(TCP_ACK);
  assert.equal(c.server(), '198.19.0.3:80');
  assert.equal(d.conns.count, 2);
  assert.equal(dest(d, '198.19.0.2', 80).activeconns, 1);
  clock.advance(1);
  d.advance();
  assert.equal(d.conns.count, 1);
  assert.equal(dest(d, '198.19.0.2', 80).activeconns, 0);
  assert.equal(dest(d, '198.19.0.3', 80).activeconns, 1);
  // a different dport is another server too
  assert.equal(d.applySyncRecord(received({ daddr: A('198.19.0.3'), dport: 81, flags: CONN_F_INACTIVE })), 'stale');
});

test('no service or dest yet: the entry stays unbound with the record method, and binds on a later record', () => {
  const { d } = makeDirector();
  d.applySyncRecord(received({ flags: FWD_MASQ }));
  const cp = only(d);
  assert.equal(d.conns.dest[cp], -1);
  assert.equal(d.conns.flags[cp]! & FWD_MASK, FWD_MASQ);
  assert.equal(d.connInfo(cp).daddr, '198.19.0.2');
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  d.applySyncRecord(received({ flags: FWD_MASQ }));
  assert.equal(only(d), cp);
  const ds = dest(d, '198.19.0.2', 80);
  assert.equal(d.connDest(cp), ds);
  assert.equal(d.conns.flags[cp]! & FWD_MASK, FWD_DROUTE);
  assert.equal([ds.activeconns, ds.inactconns, ds.refcnt].join(), '1,0,1');
});

test('dest lookup: (daddr, dport) then (daddr, 0); a fwmark record not sent as NAT tries port 0 first', () => {
  const { d } = makeDirector();
  const fw = { af: 4 as const, protocol: IPPROTO_TCP, addr: '0.0.0.0', port: 0, fwmark: 5 };
  d.addService({ ...fw, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
  d.addDest(fw, { af: 4, addr: '198.19.0.2', port: 0, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0 });
  d.addDest(fw, { af: 4, addr: '198.19.0.3', port: 8080, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0 });
  const svc = d.table.get(fw);
  d.applySyncRecord(received({ fwmark: 5, vaddr: A('198.18.0.9'), vport: 443, dport: 443, flags: FWD_DROUTE }));
  d.applySyncRecord(received({ fwmark: 5, vaddr: A('198.18.0.9'), vport: 443, dport: 8080, daddr: A('198.19.0.3'), caddr: A('198.18.5.6'), flags: FWD_MASQ }));
  // a record without the mark (v0 style) finds no fwmark service
  d.applySyncRecord(received({ fwmark: 0, vaddr: A('198.18.0.9'), vport: 443, dport: 443, caddr: A('198.18.5.7') }));
  const byClient = new Map([...d.conns.entries()].map((i) => [d.connInfo(i).caddr, i]));
  assert.equal(d.connDest(byClient.get('198.18.5.5')!), svc.findDest(A('198.19.0.2'), 0));
  assert.equal(d.connDest(byClient.get('198.18.5.6')!), svc.findDest(A('198.19.0.3'), 8080));
  assert.equal(d.conns.dest[byClient.get('198.18.5.7')!], -1);
  // address service: dport first, then port 0
  applyRules(d, `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.4:80 -g`);
  d.applySyncRecord(received({ daddr: A('198.19.0.4'), dport: 80, caddr: A('198.18.5.8') }));
  assert.ok(d.connDest([...d.conns.entries()].find((i) => d.connInfo(i).caddr === '198.18.5.8')!));
});

test('timeouts: v1 from the record (clamped to what fits); v0 from the local protocol table; templates 180 s', () => {
  const { d, clock } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 300\n-a -t ${VIP} -r 198.19.0.2:80 -g`);
  applyRules(d, '-A -u 198.18.0.1:53 -s rr\n-a -u 198.18.0.1:53 -r 198.19.0.2:53 -g');
  d.setTimeouts({ tcp: 1000, tcpfin: 0, udp: 77 });
  const left = (caddr: string) => {
    const i = [...d.conns.entries()].find((x) => d.connInfo(x).caddr === caddr && !(d.conns.flags[x]! & CONN_F_TEMPLATE))!;
    return d.conns.expires[i]! - clock.ms;
  };
  d.applySyncRecord(received({ caddr: A('198.18.5.1') }, 0));
  assert.equal(left('198.18.5.1'), 1_000_000); // ESTABLISHED here is 1000 s
  d.applySyncRecord(received({ caddr: A('198.18.5.2'), state: 5 }, 0));
  assert.equal(left('198.18.5.2'), 120_000); // TIME_WAIT
  d.applySyncRecord(received({ caddr: A('198.18.5.3'), protocol: IPPROTO_UDP, vport: 53, dport: 53, state: 0 }, 0));
  assert.equal(left('198.18.5.3'), 77_000);
  d.applySyncRecord(received({ caddr: A('198.18.5.4'), timeout: 0xffffffff }));
  assert.equal(left('198.18.5.4'), Math.floor(0xffffffff / 1000) * 1000);
  // templates: v0 has no timeout → 180 s; v1 carries it
  const tpl = (cport: number, version: 0 | 1) => received({ caddr: A('198.18.6.0'), cport, flags: CONN_F_TEMPLATE | FWD_DROUTE, state: 1, timeout: 300 }, version);
  d.applySyncRecord(tpl(0, 0));
  d.applySyncRecord(tpl(1, 1));
  const tpls = [...d.conns.entries()].filter((i) => d.conns.flags[i]! & CONN_F_TEMPLATE).map((i) => `${d.conns.cport[i]}:${d.conns.expires[i]! - clock.ms}`);
  assert.deepEqual(tpls.sort(), ['0:180000', '1:300000']);
});

test('templates: found by the template lookup, counted as persistent, and new conns of that client follow them', () => {
  const { d } = makeDirector();
  applyRules(d, `-A -t ${VIP} -s rr -p 300\n-a -t ${VIP} -r 198.19.0.2:80 -g\n-a -t ${VIP} -r 198.19.0.3:80 -g`);
  // the master's template sends the client network 198.18.5.5 to .3 (rr here would pick .3 or .2)
  const t = received({ cport: 0, vport: 80, dport: 80, daddr: A('198.19.0.3'), flags: CONN_F_TEMPLATE | FWD_DROUTE, state: 1, timeout: 300 });
  assert.equal(d.applySyncRecord(t), 'created');
  assert.equal(d.applySyncRecord(t), 'updated');
  const ds3 = dest(d, '198.19.0.3', 80);
  assert.equal(ds3.persistconns, 1);
  const tp = only(d);
  assert.equal(d.stateName(tp), 'ASSURED');
  for (let p = 0; p < 4; p++) {
    const c = new Client(d, `198.18.5.5:${41000 + p}`, VIP);
    c.in(TCP_SYN);
    assert.equal(c.server(), '198.19.0.3:80');
    assert.equal(d.conns.control[c.conn], tp);
  }
  // fwmark templates: protocol 0, the mark as the virtual address
  const fw = { af: 4 as const, protocol: IPPROTO_TCP, addr: '0.0.0.0', port: 0, fwmark: 7 };
  d.addService({ ...fw, schedName: 'rr', flags: SVC_F_PERSISTENT, timeout: 60, netmask: 0xffffffff });
  d.addDest(fw, { af: 4, addr: '198.19.0.9', port: 0, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0 });
  d.applySyncRecord(received({ protocol: IPPROTO_IP, cport: 0, vaddr: IpAddr.v4(7), vport: 0, dport: 0, fwmark: 7, daddr: A('198.19.0.9'), flags: CONN_F_TEMPLATE | FWD_DROUTE, state: 0, timeout: 60 }));
  assert.equal(d.table.get(fw).dests[0]!.persistconns, 1);
});

test('after fail-over the backup carries an established connection to the same real server', () => {
  // master: schedule, establish, sync; backup: apply; then the client's packets reach the backup
  const m = makeDirector();
  const b = makeDirector(7);
  const rules = `-A -t ${VIP} -s rr\n-a -t ${VIP} -r 198.19.0.2:80 -g\n-a -t ${VIP} -r 198.19.0.3:80 -g\n-a -t ${VIP} -r 198.19.0.4:80 -g`;
  applyRules(m.d, rules);
  applyRules(b.d, rules);
  const servers: string[] = [];
  for (let i = 0; i < 6; i++) {
    const c = new Client(m.d, `198.18.5.${i + 1}:40000`, VIP);
    c.in(TCP_SYN);
    c.in(TCP_ACK);
    c.in(TCP_ACK);
    servers.push(c.server());
    b.d.applySyncRecord(decodeMessage(encodeMessage(1, 0, [m.d.syncRecord(c.conn)])).records[0]!);
  }
  assert.deepEqual(new Set(servers).size, 3);
  for (let i = 0; i < 6; i++) {
    const c = new Client(b.d, `198.18.5.${i + 1}:40000`, VIP);
    assert.ok(c.in(TCP_ACK) >= 0);
    assert.equal(c.server(), servers[i]);
    assert.equal(b.d.stateName(c.conn), 'ESTABLISHED');
    c.in(TCP_FIN | TCP_ACK);
    assert.equal(b.d.stateName(c.conn), 'FIN_WAIT');
  }
  const total = (d: Director) => d.table.get(KEY).dests.map((x) => `${x.addr}:${x.activeconns}/${x.inactconns}`).sort();
  assert.deepEqual(total(b.d), ['198.19.0.2:0/2', '198.19.0.3:0/2', '198.19.0.4:0/2']);
});
