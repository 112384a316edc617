import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ARPOP_REQUEST,
  ETH_P_ARP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  PacketInfo,
  parseFrame,
  parseIcmpError,
  parseIp,
  Reason,
  REASON_COUNT,
  reasonName,
  TCP_ACK,
  TCP_SYN,
} from '../../src/codec/index.js';
import {
  ether,
  fragmentExt,
  frame4,
  frame6,
  icmpEcho,
  icmpMessage,
  ipv4,
  ipv6,
  MAC_CLIENT,
  MAC_DIRECTOR,
  optionsExt,
  placed,
  tcp,
  udp,
  v4,
} from './packets.js';

const info = new PacketInfo();

function parse(f: Uint8Array, off = 0, end = f.length): number {
  return parseFrame(f, off, end, info);
}

describe('Ethernet', () => {
  it('parses an untagged IPv4/TCP frame field by field', () => {
    const f = frame4(
      { src: '10.0.0.1', dst: '192.0.2.10', ttl: 63, tos: 0x2e, id: 0xbeef },
      tcp(40000, 80, { seq: 0xfedcba98, ack: 0x01020304, flags: TCP_SYN | TCP_ACK, options: [2, 4, 5, 0xb4], payload: [1, 2, 3] }),
    );
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.l2off, 0);
    assert.equal(info.vlanTci, -1);
    assert.equal(info.etherType, 0x0800);
    assert.equal(info.l3off, 14);
    assert.equal(info.ipVersion, 4);
    assert.equal(info.ipHeaderLen, 20);
    assert.equal(info.ipEnd, f.length);
    assert.equal(info.protocol, IPPROTO_TCP);
    assert.equal(info.ttl, 63);
    assert.equal(info.tos, 0x2e);
    assert.equal(info.ipId, 0xbeef);
    assert.equal(info.dontFragment, true);
    assert.equal(info.isFragment, false);
    assert.equal(info.saddr4, v4('10.0.0.1'));
    assert.equal(info.daddr4, v4('192.0.2.10'));
    assert.equal(info.l4off, 34);
    assert.equal(info.l4HeaderLen, 24);
    assert.equal(info.payloadOff, 58);
    assert.equal(info.sport, 40000);
    assert.equal(info.dport, 80);
    assert.equal(info.tcpSeq, 0xfedcba98);
    assert.equal(info.tcpAck, 0x01020304);
    assert.equal(info.tcpFlags, TCP_SYN | TCP_ACK);
  });

  it('parses one 802.1Q tag and refuses a second', () => {
    const f = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp(1, 2), 0x2064);
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.vlanTci, 0x2064);
    assert.equal(info.l3off, 18);
    assert.equal(info.protocol, IPPROTO_UDP);
    const qinq = ether(MAC_DIRECTOR, MAC_CLIENT, 0x8100, [0, 5, 0x81, 0, 0, 6, 0x08, 0, ...ipv4({ src: '1.1.1.1', dst: '2.2.2.2' }, udp(1, 2))]);
    assert.equal(parse(qinq), Reason.StackedVlan);
    const ad = ether(MAC_DIRECTOR, MAC_CLIENT, 0x88a8, [0, 5, 0x81, 0, 0, 6, 0x08, 0]);
    assert.equal(parse(ad), Reason.StackedVlan);
  });

  it('excludes Ethernet padding from the IP packet', () => {
    const f = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp(53, 53, [7]));
    const padded = new Uint8Array(60);
    padded.set(f);
    assert.equal(parse(padded), Reason.Ok);
    assert.equal(info.ipEnd, f.length);
    assert.equal(info.udpLength, 9);
  });

  it('parses a frame in the middle of a larger buffer without looking past its end', () => {
    const f = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp(1, 2));
    const b = placed(f, 100);
    assert.equal(parse(b, 100, 100 + f.length), Reason.Ok);
    assert.equal(info.l3off, 114);
    assert.equal(parse(b, 100, 100 + f.length - 1), Reason.Truncated);
  });

  it('shift() follows a frame copied to another offset', () => {
    const f = frame6({ src: '2001:db8::1', dst: '2001:db8::2', ext: [fragmentExt(0, true, 1)] }, tcp(1, 2));
    parse(f);
    const moved = new PacketInfo();
    parseFrame(placed(f, 37), 37, 37 + f.length, moved);
    info.shift(37);
    for (const k of Object.keys(moved) as (keyof PacketInfo)[]) assert.equal(info[k], moved[k], String(k));
  });

  it('reports other EtherTypes as not IP, and short frames as truncated', () => {
    assert.equal(parse(ether(MAC_DIRECTOR, MAC_CLIENT, 0x88cc, [1, 2, 3])), Reason.Ok);
    assert.equal(info.ipVersion, 0);
    assert.equal(info.etherType, 0x88cc);
    assert.equal(parse(new Uint8Array(13)), Reason.Truncated);
    assert.equal(parse(ether(MAC_DIRECTOR, MAC_CLIENT, 0x8100, [0]).subarray(0, 15)), Reason.Truncated);
  });
});

describe('IPv4', () => {
  const good = () => frame4({ src: '10.1.2.3', dst: '10.4.5.6' }, udp(1000, 2000, [1, 2, 3, 4]));

  it('checks the version against the EtherType', () => {
    const f = good();
    f[14] = 0x65;
    assert.equal(parse(f), Reason.BadVersion);
  });

  it('refuses IHL < 5 and a header longer than the frame', () => {
    const f = good();
    f[14] = 0x44;
    assert.equal(parse(f), Reason.BadHeaderLength);
    const g = good();
    assert.equal(parse(g, 0, 14 + 19), Reason.Truncated);
    const h = good();
    h[14] = 0x4f;
    assert.equal(parse(h, 0, 14 + 40), Reason.Truncated);
  });

  it('checks total length against header and captured length', () => {
    const f = good();
    f[16] = 0;
    f[17] = 19;
    assert.equal(parse(f), Reason.BadTotalLength);
    const g = good();
    assert.equal(parse(g, 0, g.length - 1), Reason.Truncated);
  });

  it('verifies the header checksum', () => {
    const f = good();
    f[14 + 8] ^= 1;
    assert.equal(parse(f), Reason.BadChecksum);
  });

  it('parses options via IHL', () => {
    const f = frame4({ src: '10.0.0.1', dst: '10.0.0.2', options: [0x94, 0x04, 0, 0] }, tcp(5, 6));
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.ipHeaderLen, 24);
    assert.equal(info.l4off, 38);
    assert.equal(info.sport, 5);
  });

  it('reports fragments: first with L4, later ones without', () => {
    const first = frame4({ src: '10.0.0.1', dst: '10.0.0.2', frag: 0x2000 }, udp(7, 8, new Array(16).fill(1)));
    assert.equal(parse(first), Reason.Ok);
    assert.equal(info.isFragment, true);
    assert.equal(info.moreFragments, true);
    assert.equal(info.l4off, 34);
    assert.equal(info.dport, 8);
    const later = ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', frag: 3 }, { proto: 17, raw: [1, 2, 3, 4] }));
    assert.equal(parse(later), Reason.Ok);
    assert.equal(info.fragOffset, 24);
    assert.equal(info.l4off, -1);
    assert.equal(info.protocol, 17);
    assert.equal(info.dport, 0);
  });

  it('refuses a fragment reaching past 65535 bytes', () => {
    const f = ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', frag: 0x1fff }, { proto: 17, raw: new Array(16).fill(0) }));
    assert.equal(parse(f), Reason.BadFragment);
  });

  it('checks the UDP length and the TCP data offset', () => {
    const f = good();
    f[34 + 5] = 7;
    assert.equal(parse(f), Reason.BadUdpLength);
    const g = good();
    g[34 + 5] = 13;
    assert.equal(parse(g), Reason.BadUdpLength);
    const t = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp(1, 2));
    t[34 + 12] = 4 << 4;
    assert.equal(parse(t), Reason.BadTcpHeader);
    t[34 + 12] = 6 << 4;
    assert.equal(parse(t), Reason.BadTcpHeader);
    const short = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, { proto: 6, bytes: new Array(12).fill(0), checkAt: -1, pseudo: false });
    assert.equal(parse(short), Reason.Truncated);
  });

  it('parses ICMP echo', () => {
    const f = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpEcho(false, 0x4242, 7, [1, 2, 3]));
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.icmpType, 8);
    assert.equal(info.icmpId, 0x4242);
    assert.equal(info.icmpSeq, 7);
  });

  it('parses from L3 with parseIp', () => {
    const p = Uint8Array.from(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp(1, 2)));
    assert.equal(parseIp(p, 0, p.length, info), Reason.Ok);
    assert.equal(info.l2off, -1);
    assert.equal(info.l4off, 20);
    assert.equal(parseIp(Uint8Array.from([0x50]), 0, 1, info), Reason.BadVersion);
    assert.equal(parseIp(p, 0, 0, info), Reason.Truncated);
  });
});

describe('IPv6', () => {
  it('parses the fixed header', () => {
    const f = frame6({ src: '2001:db8::1', dst: '2001:db8::2', hop: 9, tclass: 0xb8, flow: 0x12345 }, tcp(1234, 443));
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.ipVersion, 6);
    assert.equal(info.ttl, 9);
    assert.equal(info.tos, 0xb8);
    assert.equal(info.flowLabel, 0x12345);
    assert.equal(info.saddrOff, 22);
    assert.equal(info.daddrOff, 38);
    assert.equal(info.l4off, 54);
    assert.equal(info.dport, 443);
  });

  it('walks hop-by-hop, destination options, routing and AH to the upper layer', () => {
    const ah = { type: 51, body: [4, 0, 0, ...new Array(20).fill(0)] }; // (4+2)*4 = 24 bytes
    const rh = { type: 43, body: [0, 0, 0, 0, 0, 0, 0] };
    const f = frame6({ src: '2001:db8::1', dst: '2001:db8::2', ext: [optionsExt(0, 16), rh, ah, optionsExt(60)] }, udp(5353, 53));
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.protocol, IPPROTO_UDP);
    assert.equal(info.ipHeaderLen, 40 + 16 + 8 + 24 + 8);
    assert.equal(info.l4off, 14 + info.ipHeaderLen);
    assert.equal(info.dport, 53);
  });

  it('detects fragment headers', () => {
    const first = frame6({ src: '2001:db8::1', dst: '2001:db8::2', ext: [fragmentExt(0, true, 0xdeadbeef)] }, udp(1, 2, new Array(8).fill(0)));
    // The UDP length covers the whole datagram; a first fragment is not length-checked.
    assert.equal(parse(first), Reason.Ok);
    assert.equal(info.fragHeaderOff, 54);
    assert.equal(info.ipId, 0xdeadbeef);
    assert.equal(info.moreFragments, true);
    assert.equal(info.l4off, 62);
    const later = ether(MAC_DIRECTOR, MAC_CLIENT, 0x86dd, ipv6({ src: '2001:db8::1', dst: '2001:db8::2', ext: [fragmentExt(1232, false, 9)] }, { proto: 6, raw: [1, 2, 3, 4] }));
    assert.equal(parse(later), Reason.Ok);
    assert.equal(info.fragOffset, 1232);
    assert.equal(info.protocol, IPPROTO_TCP);
    assert.equal(info.l4off, -1);
  });

  it('refuses truncated extension headers, long chains, jumbograms and short captures', () => {
    const f = frame6({ src: '2001:db8::1', dst: '2001:db8::2', ext: [optionsExt(0, 8)] }, udp(1, 2));
    f[54 + 1] = 200; // hop-by-hop claims 1608 bytes
    assert.equal(parse(f), Reason.BadExtensionHeader);
    const many = frame6({ src: '2001:db8::1', dst: '2001:db8::2', ext: new Array(17).fill(0).map(() => optionsExt(60)) }, udp(1, 2));
    assert.equal(parse(many), Reason.TooManyExtensionHeaders);
    const jumbo = frame6({ src: '2001:db8::1', dst: '2001:db8::2', ext: [optionsExt(0, 8)] }, udp(1, 2));
    jumbo[18] = 0;
    jumbo[19] = 0;
    assert.equal(parse(jumbo), Reason.BadTotalLength);
    const g = frame6({ src: '2001:db8::1', dst: '2001:db8::2' }, udp(1, 2));
    assert.equal(parse(g, 0, g.length - 1), Reason.Truncated);
    const none = ether(MAC_DIRECTOR, MAC_CLIENT, 0x86dd, ipv6({ src: '::1', dst: '::2' }, { proto: 59, raw: [] }));
    assert.equal(parse(none), Reason.Ok);
    assert.equal(info.protocol, 59);
    assert.equal(info.l4off, -1);
  });
});

describe('ARP', () => {
  it('parses a request and refuses non-Ethernet/IPv4 ARP', () => {
    const body = [0, 1, 8, 0, 6, 4, 0, 1, ...MAC_CLIENT, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 254];
    const f = ether(Uint8Array.from([255, 255, 255, 255, 255, 255]), MAC_CLIENT, ETH_P_ARP, body);
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.arpOp, ARPOP_REQUEST);
    assert.equal(info.arpSenderIp, v4('10.0.0.1'));
    assert.equal(info.arpTargetIp, v4('10.0.0.254'));
    const bad = Uint8Array.from(f);
    bad[14 + 4] = 8;
    assert.equal(parse(bad), Reason.BadArp);
    const op = Uint8Array.from(f);
    op[14 + 7] = 3;
    assert.equal(parse(op), Reason.BadArp);
    assert.equal(parse(f, 0, f.length - 1), Reason.Truncated);
  });
});

describe('ICMP errors: the quoted packet', () => {
  it('locates the quoted IPv4 header and ports of a port unreachable', () => {
    const quoted = ipv4({ src: '10.0.0.2', dst: '198.51.100.7' }, udp(53, 33434, new Array(40).fill(9)));
    const f = frame4({ src: '198.51.100.7', dst: '10.0.0.2' }, icmpMessage(false, 3, 3, 0, quoted.slice(0, 28)));
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.icmpType, 3);
    const inner = new PacketInfo();
    assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
    assert.equal(inner.l3off, 42);
    assert.equal(inner.ipVersion, 4);
    assert.equal(inner.protocol, IPPROTO_UDP);
    assert.equal(inner.saddr4, v4('10.0.0.2'));
    assert.equal(inner.daddr4, v4('198.51.100.7'));
    assert.equal(inner.l4off, 62);
    assert.equal(inner.sport, 53);
    assert.equal(inner.dport, 33434);
    assert.equal(inner.ipEnd, f.length);
  });

  it('locates the quoted IPv6 packet of a packet too big', () => {
    const quoted = ipv6({ src: '2001:db8::2', dst: '2001:db8::99' }, tcp(443, 50000, { payload: new Array(100).fill(1) }));
    const f = frame6({ src: '2001:db8::99', dst: '2001:db8::2' }, icmpMessage(true, 2, 0, 1400, quoted.slice(0, 60)));
    assert.equal(parse(f), Reason.Ok);
    assert.equal(info.icmpMtu, 1400);
    const inner = new PacketInfo();
    assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
    assert.equal(inner.ipVersion, 6);
    assert.equal(inner.protocol, IPPROTO_TCP);
    assert.equal(inner.sport, 443);
    assert.equal(inner.dport, 50000);
  });

  it('refuses non-errors, short quotes and a family mismatch', () => {
    const inner = new PacketInfo();
    const echo = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpEcho(false, 1, 1));
    parse(echo);
    assert.equal(parseIcmpError(echo, info, inner), Reason.BadIcmp);
    const short = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpMessage(false, 11, 0, 0, [0x45, 0, 0, 40]));
    parse(short);
    assert.equal(parseIcmpError(short, info, inner), Reason.Truncated);
    const mixed = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpMessage(false, 3, 1, 0, ipv6({ src: '::1', dst: '::2' }, udp(1, 2))));
    parse(mixed);
    assert.equal(parseIcmpError(mixed, info, inner), Reason.BadVersion);
    // A quote holding only the IP header: found, but no ports.
    const headerOnly = frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpMessage(false, 3, 3, 0, ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }, udp(1, 2)).slice(0, 22)));
    parse(headerOnly);
    assert.equal(parseIcmpError(headerOnly, info, inner), Reason.Ok);
    assert.equal(inner.l4off, -1);
  });
});

describe('reason codes', () => {
  it('have distinct negative values and names', () => {
    const values = Object.values(Reason);
    assert.equal(new Set(values).size, values.length);
    assert.equal(values.length, REASON_COUNT);
    for (const v of values) assert.ok(v <= 0 && v > -REASON_COUNT);
    assert.equal(reasonName(Reason.Truncated), 'truncated');
    assert.equal(reasonName(Reason.TtlExceeded), 'ttl_exceeded');
    assert.equal(reasonName(14), 'ok');
    assert.equal(reasonName(-999), 'unknown_-999');
  });
});
