import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { IpAddr } from '../../src/core/addr.js';
import {
  buildIcmpError,
  decapsulate,
  decrementTtl4,
  ecnEncapsulate,
  encapsulate,
  IcmpErrorKind,
  PacketInfo,
  parseFrame,
  parseIcmpError,
  parseIp,
  prependEthernet,
  Reason,
  TUNNEL_ENCAP_FLAG_CSUM,
  TUNNEL_ENCAP_FLAG_REMCSUM,
  TunnelSpec,
  TunnelType,
  tunnelHeaderLength,
  tunnelMtu,
  verifyL4Checksum,
} from '../../src/codec/index.js';
import { addr, hex, ipv4, ipv6, MAC_DIRECTOR, MAC_SERVER, refSum, tcp, udp, v4 } from './packets.js';

const HEADROOM = 96;
const DIRECTOR = addr('10.0.0.254');
const SERVER = addr('10.0.0.5');
const DIRECTOR6 = addr('2001:db8:1::fe');
const SERVER6 = addr('2001:db8:1::5');
const GUE_PORT = 6080;

const outer = new PacketInfo();
const inner = new PacketInfo();
const back = new PacketInfo();

/** The IP packet `ip` at HEADROOM in a fresh buffer, parsed into `inner`. */
function staged(ip: number[]): Uint8Array {
  const b = new Uint8Array(HEADROOM + ip.length + 32).fill(0xee);
  b.set(ip, HEADROOM);
  assert.equal(parseIp(b, HEADROOM, HEADROOM + ip.length, inner), Reason.Ok);
  return b;
}

function encap(b: Uint8Array, spec: TunnelSpec, ipId = 0x0101, sport = 50123, csumStart = -1, csumOffset = 0): number {
  const at = encapsulate(b, inner, spec, ipId, sport, csumStart, csumOffset);
  assert.ok(at >= 0, `encapsulate: ${at}`);
  return at;
}

describe('encapsulation: outer header fields (§6.3)', () => {
  it('IPIP: version 4, protocol 4, TTL and DF from the inner packet, ID from the caller', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: 64, tos: 0x28, frag: 0x4000 }, tcp(40000, 80, { payload: [1, 2, 3] }));
    const b = staged(ip);
    assert.equal(decrementTtl4(b, inner), 63);
    const at = encap(b, new TunnelSpec(TunnelType.Ipip, 4, DIRECTOR, SERVER), 0xabcd);
    assert.equal(at, HEADROOM - 20);
    const o = b.subarray(at);
    assert.equal(o[0], 0x45);
    assert.equal(o[1], 0x28);
    assert.equal((o[2] << 8) | o[3], 20 + ip.length);
    assert.equal((o[4] << 8) | o[5], 0xabcd);
    assert.equal((o[6] << 8) | o[7], 0x4000);
    assert.equal(o[8], 63);
    assert.equal(o[9], 4);
    assert.equal(refSum(o.subarray(0, 20)), 0xffff);
    assert.equal(hex(o, 12, 8), hex(Uint8Array.from([10, 0, 0, 254, 10, 0, 0, 5])));
    assert.equal(parseIp(b, at, at + 20 + ip.length, outer), Reason.Ok);
    // Without pmtu_disc the DF bit is not copied.
    const c = staged(ip);
    const at2 = encap(c, new TunnelSpec(TunnelType.Ipip, 4, DIRECTOR, SERVER, 0, 0, false));
    assert.equal((c[at2 + 6] << 8) | c[at2 + 7], 0);
  });

  it('IPv6 inner in IPv4: protocol 41, DF 0, TTL = hop limit, ECN CE becomes ECT(0)', () => {
    const ip = ipv6({ src: '2001:db8::9', dst: '2001:db8::80', hop: 17, tclass: 0xbb }, udp(1, 53, [1]));
    const b = staged(ip);
    const at = encap(b, new TunnelSpec(TunnelType.Ipip, 4, DIRECTOR, SERVER));
    assert.equal(b[at + 9], 41);
    assert.equal(b[at + 8], 17);
    assert.equal(b[at + 1], 0xba);
    assert.equal((b[at + 6] << 8) | b[at + 7], 0);
  });

  it('IPv6 outer: next header 4, hop limit = inner TTL, traffic class, flow label 0', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: 33, tos: 0x01 }, tcp(1, 2));
    const b = staged(ip);
    const at = encap(b, new TunnelSpec(TunnelType.Ipip, 6, DIRECTOR6, SERVER6));
    assert.equal(at, HEADROOM - 40);
    assert.equal(parseIp(b, at, HEADROOM + ip.length, outer), Reason.Ok);
    assert.equal(outer.ipVersion, 6);
    assert.equal(outer.protocol, 4);
    assert.equal(outer.ttl, 33);
    assert.equal(outer.tos, 0x01);
    assert.equal(outer.flowLabel, 0);
    assert.equal(hex(b, outer.daddrOff, 16), hex(SERVER6.toBytes()));
  });

  it('ECN per RFC 6040 normal mode', () => {
    assert.equal(ecnEncapsulate(0b101000_00), 0b101000_00);
    assert.equal(ecnEncapsulate(0b101000_01), 0b101000_01);
    assert.equal(ecnEncapsulate(0b101000_10), 0b101000_10);
    assert.equal(ecnEncapsulate(0b101000_11), 0b101000_10);
  });

  it('GUE: UDP to tun_port, 4-byte header, checksum 0 unless CSUM', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(1, 80));
    const b = staged(ip);
    const spec = new TunnelSpec(TunnelType.Gue, 4, DIRECTOR, SERVER, GUE_PORT);
    assert.equal(tunnelHeaderLength(spec), 32);
    const at = encap(b, spec, 1, 49999);
    assert.equal(at, HEADROOM - 32);
    assert.equal(b[at + 9], 17);
    const u = at + 20;
    assert.equal(hex(b, u, 8), hex(Uint8Array.from([49999 >> 8, 49999 & 255, GUE_PORT >> 8, GUE_PORT & 255, 0, 12 + ip.length, 0, 0])));
    assert.equal(hex(b, u + 8, 4), '00040000');
    const c = staged(ip);
    const at2 = encap(c, new TunnelSpec(TunnelType.Gue, 4, DIRECTOR, SERVER, GUE_PORT, TUNNEL_ENCAP_FLAG_CSUM));
    assert.equal(parseIp(c, at2, HEADROOM + ip.length, outer), Reason.Ok);
    assert.notEqual((c[at2 + 26] << 8) | c[at2 + 27], 0);
    assert.ok(verifyL4Checksum(c, outer));
    // IPv6 inner announces protocol 41.
    const d = staged(ipv6({ src: '::1', dst: '::2' }, udp(1, 2)));
    const at3 = encap(d, new TunnelSpec(TunnelType.Gue, 6, DIRECTOR6, SERVER6, GUE_PORT, TUNNEL_ENCAP_FLAG_CSUM));
    assert.equal(d[at3 + 6], 17);
    assert.equal(d[at3 + 40 + 8 + 1], 41);
    parseIp(d, at3, d.length - 32, outer);
    assert.ok(verifyL4Checksum(d, outer));
  });

  it('GUE remote checksum offload: option announced, decapsulation completes the inner checksum', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(40000, 80, { payload: [5, 6, 7, 8, 9] }));
    const b = staged(ip);
    // Make the inner TCP checksum "partial": the uncomplemented pseudo-header sum.
    const tcpLen = ip.length - 20;
    let ps = (v4('203.0.113.9') >>> 16) + (v4('203.0.113.9') & 0xffff) + (v4('192.0.2.10') >>> 16) + (v4('192.0.2.10') & 0xffff) + 6 + tcpLen;
    while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16);
    b[HEADROOM + 36] = ps >> 8;
    b[HEADROOM + 37] = ps & 255;
    const spec = new TunnelSpec(TunnelType.Gue, 4, DIRECTOR, SERVER, GUE_PORT, TUNNEL_ENCAP_FLAG_REMCSUM);
    assert.equal(tunnelHeaderLength(spec, true), 40);
    assert.equal(tunnelMtu(1500, spec, true), 1460);
    const at = encap(b, spec, 1, 50000, 20, 16);
    assert.equal(at, HEADROOM - 40);
    const g = at + 28;
    assert.equal(hex(b, g, 12), `0204000180000000${(20).toString(16).padStart(4, '0')}${(36).toString(16).padStart(4, '0')}`);
    assert.equal(parseIp(b, at, HEADROOM + ip.length, outer), Reason.Ok);
    assert.ok(verifyL4Checksum(b, outer), 'outer UDP checksum (REMCSUM implies one)');
    assert.equal(decapsulate(b, outer, back, GUE_PORT), Reason.Ok);
    assert.ok(verifyL4Checksum(b, back), 'inner TCP checksum completed');
    assert.equal(hex(b, back.l3off, ip.length), hex(Uint8Array.from(ip)));
  });

  it('GRE: 4 bytes, or 8 with a checksum over header and payload', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(1, 53, [1, 2, 3]));
    const b = staged(ip);
    const at = encap(b, new TunnelSpec(TunnelType.Gre, 4, DIRECTOR, SERVER));
    assert.equal(b[at + 9], 47);
    assert.equal(hex(b, at + 20, 4), '00000800');
    const c = staged(ip);
    const at2 = encap(c, new TunnelSpec(TunnelType.Gre, 4, DIRECTOR, SERVER, 0, TUNNEL_ENCAP_FLAG_CSUM));
    assert.equal(at2, HEADROOM - 28);
    assert.equal(hex(c, at2 + 20, 2), '8000');
    assert.equal(refSum(c.subarray(at2 + 20, HEADROOM + ip.length)), 0xffff);
    const d = staged(ipv6({ src: '::1', dst: '::2' }, udp(1, 2)));
    const at3 = encap(d, new TunnelSpec(TunnelType.Gre, 6, DIRECTOR6, SERVER6));
    assert.equal(hex(d, at3 + 40, 4), '000086dd');
  });

  it('needs headroom and stays under 64 KiB', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(1, 53));
    const b = new Uint8Array(ip.length + 10);
    b.set(ip, 10);
    parseIp(b, 10, 10 + ip.length, inner);
    assert.equal(encapsulate(b, inner, new TunnelSpec(TunnelType.Ipip, 4, DIRECTOR, SERVER), 0, 0), Reason.NoRoom);
    const big = new Uint8Array(70000);
    big.set(ipv6({ src: '::1', dst: '::2' }, udp(1, 2, new Array(65527 - 8 - 40 + 40).fill(0))).slice(0, 40), 100);
    big[100 + 4] = 0xff;
    big[100 + 5] = 0xd7;
    big[100 + 6] = 59;
    assert.equal(parseIp(big, 100, 100 + 40 + 0xffd7, inner), Reason.Ok);
    assert.equal(encapsulate(big, inner, new TunnelSpec(TunnelType.Ipip, 4, DIRECTOR, SERVER), 0, 0), Reason.TooBig);
  });

  it('an encapsulated frame gets its Ethernet header in front', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(1, 80));
    const b = staged(ip);
    const at = encap(b, new TunnelSpec(TunnelType.Ipip, 4, DIRECTOR, SERVER));
    const start = prependEthernet(b, at, MAC_SERVER, MAC_DIRECTOR, 0x0800);
    assert.equal(start, at - 14);
    assert.equal(parseFrame(b, start, HEADROOM + ip.length, outer), Reason.Ok);
    assert.equal(outer.protocol, 4);
  });
});

describe('decapsulation (vsrs)', () => {
  const stripped = (b: Uint8Array, at: number, end: number, port = GUE_PORT) => {
    assert.equal(parseIp(b, at, end, outer), Reason.Ok);
    return decapsulate(b, outer, back, port);
  };

  it('refuses what is not ours or not well formed', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(1, 80));
    const plain = staged(ip);
    assert.equal(stripped(plain, HEADROOM, HEADROOM + ip.length), Reason.NotTunnel);

    const gue = () => {
      const b = staged(ip);
      return [b, encap(b, new TunnelSpec(TunnelType.Gue, 4, DIRECTOR, SERVER, GUE_PORT, TUNNEL_ENCAP_FLAG_CSUM))] as const;
    };
    const [b1, at1] = gue();
    assert.equal(stripped(b1, at1, HEADROOM + ip.length, 9999), Reason.NotTunnel);
    assert.equal(stripped(b1, at1, HEADROOM + ip.length, 0), Reason.NotTunnel);
    const [b2, at2] = gue();
    b2[at2 + 28] |= 0x20; // control message
    b2[at2 + 26] = 0;
    b2[at2 + 27] = 0; // no UDP checksum, so the change is accepted up to GUE
    assert.equal(stripped(b2, at2, HEADROOM + ip.length), Reason.BadTunnel);
    const [b3, at3] = gue();
    b3[at3 + 31] = 0x02; // unknown flag
    b3[at3 + 26] = 0;
    b3[at3 + 27] = 0;
    assert.equal(stripped(b3, at3, HEADROOM + ip.length), Reason.BadTunnel);
    const [b4, at4] = gue();
    b4[HEADROOM + 30] ^= 0xff; // inner payload corrupted: outer UDP checksum fails
    assert.equal(stripped(b4, at4, HEADROOM + ip.length), Reason.BadChecksum);
    const [b5, at5] = gue();
    b5[at5 + 29] = 41; // says IPv6 inside, but the inner packet is IPv4
    b5[at5 + 26] = 0;
    b5[at5 + 27] = 0;
    assert.equal(stripped(b5, at5, HEADROOM + ip.length), Reason.BadTunnel);

    const gre = (flags: number) => {
      const b = staged(ip);
      return [b, encap(b, new TunnelSpec(TunnelType.Gre, 4, DIRECTOR, SERVER, 0, flags))] as const;
    };
    const [g1, a1] = gre(0);
    g1[a1 + 21] = 1; // version 1
    g1[a1 + 10] = 0;
    g1[a1 + 11] = 0;
    setIpCsum(g1, a1);
    assert.equal(stripped(g1, a1, HEADROOM + ip.length), Reason.BadTunnel);
    const [g2, a2] = gre(TUNNEL_ENCAP_FLAG_CSUM);
    g2[HEADROOM + 25] ^= 1;
    assert.equal(stripped(g2, a2, HEADROOM + ip.length), Reason.BadChecksum);
    const [g3, a3] = gre(0);
    g3[a3 + 22] = 0x88;
    g3[a3 + 23] = 0x47; // MPLS
    assert.equal(stripped(g3, a3, HEADROOM + ip.length), Reason.BadTunnel);
  });

  it('accepts GUE version 1 (direct IP) and GRE with key and sequence', () => {
    const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(1, 80));
    const v1 = ipv4({ src: '10.0.0.254', dst: '10.0.0.5' }, udp(5000, GUE_PORT, ip));
    const b = staged(v1);
    assert.equal(decapsulate(b, inner, back, GUE_PORT), Reason.Ok);
    assert.equal(back.l3off, HEADROOM + 28);
    assert.equal(back.dport, 80);
    const greKS = ipv4({ src: '10.0.0.254', dst: '10.0.0.5' }, { proto: 47, raw: [0x30, 0, 0x08, 0, 0, 0, 0, 7, 0, 0, 0, 1, ...ip] });
    const c = staged(greKS);
    assert.equal(decapsulate(c, inner, back, 0), Reason.Ok);
    assert.equal(back.l3off, HEADROOM + 20 + 12);
    assert.equal(back.sport, 1);
  });

  it('round trip: any inner packet through any tunnel comes out byte for byte', () => {
    const kinds = fc.record({
      type: fc.constantFrom(TunnelType.Ipip, TunnelType.Gue, TunnelType.Gre),
      outer6: fc.boolean(),
      inner6: fc.boolean(),
      flags: fc.constantFrom(0, TUNNEL_ENCAP_FLAG_CSUM),
      isTcp: fc.boolean(),
      payload: fc.array(fc.nat(255), { maxLength: 80 }),
      ttl: fc.integer({ min: 2, max: 255 }),
      tos: fc.nat(255),
      ipId: fc.nat(0xffff),
      sport: fc.integer({ min: 1024, max: 65535 }),
    });
    fc.assert(
      fc.property(kinds, (k) => {
        const l4 = k.isTcp ? tcp(40000, 443, { payload: k.payload }) : udp(40000, 53, k.payload);
        const ip = k.inner6 ? ipv6({ src: '2001:db8::9', dst: '2001:db8::80', hop: k.ttl, tclass: k.tos }, l4) : ipv4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: k.ttl, tos: k.tos }, l4);
        const b = staged(ip);
        const spec = k.outer6 ? new TunnelSpec(k.type, 6, DIRECTOR6, SERVER6, GUE_PORT, k.flags) : new TunnelSpec(k.type, 4, DIRECTOR, SERVER, GUE_PORT, k.flags);
        const at = encap(b, spec, k.ipId, k.sport);
        assert.equal(at, HEADROOM - tunnelHeaderLength(spec));
        assert.equal(parseIp(b, at, HEADROOM + ip.length, outer), Reason.Ok);
        assert.equal(outer.ttl, k.ttl);
        assert.equal(outer.tos, ecnEncapsulate(k.tos));
        if (!k.outer6) assert.equal(outer.ipId, k.ipId);
        // GUE without CSUM sends UDP checksum 0, over IPv6 too (RFC 6935 tunnels).
        const zeroUdp = outer.protocol === 17 && b[outer.l4off + 6] === 0 && b[outer.l4off + 7] === 0;
        assert.equal(zeroUdp, k.type === TunnelType.Gue && k.flags === 0);
        if (!zeroUdp) assert.ok(verifyL4Checksum(b, outer));
        assert.equal(decapsulate(b, outer, back, GUE_PORT), Reason.Ok);
        assert.equal(back.l3off, HEADROOM);
        assert.equal(back.ipEnd, HEADROOM + ip.length);
        assert.equal(hex(b, HEADROOM, ip.length), hex(Uint8Array.from(ip)));
        assert.equal(back.dport, k.isTcp ? 443 : 53);
      }),
      { numRuns: 200 },
    );
  });
});

describe('ICMP errors about tunnel packets (§7.3)', () => {
  it('the client request is found inside a quoted IPIP/GUE/GRE packet', () => {
    for (const type of [TunnelType.Ipip, TunnelType.Gue, TunnelType.Gre]) {
      const ip = ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(40000, 80, { payload: new Array(1400).fill(1) }));
      const b = staged(ip);
      const at = encap(b, new TunnelSpec(type, 4, DIRECTOR, SERVER, GUE_PORT, TUNNEL_ENCAP_FLAG_CSUM));
      assert.equal(parseIp(b, at, HEADROOM + ip.length, outer), Reason.Ok);
      // A router on the way answers with frag-needed about the tunnel packet.
      const err = new Uint8Array(600);
      const n = buildIcmpError(err, 0, err.length, b, outer, IcmpErrorKind.FragNeeded, 1400, addr('10.0.0.1'), 3);
      assert.equal(n, 576);
      const icmp = new PacketInfo();
      assert.equal(parseIp(err, 0, n, icmp), Reason.Ok);
      assert.equal(parseIcmpError(err, icmp, outer), Reason.Ok);
      assert.equal(outer.daddr4, SERVER.w0);
      assert.equal(decapsulate(err, outer, back, GUE_PORT, false, true), Reason.Ok);
      assert.equal(back.saddr4, v4('203.0.113.9'));
      assert.equal(back.sport, 40000);
      assert.equal(back.dport, 80);
    }
  });
});

function setIpCsum(b: Uint8Array, at: number): void {
  const c = ~refSum(b.subarray(at, at + 20)) & 0xffff;
  b[at + 10] = c >> 8;
  b[at + 11] = c & 255;
}

void IpAddr;
