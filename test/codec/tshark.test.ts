// tshark as an independent witness: frames built or rewritten by the codec are written to a
// pcap and must decode as intended with every checksum validated "good" (status 1).

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import {
  buildArpReplyTo,
  buildArpRequest,
  buildIcmpErrorFrame,
  buildNeighborAdvertReply,
  buildNeighborSolicit,
  decrementTtl4,
  encapsulate,
  IcmpErrorKind,
  icmpEchoToReply,
  natIcmpIn,
  natIcmpOut,
  natRewriteDest,
  natRewriteSource,
  ND_NA_OVERRIDE,
  PacketInfo,
  parseFrame,
  parseIcmpError,
  parseNeighborDiscovery,
  prependEthernet,
  Reason,
  setMacAddresses,
  TUNNEL_ENCAP_FLAG_CSUM,
  TunnelSpec,
  TunnelType,
} from '../../src/codec/index.js';
import { addr, frame4, frame6, icmpEcho, icmpMessage, ipv4, ipv6, MAC_CLIENT, MAC_DIRECTOR, MAC_SERVER, sctp, tcp, udp } from './packets.js';
import { tsharkFields, tsharkUnavailable } from './pcap.js';

const FIELDS = [
  'frame.number',
  'vlan.id',
  'ip.proto',
  'ip.checksum.status',
  'ipv6.nxt',
  'tcp.checksum.status',
  'udp.checksum.status',
  'sctp.checksum.status',
  'gre.checksum.status',
  'gre.proto',
  'icmp.type',
  'icmp.code',
  'icmp.checksum.status',
  'icmp.mtu',
  'icmpv6.type',
  'icmpv6.code',
  'icmpv6.checksum.status',
  'icmpv6.mtu',
  'arp.opcode',
  'icmpv6.nd.na.flag.s',
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  'tcp.dstport',
  'udp.dstport',
  'ip.ttl',
  'ip.flags.df',
  '_ws.malformed',
  '_ws.expert.severity',
] as const;
type Field = (typeof FIELDS)[number];

const info = new PacketInfo();
const inner = new PacketInfo();
const frames: { name: string; bytes: Uint8Array }[] = [];
const expect: Record<string, Partial<Record<Field, string>>> = {};

function add(name: string, bytes: Uint8Array, want: Partial<Record<Field, string>>): void {
  frames.push({ name, bytes: Uint8Array.from(bytes) });
  expect[name] = want;
}

function parsed(f: Uint8Array, off = 0, end = f.length): Uint8Array {
  assert.equal(parseFrame(f, off, end, info), Reason.Ok);
  return f;
}

function natFrames(): void {
  const t4 = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(40000, 80, { payload: [...'GET / HTTP/1.0\r\n\r\n'].map((c) => c.charCodeAt(0)) })));
  decrementTtl4(t4, info);
  natRewriteDest(t4, info, addr('10.0.0.5'), 8080);
  setMacAddresses(t4, 0, MAC_SERVER, MAC_DIRECTOR);
  add('dnat tcp4', t4, { 'ip.dst': '10.0.0.5', 'tcp.dstport': '8080', 'ip.ttl': '63', 'ip.checksum.status': '1', 'tcp.checksum.status': '1' });

  const s4 = parsed(frame4({ src: '10.0.0.5', dst: '203.0.113.9' }, tcp(8080, 40000, { flags: 0x12 }), 100));
  natRewriteSource(s4, info, addr('192.0.2.10'), 80);
  add('snat tcp4 vlan', s4, { 'vlan.id': '100', 'ip.src': '192.0.2.10', 'ip.checksum.status': '1', 'tcp.checksum.status': '1' });

  const u0 = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(40001, 20053, [1, 2, 3, 4, 5], true)));
  natRewriteDest(u0, info, addr('10.0.0.5'), 20054);
  add('dnat udp4 zero checksum', u0, { 'udp.dstport': '20054', 'ip.checksum.status': '1', 'udp.checksum.status': '1' });

  const u6 = parsed(frame6({ src: '2001:db8:c::9', dst: '2001:db8::80' }, udp(40001, 20053, [9, 8, 7])));
  natRewriteDest(u6, info, addr('2001:db8:5::5'), 20054);
  add('dnat udp6', u6, { 'ipv6.dst': '2001:db8:5::5', 'udp.checksum.status': '1' });

  const t6 = parsed(frame6({ src: '2001:db8:5::5', dst: '2001:db8:c::9' }, tcp(8443, 50000, { payload: [1, 2, 3] })));
  natRewriteSource(t6, info, addr('2001:db8::80'), 443);
  add('snat tcp6', t6, { 'ipv6.src': '2001:db8::80', 'tcp.checksum.status': '1' });

  const sc = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, sctp(2905, 2905, [1, 2, 3, 4, 5, 6, 7, 8])));
  natRewriteDest(sc, info, addr('10.0.0.5'), 2906);
  add('dnat sctp4', sc, { 'ip.checksum.status': '1', 'sctp.checksum.status': '1' });
}

function tunnelFrames(): void {
  const cases: [string, TunnelSpec, boolean, Partial<Record<Field, string>>][] = [
    ['ipip 4in4', new TunnelSpec(TunnelType.Ipip, 4, addr('10.0.0.254'), addr('10.0.0.5')), false, { 'ip.proto': '4,6', 'ip.checksum.status': '1,1', 'tcp.checksum.status': '1', 'ip.flags.df': '1,1' }],
    ['ipip 6in4', new TunnelSpec(TunnelType.Ipip, 4, addr('10.0.0.254'), addr('10.0.0.5')), true, { 'ip.proto': '41', 'ipv6.nxt': '6', 'ip.checksum.status': '1', 'tcp.checksum.status': '1', 'ip.flags.df': '0' }],
    ['ipip 4in6', new TunnelSpec(TunnelType.Ipip, 6, addr('2001:db8:1::fe'), addr('2001:db8:1::5')), false, { 'ipv6.nxt': '4', 'ip.proto': '6', 'tcp.checksum.status': '1' }],
    ['gre csum', new TunnelSpec(TunnelType.Gre, 4, addr('10.0.0.254'), addr('10.0.0.5'), 0, TUNNEL_ENCAP_FLAG_CSUM), false, { 'ip.proto': '47,6', 'gre.checksum.status': '1', 'gre.proto': '0x0800', 'tcp.checksum.status': '1' }],
    ['gre plain v6 inner', new TunnelSpec(TunnelType.Gre, 4, addr('10.0.0.254'), addr('10.0.0.5')), true, { 'ip.proto': '47', 'gre.proto': '0x86dd', 'tcp.checksum.status': '1' }],
    ['gue csum', new TunnelSpec(TunnelType.Gue, 4, addr('10.0.0.254'), addr('10.0.0.5'), 6080, TUNNEL_ENCAP_FLAG_CSUM), false, { 'ip.proto': '17', 'udp.dstport': '6080', 'udp.checksum.status': '1', 'ip.checksum.status': '1' }],
    ['gue v6 outer', new TunnelSpec(TunnelType.Gue, 6, addr('2001:db8:1::fe'), addr('2001:db8:1::5'), 6080, TUNNEL_ENCAP_FLAG_CSUM), false, { 'ipv6.nxt': '17', 'udp.dstport': '6080', 'udp.checksum.status': '1' }],
  ];
  for (const [name, spec, inner6, want] of cases) {
    const client = inner6
      ? frame6({ src: '2001:db8:c::9', dst: '2001:db8::80' }, tcp(40000, 80, { payload: [1, 2, 3, 4] }))
      : frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(40000, 80, { payload: [1, 2, 3, 4] }));
    // Stage the IP packet with headroom, as the transmitter copies it into a TX slot.
    const b = new Uint8Array(128 + client.length);
    b.set(client.subarray(14), 128);
    const end = 128 + client.length - 14;
    parsed(Uint8Array.from(client));
    const l3 = new PacketInfo();
    assert.equal(parseFrame(client, 0, client.length, l3), Reason.Ok);
    l3.l3off = 128;
    l3.ipEnd = end;
    const at = encapsulate(b, l3, spec, 0x77, 54321);
    assert.ok(at >= 0);
    const start = prependEthernet(b, at, MAC_SERVER, MAC_DIRECTOR, spec.outerVersion === 4 ? 0x0800 : 0x86dd);
    add(name, b.subarray(start, end), want);
  }
}

function icmpFrames(): void {
  const out = new Uint8Array(2000);
  const v4src = addr('192.0.2.10');
  const v6src = addr('2001:db8::80');
  const o4 = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(40000, 53, [1, 2, 3])));
  let n = buildIcmpErrorFrame(out, 0, out.length, o4, info, IcmpErrorKind.PortUnreachable, 0, v4src, 1, MAC_DIRECTOR);
  add('port unreachable v4', out.subarray(0, n), { 'icmp.type': '3', 'icmp.code': '3', 'icmp.checksum.status': '1', 'ip.checksum.status': '1,1', 'udp.checksum.status': '1' });

  const big = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(40000, 80, { payload: new Array(1400).fill(0x41) })));
  n = buildIcmpErrorFrame(out, 0, out.length, big, info, IcmpErrorKind.FragNeeded, 1400, v4src, 2, MAC_DIRECTOR);
  add('frag needed v4', out.subarray(0, n), { 'icmp.type': '3', 'icmp.code': '4', 'icmp.mtu': '1400', 'icmp.checksum.status': '1' });

  const ttl1 = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: 1 }, tcp(40000, 80)));
  n = buildIcmpErrorFrame(out, 0, out.length, ttl1, info, IcmpErrorKind.TimeExceeded, 0, v4src, 3, MAC_DIRECTOR);
  add('time exceeded v4', out.subarray(0, n), { 'icmp.type': '11', 'icmp.code': '0', 'icmp.checksum.status': '1', 'ip.checksum.status': '1,1' });

  const o6 = parsed(frame6({ src: '2001:db8:c::9', dst: '2001:db8::80' }, udp(40000, 53, [1, 2, 3])));
  n = buildIcmpErrorFrame(out, 0, out.length, o6, info, IcmpErrorKind.PortUnreachable, 0, v6src, 0, MAC_DIRECTOR);
  add('port unreachable v6', out.subarray(0, n), { 'icmpv6.type': '1', 'icmpv6.code': '4', 'icmpv6.checksum.status': '1' });

  const big6 = parsed(frame6({ src: '2001:db8:c::9', dst: '2001:db8::80' }, tcp(40000, 80, { payload: new Array(1400).fill(0x41) })));
  n = buildIcmpErrorFrame(out, 0, out.length, big6, info, IcmpErrorKind.FragNeeded, 1280, v6src, 0, MAC_DIRECTOR);
  add('packet too big v6', out.subarray(0, n), { 'icmpv6.type': '2', 'icmpv6.mtu': '1280', 'icmpv6.checksum.status': '1' });

  n = buildIcmpErrorFrame(out, 0, out.length, o6, info, IcmpErrorKind.TimeExceeded, 0, v6src, 0, MAC_DIRECTOR);
  add('time exceeded v6', out.subarray(0, n), { 'icmpv6.type': '3', 'icmpv6.checksum.status': '1' });

  // §7.1: the client side reports about our reply; translated for the real server.
  const q = ipv4({ src: '192.0.2.10', dst: '203.0.113.9' }, tcp(80, 40000, { payload: new Array(40).fill(1) })).slice(0, 28);
  const in4 = parsed(frame4({ src: '198.51.100.1', dst: '192.0.2.10' }, icmpMessage(false, 3, 4, 1400, q)));
  assert.equal(parseIcmpError(in4, info, inner), Reason.Ok);
  natIcmpIn(in4, info, inner, addr('10.0.0.5'), 8080);
  add('icmp nat in v4', in4, { 'ip.dst': '10.0.0.5,203.0.113.9', 'ip.src': '198.51.100.1,10.0.0.5', 'icmp.checksum.status': '1', 'ip.checksum.status': '1,1' });

  // §7.2: a real server reports about the client's request; translated to come from the VIP.
  const q6 = ipv6({ src: '2001:db8:c::9', dst: '2001:db8:5::5' }, udp(40000, 5353, [1, 2, 3]));
  const out6 = parsed(frame6({ src: '2001:db8:5::5', dst: '2001:db8:c::9' }, icmpMessage(true, 1, 4, 0, q6)));
  assert.equal(parseIcmpError(out6, info, inner), Reason.Ok);
  natIcmpOut(out6, info, inner, addr('2001:db8::80'), 53);
  add('icmp nat out v6', out6, { 'ipv6.src': '2001:db8::80,2001:db8:c::9', 'ipv6.dst': '2001:db8:c::9,2001:db8::80', 'icmpv6.checksum.status': '1' });

  const e4 = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, icmpEcho(false, 7, 1, [1, 2, 3, 4])));
  icmpEchoToReply(e4, info);
  add('echo reply v4', e4, { 'icmp.type': '0', 'icmp.checksum.status': '1', 'ip.checksum.status': '1', 'ip.src': '192.0.2.10' });
  const e6 = parsed(frame6({ src: '2001:db8:c::9', dst: '2001:db8::80' }, icmpEcho(true, 7, 1, [1, 2, 3, 4])));
  icmpEchoToReply(e6, info);
  add('echo reply v6', e6, { 'icmpv6.type': '129', 'icmpv6.checksum.status': '1' });
}

function neighbourFrames(): void {
  const req = new Uint8Array(60);
  const n = buildArpRequest(req, 0, 60, MAC_CLIENT, addr('10.0.0.1').w0, addr('10.0.0.100').w0);
  add('arp request', req.subarray(0, n), { 'arp.opcode': '1' });
  parsed(req, 0, n);
  const rep = new Uint8Array(60);
  const m = buildArpReplyTo(rep, 0, 60, req, info, MAC_DIRECTOR);
  add('arp reply', rep.subarray(0, m), { 'arp.opcode': '2' });

  const ns = new Uint8Array(100);
  const k = buildNeighborSolicit(ns, 0, 100, MAC_CLIENT, addr('2001:db8::1'), addr('2001:db8::80'));
  add('neighbour solicitation', ns.subarray(0, k), { 'icmpv6.type': '135', 'icmpv6.checksum.status': '1' });
  parsed(ns, 0, k);
  assert.equal(parseNeighborDiscovery(ns, info), Reason.Ok);
  const na = new Uint8Array(100);
  const j = buildNeighborAdvertReply(na, 0, 100, ns, info, MAC_DIRECTOR, ND_NA_OVERRIDE);
  add('neighbour advertisement', na.subarray(0, j), { 'icmpv6.type': '136', 'icmpv6.checksum.status': '1', 'icmpv6.nd.na.flag.s': '1' });
}

describe('tshark decodes what the codec builds', () => {
  let skip: string | null = null;
  let rows: string[][] = [];

  before(() => {
    skip = tsharkUnavailable();
    if (skip) return;
    natFrames();
    tunnelFrames();
    icmpFrames();
    neighbourFrames();
    rows = tsharkFields(
      frames.map((f) => f.bytes),
      [...FIELDS],
    );
  });

  it('every frame: fields as intended, checksums good, nothing malformed', (t) => {
    if (skip) {
      t.skip(skip);
      return;
    }
    assert.equal(rows.length, frames.length);
    const problems: string[] = [];
    frames.forEach((f, i) => {
      const row = rows[i]!;
      const got = (field: Field) => row[FIELDS.indexOf(field)] ?? '';
      for (const [field, value] of Object.entries(expect[f.name]!)) {
        if (got(field as Field) !== value) problems.push(`${f.name}: ${field} = ${JSON.stringify(got(field as Field))}, want ${JSON.stringify(value)}`);
      }
      if (got('_ws.malformed') !== '') problems.push(`${f.name}: ${got('_ws.malformed')}`);
      // No checksum reported bad (status 0). Transport checksums quoted inside ICMP errors are
      // exempt: a quote is cut short, and NAT leaves the quoted one stale as the kernel does.
      const quoting = got('icmp.type') !== '' || got('icmpv6.type') !== '';
      for (const field of FIELDS.filter((x) => x.includes('checksum') && !(quoting && /^(tcp|udp|sctp)\./.test(x)))) {
        if (got(field).split(',').includes('0')) problems.push(`${f.name}: ${field} = ${got(field)} (bad)`);
      }
    });
    assert.deepEqual(problems, []);
  });
});
