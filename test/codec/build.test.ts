import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ARPOP_REPLY,
  ARPOP_REQUEST,
  buildArpReply,
  buildArpReplyTo,
  buildArpRequest,
  buildIcmpError,
  buildIcmpErrorFrame,
  buildNeighborAdvert,
  buildNeighborAdvertReply,
  buildNeighborSolicit,
  formatMac,
  ICMP_QUOTE_MAX_V4,
  ICMP_QUOTE_MAX_V6,
  IcmpErrorKind,
  icmpEchoToReply,
  ND_NA_OVERRIDE,
  ND_NA_ROUTER,
  ND_NA_SOLICITED,
  PacketInfo,
  parseFrame,
  parseIcmpError,
  parseIp,
  parseMac,
  parseNeighborDiscovery,
  prependEthernet,
  Reason,
  setMacAddresses,
  writeEthernet,
} from '../../src/codec/index.js';
import {
  addr,
  ether,
  fragmentExt,
  frame4,
  frame6,
  hex,
  icmpEcho,
  icmpMessage,
  ipv4,
  ipv6,
  MAC_CLIENT,
  MAC_DIRECTOR,
  MAC_SERVER,
  refChecksum,
  refSum,
  tcp,
  udp,
  v4,
  v6bytes,
} from './packets.js';

const info = new PacketInfo();
const other = new PacketInfo();

function parsed(f: Uint8Array): Uint8Array {
  assert.equal(parseFrame(f, 0, f.length, info), Reason.Ok);
  return f;
}

describe('Ethernet writers', () => {
  it('write, prepend and rewrite MACs', () => {
    const b = new Uint8Array(64);
    assert.equal(writeEthernet(b, 2, 64, MAC_SERVER, MAC_DIRECTOR, 0x0800), 14);
    assert.equal(formatMac(b, 2), '02:00:00:00:00:03');
    assert.equal(formatMac(b, 8), '02:00:00:00:00:02');
    assert.equal(writeEthernet(b, 0, 64, MAC_SERVER, MAC_DIRECTOR, 0x86dd, 42), 18);
    assert.equal(hex(b, 12, 6), '8100002a86dd');
    assert.equal(writeEthernet(b, 60, 64, MAC_SERVER, MAC_DIRECTOR, 0x0800), Reason.NoRoom);
    assert.equal(prependEthernet(b, 20, MAC_SERVER, MAC_DIRECTOR, 0x0800), 6);
    assert.equal(prependEthernet(b, 10, MAC_SERVER, MAC_DIRECTOR, 0x0800), Reason.NoRoom);
    setMacAddresses(b, 6, MAC_CLIENT, MAC_SERVER);
    assert.equal(formatMac(b, 6), '02:00:00:00:00:01');
    assert.equal(formatMac(b, 12), '02:00:00:00:00:03');
    assert.equal(formatMac(parseMac('AA-bb-cc-00-11-22')!), 'aa:bb:cc:00:11:22');
    assert.equal(parseMac('aa:bb:cc:00:11'), null);
  });
});

describe('ARP builders', () => {
  it('build a request that parses back, and a gratuitous one', () => {
    const b = new Uint8Array(64);
    const n = buildArpRequest(b, 0, b.length, MAC_DIRECTOR, v4('10.0.0.254'), v4('10.0.0.5'));
    assert.equal(n, 42);
    assert.equal(parseFrame(b, 0, n, info), Reason.Ok);
    assert.equal(info.arpOp, ARPOP_REQUEST);
    assert.equal(info.arpSenderIp, v4('10.0.0.254'));
    assert.equal(info.arpTargetIp, v4('10.0.0.5'));
    assert.equal(formatMac(b, 0), 'ff:ff:ff:ff:ff:ff');
    assert.equal(hex(b, 14 + 18, 6), '000000000000');
    const vlan = buildArpRequest(b, 0, b.length, MAC_DIRECTOR, v4('10.0.0.254'), v4('10.0.0.254'), 7);
    assert.equal(vlan, 46);
    assert.equal(parseFrame(b, 0, vlan, info), Reason.Ok);
    assert.equal(info.vlanTci, 7);
    assert.equal(info.arpTargetIp, info.arpSenderIp);
    assert.equal(buildArpRequest(b, 30, b.length, MAC_DIRECTOR, 1, 2), Reason.NoRoom);
  });

  it('answer a request for a VIP', () => {
    const req = new Uint8Array(42);
    buildArpRequest(req, 0, 42, MAC_CLIENT, v4('10.0.0.1'), v4('10.0.0.100'));
    parseFrame(req, 0, 42, other);
    const out = new Uint8Array(60);
    const n = buildArpReplyTo(out, 0, out.length, req, other, MAC_DIRECTOR);
    assert.equal(n, 42);
    assert.equal(parseFrame(out, 0, n, info), Reason.Ok);
    assert.equal(info.arpOp, ARPOP_REPLY);
    assert.equal(info.arpSenderIp, v4('10.0.0.100'));
    assert.equal(info.arpTargetIp, v4('10.0.0.1'));
    assert.equal(formatMac(out, 0), formatMac(MAC_CLIENT));
    assert.equal(formatMac(out, 14 + 8), formatMac(MAC_DIRECTOR));
    assert.equal(formatMac(out, 14 + 18), formatMac(MAC_CLIENT));
    const same = new Uint8Array(42);
    buildArpReply(same, 0, 42, MAC_DIRECTOR, v4('10.0.0.100'), MAC_CLIENT, v4('10.0.0.1'));
    assert.equal(hex(same), hex(out, 0, 42));
    assert.equal(buildArpReplyTo(out, 0, out.length, out, info, MAC_DIRECTOR), Reason.BadArp);
  });
});

describe('neighbour discovery', () => {
  const me = addr('2001:db8::fe');
  const vip = addr('2001:db8::80');

  it('NS -> parse -> NA reply -> parse', () => {
    const ns = new Uint8Array(100);
    const n = buildNeighborSolicit(ns, 0, ns.length, MAC_CLIENT, addr('2001:db8::1'), vip);
    assert.equal(n, 86);
    assert.equal(hex(ns, 0, 6), '3333ff000080');
    assert.equal(parseFrame(ns, 0, n, other), Reason.Ok);
    assert.equal(other.icmpType, 135);
    assert.equal(hex(ns, other.daddrOff, 16), 'ff0200000000000000000001ff000080');
    assert.equal(parseNeighborDiscovery(ns, other), Reason.Ok);
    assert.equal(hex(ns, other.ndTargetOff, 16), hex(Uint8Array.from(v6bytes('2001:db8::80'))));
    assert.equal(formatMac(ns, other.ndLinkAddrOff), formatMac(MAC_CLIENT));

    const na = new Uint8Array(100);
    const m = buildNeighborAdvertReply(na, 0, na.length, ns, other, MAC_DIRECTOR, ND_NA_OVERRIDE | ND_NA_ROUTER);
    assert.equal(m, 86);
    assert.equal(parseFrame(na, 0, m, info), Reason.Ok);
    assert.equal(parseNeighborDiscovery(na, info), Reason.Ok);
    assert.equal(info.icmpType, 136);
    assert.equal(info.ttl, 255);
    assert.equal(info.ndFlags, ND_NA_OVERRIDE | ND_NA_ROUTER | ND_NA_SOLICITED);
    assert.equal(formatMac(na, 0), formatMac(MAC_CLIENT));
    assert.equal(formatMac(na, info.ndLinkAddrOff), formatMac(MAC_DIRECTOR));
    assert.equal(hex(na, info.saddrOff, 16), hex(Uint8Array.from(v6bytes('2001:db8::80'))));
    assert.equal(hex(na, info.daddrOff, 16), hex(Uint8Array.from(v6bytes('2001:db8::1'))));
  });

  it('answers duplicate address detection to all nodes, without the solicited flag', () => {
    const ns = new Uint8Array(100);
    buildNeighborSolicit(ns, 0, ns.length, MAC_CLIENT, addr('::'), vip);
    // DAD solicitations carry no source link-layer option: drop it (payload 24).
    ns[14 + 5] = 24;
    const len = 14 + 40 + 24;
    const csumAt = 14 + 40 + 2;
    ns[csumAt] = 0;
    ns[csumAt + 1] = 0;
    const c = refChecksum([...ns.subarray(22, 54), 0, 0, 0, 24, 0, 0, 0, 58, ...ns.subarray(54, len)]);
    ns[csumAt] = c >> 8;
    ns[csumAt + 1] = c & 255;
    assert.equal(parseFrame(ns, 0, len, other), Reason.Ok);
    assert.equal(parseNeighborDiscovery(ns, other), Reason.Ok);
    const na = new Uint8Array(100);
    const m = buildNeighborAdvertReply(na, 0, na.length, ns, other, MAC_DIRECTOR, ND_NA_OVERRIDE);
    parseFrame(na, 0, m, info);
    assert.equal(parseNeighborDiscovery(na, info), Reason.Ok);
    assert.equal(info.ndFlags, ND_NA_OVERRIDE);
    assert.equal(hex(na, 0, 6), '333300000001');
    assert.equal(hex(na, info.daddrOff, 16), 'ff020000000000000000000000000001');
  });

  it('builds an unsolicited NA that validates', () => {
    const na = new Uint8Array(100);
    const m = buildNeighborAdvert(na, 0, na.length, MAC_DIRECTOR, Uint8Array.from([0x33, 0x33, 0, 0, 0, 1]), me, addr('ff02::1'), vip, ND_NA_OVERRIDE, 3);
    assert.equal(m, 90);
    assert.equal(parseFrame(na, 0, m, info), Reason.Ok);
    assert.equal(parseNeighborDiscovery(na, info), Reason.Ok);
    assert.equal(info.vlanTci, 3);
  });

  it('refuses what RFC 4861 says to drop', () => {
    const fresh = () => {
      const ns = new Uint8Array(86);
      buildNeighborSolicit(ns, 0, ns.length, MAC_CLIENT, addr('2001:db8::1'), vip);
      return ns;
    };
    const check = (f: Uint8Array, want: number) => {
      assert.equal(parseFrame(f, 0, f.length, info), Reason.Ok);
      assert.equal(parseNeighborDiscovery(f, info), want);
    };
    const hop = fresh();
    hop[21] = 64;
    check(hop, Reason.BadNeighborDiscovery);
    const sum = fresh();
    sum[60] ^= 1;
    check(sum, Reason.BadChecksum);
    const opt = fresh();
    // Zero-length option (checksum adjusted for the changed byte).
    opt[14 + 40 + 25] = 0;
    const c = (opt[56] << 8) | opt[57];
    const fixed = (c + 1) % 0xffff;
    opt[56] = fixed >> 8;
    opt[57] = fixed & 255;
    check(opt, Reason.BadNeighborDiscovery);
    const echo = frame6({ src: '::1', dst: '::2' }, icmpEcho(true, 1, 1));
    check(echo, Reason.BadNeighborDiscovery);
  });
});

describe('ICMP error builders', () => {
  const src4 = addr('192.0.2.10');
  const src6 = addr('2001:db8::80');

  it('port unreachable about a UDP/IPv4 packet, field by field', () => {
    const orig = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10', tos: 0xb9, ttl: 50 }, udp(40000, 53, [1, 2, 3])));
    const out = new Uint8Array(600);
    const n = buildIcmpError(out, 0, out.length, orig, info, IcmpErrorKind.PortUnreachable, 0, src4, 0x4444);
    const ip = orig.subarray(14);
    assert.equal(n, 28 + ip.length);
    const want = ipv4({ src: '192.0.2.10', dst: '203.0.113.9', tos: (0xb9 & 0x1e) | 0xc0, ttl: 64, frag: 0, id: 0x4444 }, icmpMessage(false, 3, 3, 0, [...ip]));
    assert.equal(hex(out, 0, n), hex(Uint8Array.from(want)));
  });

  it('quotes at most 576 bytes in all (IPv4) and 1280 (IPv6)', () => {
    const big4 = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(1, 80, { payload: new Array(1400).fill(7) })));
    const out = new Uint8Array(2000);
    const n = buildIcmpError(out, 0, out.length, big4, info, IcmpErrorKind.FragNeeded, 1400, src4, 1);
    assert.equal(n, 576);
    assert.equal(hex(out, 28, ICMP_QUOTE_MAX_V4), hex(big4, 14, ICMP_QUOTE_MAX_V4));
    assert.equal((out[26] << 8) | out[27], 1400);
    assert.equal(refSum(out.subarray(20, n)), 0xffff);
    const big6 = parsed(frame6({ src: '2001:db8::9', dst: '2001:db8::80' }, tcp(1, 80, { payload: new Array(1400).fill(7) })));
    const m = buildIcmpError(out, 0, out.length, big6, info, IcmpErrorKind.FragNeeded, 1280, src6, 0);
    assert.equal(m, 1280);
    assert.equal(out[40], 2);
    assert.equal(hex(out, 44, 4), '00000500');
    assert.equal(hex(out, 48, ICMP_QUOTE_MAX_V6), hex(big6, 14, ICMP_QUOTE_MAX_V6));
  });

  it('ICMPv6 errors: type/code per kind and a valid checksum', () => {
    const orig = parsed(frame6({ src: '2001:db8::9', dst: '2001:db8::80' }, udp(1, 53, [1])));
    const out = new Uint8Array(200);
    const kinds: [number, number, number][] = [
      [IcmpErrorKind.PortUnreachable, 1, 4],
      [IcmpErrorKind.HostUnreachable, 1, 3],
      [IcmpErrorKind.TimeExceeded, 3, 0],
      [IcmpErrorKind.FragNeeded, 2, 0],
    ];
    for (const [kind, type, code] of kinds) {
      const n = buildIcmpError(out, 0, out.length, orig, info, kind as IcmpErrorKind, 1300, src6, 0);
      const want = ipv6({ src: '2001:db8::80', dst: '2001:db8::9' }, icmpMessage(true, type, code, kind === IcmpErrorKind.FragNeeded ? 1300 : 0, [...orig.subarray(14)]));
      assert.equal(hex(out, 0, n), hex(Uint8Array.from(want)));
    }
  });

  it('time exceeded (IPv4), and the error parses back to the original flow', () => {
    const orig = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: 1 }, tcp(40000, 443)));
    const out = new Uint8Array(200);
    const n = buildIcmpError(out, 0, out.length, orig, info, IcmpErrorKind.TimeExceeded, 0, src4, 9);
    assert.equal(parseIp(out, 0, n, other), Reason.Ok);
    assert.equal(other.icmpType, 11);
    assert.equal(other.icmpCode, 0);
    const inner = new PacketInfo();
    assert.equal(parseIcmpError(out, other, inner), Reason.Ok);
    assert.equal(inner.sport, 40000);
    assert.equal(inner.dport, 443);
    assert.equal(inner.saddr4, v4('203.0.113.9'));
  });

  it('is suppressed where RFC 1122 / 4443 forbid an error', () => {
    const out = new Uint8Array(200);
    const cases: Uint8Array[] = [
      frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, icmpMessage(false, 3, 3, 0, ipv4({ src: '1.1.1.1', dst: '2.2.2.2' }, udp(1, 2)))),
      frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, icmpMessage(false, 200, 0, 0, [])),
      frame4({ src: '203.0.113.9', dst: '224.0.0.5' }, udp(1, 2)),
      frame4({ src: '203.0.113.9', dst: '255.255.255.255' }, udp(1, 2)),
      frame4({ src: '0.0.0.0', dst: '192.0.2.10' }, udp(68, 67)),
      frame4({ src: '224.1.1.1', dst: '192.0.2.10' }, udp(1, 2)),
      ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '203.0.113.9', dst: '192.0.2.10', frag: 0x0001 }, { proto: 17, raw: [1, 2, 3, 4] })),
      frame6({ src: '2001:db8::9', dst: '2001:db8::80' }, icmpMessage(true, 1, 4, 0, ipv6({ src: '::1', dst: '::2' }, udp(1, 2)))),
      frame6({ src: '::', dst: '2001:db8::80' }, udp(1, 2)),
      frame6({ src: 'ff02::1', dst: '2001:db8::80' }, udp(1, 2)),
      frame6({ src: '2001:db8::9', dst: 'ff05::2' }, udp(1, 2)),
    ];
    for (const f of cases) {
      parsed(f);
      assert.equal(buildIcmpError(out, 0, out.length, f, info, IcmpErrorKind.PortUnreachable, 0, src4, 0), Reason.IcmpSuppressed, hex(f));
    }
    // Allowed: errors about echo requests, about a first fragment, packet too big to multicast.
    parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, icmpEcho(false, 1, 1)));
    assert.ok(buildIcmpError(out, 0, out.length, frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, icmpEcho(false, 1, 1)), info, 0, 0, src4, 0) > 0);
    const first = parsed(frame6({ src: '2001:db8::9', dst: 'ff05::2', ext: [fragmentExt(0, true, 3)] }, udp(1, 2, new Array(8).fill(0))));
    assert.ok(buildIcmpError(out, 0, out.length, first, info, IcmpErrorKind.FragNeeded, 1280, src6, 0) > 0);
    assert.equal(buildIcmpError(out, 0, 60, first, info, IcmpErrorKind.FragNeeded, 1280, src6, 0), Reason.NoRoom);
  });

  it('builds the whole frame back to the sender, even over the offending frame itself', () => {
    for (const make of [
      () => frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(40000, 53, [1, 2, 3]), 12),
      () => frame6({ src: '2001:db8::9', dst: '2001:db8::80' }, udp(40000, 53, [1, 2, 3])),
    ]) {
      const orig = parsed(make());
      const separate = new Uint8Array(300);
      const n = buildIcmpErrorFrame(separate, 0, separate.length, orig, info, IcmpErrorKind.PortUnreachable, 0, info.ipVersion === 4 ? src4 : src6, 5, MAC_DIRECTOR);
      assert.ok(n > 0);
      assert.equal(formatMac(separate, 0), formatMac(MAC_CLIENT));
      assert.equal(formatMac(separate, 6), formatMac(MAC_DIRECTOR));
      const inPlace = new Uint8Array(300);
      inPlace.set(orig);
      parseFrame(inPlace, 0, orig.length, info);
      const m = buildIcmpErrorFrame(inPlace, 0, inPlace.length, inPlace, info, IcmpErrorKind.PortUnreachable, 0, info.ipVersion === 4 ? src4 : src6, 5, MAC_DIRECTOR);
      assert.equal(m, n);
      assert.equal(hex(inPlace, 0, m), hex(separate, 0, n));
      assert.equal(parseFrame(separate, 0, n, other), Reason.Ok);
      if (info.ipVersion === 4) assert.equal(other.vlanTci, 12);
    }
  });
});

describe('ICMP echo reply in place', () => {
  it('IPv4 and IPv6 replies equal the replies built from scratch', () => {
    const f = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: 57 }, icmpEcho(false, 0x1234, 9, [1, 2, 3, 4, 5])));
    assert.equal(icmpEchoToReply(f, info), Reason.Ok);
    const want = ether(MAC_CLIENT, MAC_DIRECTOR, 0x0800, ipv4({ src: '192.0.2.10', dst: '203.0.113.9', ttl: 64 }, { ...icmpEcho(false, 0x1234, 9, [1, 2, 3, 4, 5]), bytes: [0, 0, 0, 0, 0x12, 0x34, 0, 9, 1, 2, 3, 4, 5] }));
    assert.equal(hex(f), hex(want));
    const g = parsed(frame6({ src: '2001:db8::9', dst: '2001:db8::80', hop: 3 }, icmpEcho(true, 7, 8, [9])));
    assert.equal(icmpEchoToReply(g, info), Reason.Ok);
    const want6 = ether(MAC_CLIENT, MAC_DIRECTOR, 0x86dd, ipv6({ src: '2001:db8::80', dst: '2001:db8::9', hop: 64 }, { ...icmpEcho(true, 7, 8, [9]), bytes: [129, 0, 0, 0, 0, 7, 0, 8, 9] }));
    assert.equal(hex(g), hex(want6));
    assert.equal(icmpEchoToReply(g, info), Reason.BadIcmp);
  });

  it('refuses multicast and broadcast requests', () => {
    parsed(frame4({ src: '203.0.113.9', dst: '224.0.0.1' }, icmpEcho(false, 1, 1)));
    const f = frame4({ src: '203.0.113.9', dst: '255.255.255.255' }, icmpEcho(false, 1, 1));
    parsed(f);
    assert.equal(icmpEchoToReply(f, info), Reason.NotUnicast);
    const g = parsed(frame6({ src: '2001:db8::9', dst: 'ff02::1' }, icmpEcho(true, 1, 1)));
    assert.equal(icmpEchoToReply(g, info), Reason.NotUnicast);
  });
});
