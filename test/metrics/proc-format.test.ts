// The /proc-format renderers against the golden captures of a real kernel (same table, same
// SYNs, same clock offsets), and parsed back against the director's snapshots.
//
// The kernel lists services and connection entries in hash-bucket order (it mixes in a pointer,
// so it changes every boot): ip_vs is compared as a set of service blocks (each block exact,
// real servers newest first), ip_vs_conn as a set of lines. Everything else is byte for byte,
// except ip_vs_stats whose numbers came from the recording's UDP burst: there the layout is
// checked against the golden and the bytes against a state we can reproduce.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpAddr } from '../../src/core/addr.js';
import { ManualClock } from '../../src/core/clock.js';
import { CONN_F_TEMPLATE, FWD_DROUTE, FWD_PROXY, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP } from '../../src/core/constants.js';
import { Director } from '../../src/core/director.js';
import { Flow } from '../../src/core/flow.js';
import type { ConnInfo, ServiceInfo } from '../../src/core/model.js';
import { TCP_ACK, TCP_SYN } from '../../src/core/proto/tcp.js';
import '../../src/core/schedulers/index.js';
import {
  HZ,
  hex8,
  IP_VS_CONN_HEADER,
  IP_VS_CONN_SYNC_HEADER,
  ipv6Full,
  procConnLine,
  procConnSyncLine,
  procServiceLine,
  renderIpVs,
  renderIpVsApp,
  renderIpVsConn,
  renderIpVsConnSync,
  renderIpVsStats,
  renderIpVsStatsPercpu,
} from '../../src/metrics/proc-format.js';
import { renderConnSlice } from '../../src/metrics/proc-writer.js';
import { Client } from '../helpers/director.js';
import { golden, goldenDirector, HAVE_GOLDENS, ipvsadm } from './golden-table.js';
import { parseIpVs, parseIpVsConn, parseIpVsStats } from './proc-parse.js';
import { LocalApi } from '../../src/control/local-api.js';

const skip = HAVE_GOLDENS ? false : 'golden captures not found (test/fixtures/golden/ipvsadm)';

function blocks(text: string): { head: string; blocks: string[] } {
  const lines = text.split('\n');
  const out: string[] = [];
  for (const l of lines.slice(3)) {
    if (l.startsWith('  ->') && out.length) out[out.length - 1] += `\n${l}`;
    else out.push(l);
  }
  return { head: lines.slice(0, 3).join('\n'), blocks: out.sort() };
}

function sortedLines(text: string): { head: string; lines: string[] } {
  const lines = text.split('\n');
  return { head: lines[0]!, lines: lines.slice(1).sort() };
}

test('proc_ip_vs_empty: an empty table, byte for byte', { skip }, () => {
  const d = new Director({ now: new ManualClock(0).now });
  assert.equal(renderIpVs(d.info(), d.serviceInfos()), golden('proc_ip_vs_empty'));
});

test('proc_ip_vs: every service block of the golden table, byte for byte (kernel hash order aside)', { skip, timeout: 30_000 }, async () => {
  const { director } = await goldenDirector();
  const mine = renderIpVs(director.info(), director.serviceInfos());
  const want = golden('proc_ip_vs');
  const a = blocks(mine);
  const b = blocks(want);
  assert.equal(a.head, b.head);
  assert.deepEqual(a.blocks, b.blocks);
  // address services before fwmark services, as the kernel's two tables are listed
  const kinds = mine.split('\n').filter((l) => l && !l.startsWith(' ') && !l.startsWith('IP ') && !l.startsWith('Prot'));
  const firstFwm = kinds.findIndex((l) => l.startsWith('FWM'));
  assert.ok(firstFwm > 0 && kinds.slice(firstFwm).every((l) => l.startsWith('FWM')));
});

test('proc_ip_vs_conn and proc_ip_vs_conn_sync: the recorded entries, byte for byte', { skip, timeout: 30_000 }, async () => {
  const { director } = await goldenDirector();
  const conns = director.connInfos();
  const [fast, fastSync] = renderConnSlice(director, 0, director.conns.high);
  assert.equal(IP_VS_CONN_HEADER + fast, renderIpVsConn(conns), 'fast path = pure renderer');
  assert.equal(IP_VS_CONN_SYNC_HEADER + fastSync, renderIpVsConnSync(conns), 'fast path = pure renderer (sync)');
  for (const [name, text] of [
    ['proc_ip_vs_conn', renderIpVsConn(conns)],
    ['proc_ip_vs_conn_sync', renderIpVsConnSync(conns)],
  ] as const) {
    const a = sortedLines(text);
    const b = sortedLines(golden(name));
    assert.equal(a.head, b.head, name);
    assert.deepEqual(a.lines, b.lines, name);
  }
});

test('proc_ip_vs_app: the header alone', { skip }, () => {
  assert.equal(renderIpVsApp(), golden('proc_ip_vs_app'));
});

test('proc_ip_vs_stats: the golden layout, and exact bytes for a reproducible state', { skip, timeout: 30_000 }, async () => {
  const want = golden('proc_ip_vs_stats').split('\n');
  const zero = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  const zr = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
  const empty = renderIpVsStats(zero, zr).split('\n');
  assert.equal(empty.length, want.length);
  for (const i of [0, 1, 3, 4]) assert.equal(empty[i], want[i], `line ${i + 1}`);
  // value rows: %8LX %8LX %8LX %16LX %16LX — same column ends as the golden's
  const ends = (l: string) => [...l.matchAll(/\S+/g)].map((m) => m.index! + m[0].length);
  for (const i of [2, 5]) assert.deepEqual(ends(empty[i]!), ends(want[i]!), `columns of line ${i + 1}`);
  // the golden's own numbers render back to the golden's bytes
  const g = parseIpVsStats(golden('proc_ip_vs_stats'));
  const [cps, inpps, outpps, inbps, outbps] = g.rates as [number, number, number, number, number];
  assert.equal(renderIpVsStats(g, { cps, inpps, outpps, inbps, outbps }), golden('proc_ip_vs_stats'));

  const { director } = await goldenDirector();
  const st = director.totalStats.counters();
  assert.deepEqual(st, { conns: 9, inpkts: 18, outpkts: 0, inbytes: 18 * 60, outbytes: 0 });
  const r = director.totalStats.rates();
  const text = renderIpVsStats(st, r);
  assert.equal(
    text,
    '   Total Incoming Outgoing         Incoming         Outgoing\n' +
      '   Conns  Packets  Packets            Bytes            Bytes\n' +
      '       9       12        0              438                0\n\n' +
      ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
      `${r.cps.toString(16).toUpperCase().padStart(8)} ${r.inpps.toString(16).toUpperCase().padStart(8)}        0 ${r.inbps.toString(16).toUpperCase().padStart(16)}                0\n`,
  );
  const back = parseIpVsStats(text);
  assert.deepEqual([back.conns, back.inpkts, back.outpkts, back.inbytes, back.outbytes], [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes]);
  assert.deepEqual(back.rates, [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]);
});

test('proc_ip_vs_stats_percpu: the golden bytes from the golden numbers (one CPU per row)', { skip }, () => {
  const want = golden('proc_ip_vs_stats_percpu');
  const g = parseIpVsStats(golden('proc_ip_vs_stats'));
  const [cps, inpps, outpps, inbps, outbps] = g.rates as [number, number, number, number, number];
  // the golden VM had two CPUs, the second idle
  assert.equal(renderIpVsStatsPercpu(g, { cps, inpps, outpps, inbps, outbps }, 2), want);
  const one = renderIpVsStatsPercpu(g, { cps, inpps, outpps, inbps, outbps });
  assert.equal(one, want.replace(/^ {2}1 .*\n/m, ''));
});

test('ip_vs parsed back gives the director snapshot (addresses, ports, methods, weights, counts, persistence)', { skip, timeout: 30_000 }, async () => {
  const { director } = await goldenDirector();
  const infos = director.serviceInfos();
  const parsed = parseIpVs(renderIpVs(director.info(), infos));
  assert.equal(parsed.version, '1.2.1');
  assert.equal(parsed.size, 4096);
  assert.equal(parsed.services.length, infos.length);
  const byKey = new Map(parsed.services.map((s) => [s.fwmark ? `fwm:${s.fwmark}` : `${s.proto}:${s.addr}:${s.port}`, s]));
  for (const s of infos) {
    const proto = s.protocol === IPPROTO_UDP ? 'UDP' : s.protocol === 132 ? 'SCTP' : 'TCP';
    const p = byKey.get(s.fwmark ? `fwm:${s.fwmark}` : `${proto}:${s.addr}:${s.port}`);
    assert.ok(p, `service ${s.addr}:${s.port}/${s.fwmark}`);
    assert.equal(p.sched, s.schedName);
    assert.equal(p.persistentJiffies, s.flags & 1 ? s.timeout * HZ : undefined);
    assert.deepEqual(
      p.dests.map((d) => [d.addr, d.port, d.weight, d.active, d.inactive, d.forward]),
      s.dests.map((d) => [d.addr, d.port, d.weight, d.activeConns, d.inactConns, (d.connFlags & 7) === FWD_TUNNEL ? 'Tunnel' : (d.connFlags & 7) === FWD_DROUTE ? 'Route' : 'Masq']),
    );
  }
});

test('ip_vs_conn parsed back gives the director entries', { skip, timeout: 30_000 }, async () => {
  const { director } = await goldenDirector();
  const conns = director.connInfos();
  const parsed = parseIpVsConn(renderIpVsConn(conns));
  assert.deepEqual(
    parsed.map((p) => [p.proto, p.caddr, p.cport, p.vaddr, p.vport, p.daddr, p.dport, p.state, p.expires]),
    conns.map((c) => [c.protocol === IPPROTO_TCP ? 'TCP' : 'UDP', c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport, c.state, Math.floor(c.expiresMs / 1000)]),
  );
  const sync = parseIpVsConn(renderIpVsConnSync(conns));
  assert.ok(sync.every((s) => s.origin === 'LOCAL'));
});

test('IPv6 entries and a mixed-family tunnel print %pI6 in full; fwmark templates print the mark', { timeout: 30_000 }, async () => {
  const clock = new ManualClock(5_000_000);
  const d = new Director({ now: clock.now });
  const api = new LocalApi(d);
  await ipvsadm(api, '-A -t [2001:db8::80]:80 -s rr');
  await ipvsadm(api, '-a -t [2001:db8::80]:80 -r [2001:db8::a0a0]:8080 -m -w 3');
  await ipvsadm(api, '-A -t 198.18.0.4:80 -s rr');
  await ipvsadm(api, '-a -t 198.18.0.4:80 -r [2001:db8::c]:80 -i');
  await ipvsadm(api, '-A -f 1 -s rr -p 60');
  await ipvsadm(api, '-a -f 1 -r 198.19.0.6 -g');

  new Client(d, '[2001:db8:1::5]:40000', '[2001:db8::80]:80').in(TCP_SYN);
  new Client(d, '198.18.9.9:40001', '198.18.0.4:80').in(TCP_SYN);
  const f = new Flow();
  f.protocol = IPPROTO_TCP;
  f.setSource(IpAddr.parse('198.18.9.9'), 40002).setDest(IpAddr.parse('198.18.0.50'), 443);
  f.mark = 1;
  assert.ok(d.inPacket(f, TCP_SYN, 60) >= 0);
  clock.advance(1500);

  const lines = renderIpVsConn(d.connInfos()).split('\n').slice(1, -1).sort();
  assert.deepEqual(lines, [
    'IP  C6120909 0000 00000001 0000 C6130006 0000 NONE             58',
    'TCP 2001:0db8:0001:0000:0000:0000:0000:0005 9C40 2001:0db8:0000:0000:0000:0000:0000:0080 0050 2001:0db8:0000:0000:0000:0000:0000:a0a0 1F90 SYN_RECV         58',
    'TCP C6120909 9C41 C6120004 0050 2001:0db8:0000:0000:0000:0000:0000:000c 0050 SYN_RECV         58',
    'TCP C6120909 9C42 C6120032 01BB C6130006 01BB SYN_RECV         58',
  ]);
  // the writer's fast path (straight from the table's columns) prints the same bytes
  const [fast, fastSync] = renderConnSlice(d, 0, d.conns.high);
  assert.equal(IP_VS_CONN_HEADER + fast, renderIpVsConn(d.connInfos()));
  assert.equal(IP_VS_CONN_SYNC_HEADER + fastSync, renderIpVsConnSync(d.connInfos()));
  const proc = renderIpVs(d.info(), d.serviceInfos());
  assert.match(proc, /^TCP {2}\[2001:0db8:0000:0000:0000:0000:0000:0080\]:0050 rr \n {2}-> \[2001:0db8:0000:0000:0000:0000:0000:a0a0\]:1F90 {6}Masq {4}3 {6}1 {10}0 {9}\n/m);
  assert.match(proc, /^TCP {2}C6120004:0050 rr {2}\n {2}-> \[2001:0db8:0000:0000:0000:0000:0000:000c\]:0050 {6}Tunnel {2}1 {6}1 {10}0 {9}\n/m);
  assert.match(proc, /^FWM {2}00000001 rr persistent 15000 FFFFFFFF\n/m);
});

test('service lines: flags, persistence in jiffies, netmasks, no scheduler, proxy shown as Masq', () => {
  const base: ServiceInfo = {
    af: 4,
    protocol: IPPROTO_UDP,
    addr: '10.1.2.3',
    port: 53,
    fwmark: 0,
    schedName: 'sh',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    peName: '',
    proxyProtocol: 0,
    dests: [],
    stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
    rates: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
  };
  assert.equal(procServiceLine(base), 'UDP  0A010203:0035 sh  \n');
  assert.equal(procServiceLine({ ...base, flags: 4 }), 'UDP  0A010203:0035 sh ops  \n');
  assert.equal(procServiceLine({ ...base, flags: 5, timeout: 60, netmask: 0xffffff00 }), 'UDP  0A010203:0035 sh ops  persistent 15000 FFFFFF00\n');
  assert.equal(procServiceLine({ ...base, schedName: 'none' }), 'UDP  0A010203:0035 none  \n');
  assert.equal(procServiceLine({ ...base, af: 6, addr: '2001:db8::1', netmask: 128, flags: 1, timeout: 1 }), 'UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 sh persistent 250 80000000\n');
  assert.equal(procServiceLine({ ...base, fwmark: 0xffffffff, flags: 4 }), 'FWM  FFFFFFFF sh ops \n');
  const dest = { ...base, dests: [{ af: 4 as const, addr: '127.0.0.1', port: 8080, connFlags: FWD_PROXY, weight: 1, uThreshold: 0, lThreshold: 0, activeConns: 12, inactConns: 3, persistConns: 0, tunType: 0, tunPort: 0, tunFlags: 0, flags: 1, stats: base.stats, rates: base.rates }] };
  assert.match(renderIpVs({ connTabSize: 4096 }, [dest]), / {2}-> 7F000001:1F90 {6}Masq {4}1 {6}12 {9}3 {9}\n$/);
  assert.equal(hex8(-1), 'FFFFFFFF');
  assert.equal(ipv6Full(IpAddr.parse('::1')), '0000:0000:0000:0000:0000:0000:0000:0001');
});

test('connection lines: PE data, sync origin, expiry rounding', () => {
  const c: ConnInfo = {
    af: 4,
    protocol: IPPROTO_UDP,
    caddr: '203.0.113.5',
    cport: 5060,
    vaddr: '10.0.0.4',
    vport: 5060,
    daddr: '192.168.1.7',
    dport: 5060,
    daf: 4,
    fwmark: 0,
    flags: CONN_F_TEMPLATE,
    state: 'UDP',
    expiresMs: 1799_999,
    timeout: 1800,
    peName: 'sip',
    peData: 'abc@host',
  };
  assert.equal(procConnLine(c), 'UDP CB007105 13C4 0A000004 13C4 C0A80107 13C4 UDP            1799 sip abc@host\n');
  assert.equal(procConnLine({ ...c, peData: '', expiresMs: -5 }), 'UDP CB007105 13C4 0A000004 13C4 C0A80107 13C4 UDP               0\n');
  assert.equal(procConnSyncLine({ ...c, flags: 0x20 }), 'UDP CB007105 13C4 0A000004 13C4 C0A80107 13C4 UDP         SYNC      1799\n');
  void TCP_ACK;
});
