import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { IpAddr } from '../../src/core/addr.js';
import {
  decrementHopLimit6,
  decrementTtl4,
  natIcmpIn,
  natIcmpOut,
  natRewriteDest,
  natRewriteDest4,
  natRewriteSource,
  natRewriteSource6,
  onesSum,
  PacketInfo,
  parseFrame,
  parseIcmpError,
  pseudoSum4,
  pseudoSum6,
  Reason,
  recomputeL4Checksum,
  verifyL4Checksum,
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
  type L4Spec,
  MAC_CLIENT,
  MAC_DIRECTOR,
  optionsExt,
  refChecksum,
  sctp,
  tcp,
  udp,
  v4,
} from './packets.js';

const info = new PacketInfo();
const inner = new PacketInfo();

function parsed(f: Uint8Array): Uint8Array {
  assert.equal(parseFrame(f, 0, f.length, info), Reason.Ok);
  return f;
}

describe('NAT rewrite, fixed cases', () => {
  it('DNAT of TCP/IPv4 equals the packet built for the real server', () => {
    const l4 = (dport: number) => tcp(40000, dport, { payload: [1, 2, 3, 4, 5] });
    const f = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, l4(80)));
    assert.equal(natRewriteDest4(f, info, v4('10.0.0.5'), 8080), Reason.Ok);
    assert.equal(hex(f), hex(frame4({ src: '203.0.113.9', dst: '10.0.0.5' }, l4(8080))));
    assert.equal(info.daddr4, v4('10.0.0.5'));
    assert.equal(info.dport, 8080);
  });

  it('SNAT of UDP/IPv6 equals the packet built from the VIP', () => {
    const f = parsed(frame6({ src: '2001:db8:1::5', dst: '2001:db8:ff::9' }, udp(5353, 40000, [9, 9, 9])));
    assert.equal(natRewriteSource(f, info, addr('2001:db8::80'), 53), Reason.Ok);
    assert.equal(hex(f), hex(frame6({ src: '2001:db8::80', dst: '2001:db8:ff::9' }, udp(53, 40000, [9, 9, 9]))));
  });

  it('computes the full checksum when the IPv4 UDP checksum was absent (0)', () => {
    const f = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(1111, 53, [1, 2, 3], true)));
    assert.equal(f[34 + 6] | f[34 + 7], 0);
    natRewriteDest4(f, info, v4('10.0.0.5'), 5353);
    assert.equal(hex(f), hex(frame4({ src: '203.0.113.9', dst: '10.0.0.5' }, udp(1111, 5353, [1, 2, 3]))));
    assert.ok(verifyL4Checksum(f, info));
  });

  it('sends a computed UDP checksum of 0 as 0xffff, on both paths', () => {
    // Choose the payload so that the rewritten datagram's checksum is exactly 0.
    const base = frame4({ src: '203.0.113.9', dst: '10.0.0.5' }, udp(1111, 5353, [0, 0]));
    parseFrame(base, 0, base.length, info);
    const c = (base[40] << 8) | base[41];
    const payload = [(c >>> 8) & 255, c & 255];
    // With this payload the sum is 0xffff, so the checksum is 0 -> 0xffff.
    const expect = frame4({ src: '203.0.113.9', dst: '10.0.0.5' }, udp(1111, 5353, payload));
    assert.equal((expect[40] << 8) | expect[41], 0xffff);
    for (const zero of [true, false]) {
      const f = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(1111, 53, payload, zero)));
      natRewriteDest4(f, info, v4('10.0.0.5'), 5353);
      assert.equal(hex(f), hex(expect), zero ? 'full path' : 'incremental path');
    }
  });

  it('verifies UDP over the UDP length, as a receiver trims trailing bytes', () => {
    const good = frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, udp(1, 2, [1, 2, 3]));
    const withTrailer = ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '203.0.113.9', dst: '192.0.2.10' }, { proto: 17, raw: [...good.subarray(34), 0xde, 0xad] }));
    parsed(withTrailer);
    assert.equal(info.udpLength, 11);
    assert.ok(verifyL4Checksum(withTrailer, info));
  });

  it('recomputes the SCTP CRC32c', () => {
    const f = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, sctp(2000, 3868)));
    assert.ok(verifyL4Checksum(f, info));
    natRewriteDest4(f, info, v4('10.0.0.5'), 3869);
    assert.equal(hex(f), hex(frame4({ src: '203.0.113.9', dst: '10.0.0.5' }, sctp(2000, 3869))));
    assert.ok(verifyL4Checksum(f, info));
  });

  it('updates a CHECKSUM_PARTIAL field with the pseudo-header change only', () => {
    const f = parsed(frame4({ src: '203.0.113.9', dst: '192.0.2.10' }, tcp(1, 80, { payload: [1, 2, 3] })));
    const len = info.ipEnd - info.l4off;
    const partial = (saddr: number, daddr: number) => {
      let s = pseudoSum4(saddr, daddr, 6, len);
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      return s;
    };
    f[34 + 16] = partial(info.saddr4, info.daddr4) >> 8;
    f[34 + 17] = partial(info.saddr4, info.daddr4) & 255;
    natRewriteDest4(f, info, v4('10.0.0.5'), 8080, true);
    assert.equal((f[50] << 8) | f[51], partial(v4('203.0.113.9'), v4('10.0.0.5')));
    assert.equal((f[36] << 8) | f[37], 8080);
  });

  it('rewrites only the IP header of a non-first fragment', () => {
    const f = parsed(ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '203.0.113.9', dst: '192.0.2.10', frag: 0x0010 }, { proto: 17, raw: [1, 2, 3, 4, 5, 6, 7, 8] })));
    natRewriteDest4(f, info, v4('10.0.0.5'), 9999);
    assert.equal(hex(f), hex(ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '203.0.113.9', dst: '10.0.0.5', frag: 0x0010 }, { proto: 17, raw: [1, 2, 3, 4, 5, 6, 7, 8] }))));
  });

  it('keeps ICMPv6 checksums right (they cover the pseudo-header)', () => {
    const f = parsed(frame6({ src: '2001:db8::1', dst: '2001:db8::2' }, icmpEcho(true, 5, 6, [1, 2, 3])));
    natRewriteDest(f, info, addr('2001:db8::77'), 0);
    assert.equal(hex(f), hex(frame6({ src: '2001:db8::1', dst: '2001:db8::77' }, icmpEcho(true, 5, 6, [1, 2, 3]))));
  });

  it('recomputeL4Checksum repairs every protocol', () => {
    const frames = [
      frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, tcp(1, 2, { payload: [5] })),
      frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, udp(1, 2, [5])),
      frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, sctp(1, 2)),
      frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpEcho(false, 1, 2, [3])),
      frame6({ src: '::1', dst: '::2' }, icmpEcho(true, 1, 2, [3])),
      frame6({ src: '::1', dst: '::2' }, tcp(1, 2, { payload: [5] })),
    ];
    for (const good of frames) {
      const f = parsed(Uint8Array.from(good));
      const c = info.l4off + (info.protocol === 6 ? 16 : info.protocol === 17 ? 6 : info.protocol === 132 ? 8 : 2);
      f[c] ^= 0x5a;
      assert.equal(verifyL4Checksum(f, info), false);
      assert.equal(recomputeL4Checksum(f, info), Reason.Ok);
      assert.equal(hex(f), hex(good));
    }
  });
});

// --- property tests: incremental update == packet built from scratch

const v4addr = fc.integer({ min: 1, max: 0xdfffffff }).map((n) => IpAddr.v4(n));
const v6addr = fc.tuple(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff)).map(([a, b, c, d]) => new IpAddr(6, a, b, c, d));
const port = fc.integer({ min: 0, max: 0xffff });
const payload = fc.array(fc.nat(255), { maxLength: 64 });
const l4kind = fc.constantFrom('tcp', 'udp', 'udp0', 'sctp');

function l4For(kind: string, sport: number, dport: number, data: number[]): L4Spec {
  if (kind === 'tcp') return tcp(sport, dport, { payload: data, seq: 77, flags: 0x18 });
  if (kind === 'sctp') return sctp(sport, dport, data);
  return udp(sport, dport, data, kind === 'udp0');
}

describe('NAT rewrite, properties', () => {
  it('IPv4 DNAT and SNAT equal recomputation (TCP, UDP, UDP without checksum, SCTP)', () => {
    fc.assert(
      fc.property(l4kind, v4addr, v4addr, v4addr, port, port, port, payload, fc.boolean(), (kind, c, vip, rs, cport, vport, rport, data, options) => {
        const ipOpts = options ? [0x94, 4, 0, 0] : [];
        // IN: client -> VIP rewritten to client -> RS
        const f = parsed(frame4({ src: c.toString(), dst: vip.toString(), options: ipOpts }, l4For(kind, cport, vport, data)));
        assert.equal(natRewriteDest(f, info, rs, rport), Reason.Ok);
        const expectIn = frame4({ src: c.toString(), dst: rs.toString(), options: ipOpts }, l4For(kind === 'udp0' ? 'udp' : kind, cport, rport, data));
        assert.equal(hex(f), hex(expectIn));
        // OUT: RS -> client rewritten to VIP -> client
        const g = parsed(frame4({ src: rs.toString(), dst: c.toString(), options: ipOpts }, l4For(kind, rport, cport, data)));
        assert.equal(natRewriteSource(g, info, vip, vport), Reason.Ok);
        const expectOut = frame4({ src: vip.toString(), dst: c.toString(), options: ipOpts }, l4For(kind === 'udp0' ? 'udp' : kind, vport, cport, data));
        assert.equal(hex(g), hex(expectOut));
      }),
      { numRuns: 300 },
    );
  });

  it('IPv6 DNAT and SNAT equal recomputation, with extension headers', () => {
    const kind6 = fc.constantFrom('tcp', 'udp', 'sctp');
    fc.assert(
      fc.property(kind6, v6addr, v6addr, v6addr, port, port, port, payload, fc.boolean(), (kind, c, vip, rs, cport, vport, rport, data, ext) => {
        const exts = ext ? [optionsExt(0, 8), optionsExt(60, 16)] : [];
        const f = parsed(frame6({ src: c.toString(), dst: vip.toString(), ext: exts }, l4For(kind, cport, vport, data)));
        natRewriteDest(f, info, rs, rport);
        assert.equal(hex(f), hex(frame6({ src: c.toString(), dst: rs.toString(), ext: exts }, l4For(kind, cport, rport, data))));
        const g = parsed(frame6({ src: rs.toString(), dst: c.toString(), ext: exts }, l4For(kind, rport, cport, data)));
        natRewriteSource6(g, info, vip.w0, vip.w1, vip.w2, vip.w3, vport);
        assert.equal(hex(g), hex(frame6({ src: vip.toString(), dst: c.toString(), ext: exts }, l4For(kind, vport, cport, data))));
      }),
      { numRuns: 300 },
    );
  });

  it('IPv6 pseudo-header incremental update equals the full sum', () => {
    fc.assert(
      fc.property(v6addr, v6addr, v6addr, payload, (a, b, n, data) => {
        const f = parsed(frame6({ src: a.toString(), dst: b.toString() }, tcp(1, 2, { payload: data })));
        natRewriteDest(f, info, n, 2);
        const len = info.ipEnd - info.l4off;
        assert.equal(onesSum(f, info.l4off, len, pseudoSum6(f, info.saddrOff, info.daddrOff, 6, len)), 0xffff);
      }),
    );
  });

  it('TTL decrement keeps the IPv4 header checksum equal to recomputation', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 255 }), fc.nat(255), v4addr, v4addr, (ttl, tos, s, d) => {
        const f = parsed(frame4({ src: s.toString(), dst: d.toString(), ttl, tos }, udp(1, 2)));
        assert.equal(decrementTtl4(f, info), ttl - 1);
        assert.equal(hex(f), hex(frame4({ src: s.toString(), dst: d.toString(), ttl: ttl - 1, tos }, udp(1, 2))));
      }),
    );
  });

  it('TTL/hop limit <= 1 is refused and the packet left alone', () => {
    for (const ttl of [0, 1]) {
      const f = parsed(frame4({ src: '10.0.0.1', dst: '10.0.0.2', ttl }, udp(1, 2)));
      const before = hex(f);
      assert.equal(decrementTtl4(f, info), Reason.TtlExceeded);
      assert.equal(hex(f), before);
      const g = parsed(frame6({ src: '::1', dst: '::2', hop: ttl }, udp(1, 2)));
      assert.equal(decrementHopLimit6(g, info), Reason.TtlExceeded);
    }
    const g = parsed(frame6({ src: '::1', dst: '::2', hop: 2 }, udp(1, 2)));
    assert.equal(decrementHopLimit6(g, info), 1);
    assert.equal(g[14 + 7], 1);
  });
});

describe('ICMP error translation (spec §7.1, §7.2)', () => {
  // The expected result, built independently: patch the quoted bytes, fix the quoted IPv4
  // header checksum, rebuild the outer packet (the quoted L4 checksum is left stale, as the
  // kernel leaves it).
  function patchQuoted(q: number[], v6: boolean, addrAt: number, a: IpAddr, portAt: number, p: number): number[] {
    const out = [...q];
    const bytes = a.toBytes();
    for (let i = 0; i < bytes.length; i++) out[addrAt + i] = bytes[i];
    const ihl = v6 ? 40 : (out[0] & 15) * 4;
    out[ihl + portAt] = p >> 8;
    out[ihl + portAt + 1] = p & 255;
    if (!v6) {
      out[10] = 0;
      out[11] = 0;
      const c = refChecksum(out.slice(0, ihl));
      out[10] = c >> 8;
      out[11] = c & 255;
    }
    return out;
  }

  it('IN: client reports about VIP -> client; translated for the real server (IPv4)', () => {
    // Our reply VIP:80 -> client:40000 (after SNAT) got a frag-needed back from a router.
    const quoted = ipv4({ src: '192.0.2.10', dst: '203.0.113.9', ttl: 60 }, tcp(80, 40000, { payload: new Array(30).fill(7) })).slice(0, 28);
    const f = parsed(frame4({ src: '198.51.100.1', dst: '192.0.2.10' }, icmpMessage(false, 3, 4, 1400, quoted)));
    assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
    assert.equal(natIcmpIn(f, info, inner, addr('10.0.0.5'), 8080), Reason.Ok);
    const expect = frame4({ src: '198.51.100.1', dst: '10.0.0.5' }, icmpMessage(false, 3, 4, 1400, patchQuoted(quoted, false, 12, addr('10.0.0.5'), 0, 8080)));
    assert.equal(hex(f), hex(expect));
    assert.equal(inner.sport, 8080);
  });

  it('OUT: a real server reports about client -> RS; translated to come from the VIP (IPv4)', () => {
    const quoted = ipv4({ src: '203.0.113.9', dst: '10.0.0.5' }, udp(40000, 5353, [1, 2, 3, 4, 5, 6]));
    const f = parsed(frame4({ src: '10.0.0.5', dst: '203.0.113.9' }, icmpMessage(false, 3, 3, 0, quoted)));
    assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
    assert.equal(natIcmpOut(f, info, inner, addr('192.0.2.10'), 53), Reason.Ok);
    const expect = frame4({ src: '192.0.2.10', dst: '203.0.113.9' }, icmpMessage(false, 3, 3, 0, patchQuoted(quoted, false, 16, addr('192.0.2.10'), 2, 53)));
    assert.equal(hex(f), hex(expect));
  });

  it('IN and OUT for ICMPv6 (checksum over the pseudo-header)', () => {
    const quoted = ipv6({ src: '2001:db8::80', dst: '2001:db8:c::9' }, tcp(443, 50000, { payload: new Array(20).fill(1) }));
    const f = parsed(frame6({ src: '2001:db8:f::1', dst: '2001:db8::80' }, icmpMessage(true, 2, 0, 1280, quoted)));
    assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
    assert.equal(natIcmpIn(f, info, inner, addr('2001:db8:5::5'), 8443), Reason.Ok);
    const expect = frame6({ src: '2001:db8:f::1', dst: '2001:db8:5::5' }, icmpMessage(true, 2, 0, 1280, patchQuoted(quoted, true, 8, addr('2001:db8:5::5'), 0, 8443)));
    assert.equal(hex(f), hex(expect));

    const q2 = ipv6({ src: '2001:db8:c::9', dst: '2001:db8:5::5' }, udp(50000, 5353, [1]));
    const g = parsed(frame6({ src: '2001:db8:5::5', dst: '2001:db8:c::9' }, icmpMessage(true, 1, 4, 0, q2)));
    assert.equal(parseIcmpError(g, info, inner), Reason.Ok);
    assert.equal(natIcmpOut(g, info, inner, addr('2001:db8::80'), 53), Reason.Ok);
    const expect2 = frame6({ src: '2001:db8::80', dst: '2001:db8:c::9' }, icmpMessage(true, 1, 4, 0, patchQuoted(q2, true, 24, addr('2001:db8::80'), 2, 53)));
    assert.equal(hex(g), hex(expect2));
  });

  it('translates random quoted TCP/UDP packets with any quote length >= header + 4', () => {
    fc.assert(
      fc.property(v4addr, v4addr, v4addr, port, port, port, fc.integer({ min: 24, max: 60 }), fc.boolean(), (c, vip, rs, cport, vport, rport, qlen, isTcp) => {
        const orig = ipv4({ src: vip.toString(), dst: c.toString() }, isTcp ? tcp(vport, cport, { payload: new Array(40).fill(3) }) : udp(vport, cport, new Array(40).fill(3)));
        const quoted = orig.slice(0, qlen);
        const f = parsed(frame4({ src: c.toString(), dst: vip.toString() }, icmpMessage(false, 11, 0, 0, quoted)));
        assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
        assert.equal(natIcmpIn(f, info, inner, rs, rport), Reason.Ok);
        const expect = frame4({ src: c.toString(), dst: rs.toString() }, icmpMessage(false, 11, 0, 0, patchQuoted(quoted, false, 12, rs, 0, rport)));
        assert.equal(hex(f), hex(expect));
      }),
    );
  });

  it('refuses a quote without the whole inner header', () => {
    const f = parsed(frame4({ src: '10.0.0.1', dst: '10.0.0.2' }, icmpMessage(false, 3, 3, 0, [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17])));
    assert.equal(parseIcmpError(f, info, inner), Reason.Truncated);
  });

  it('works on fragments of the quoted packet: non-first fragments get no port rewrite', () => {
    const quoted = ether(MAC_DIRECTOR, MAC_CLIENT, 0x86dd, ipv6({ src: '2001:db8::80', dst: '2001:db8::9', ext: [fragmentExt(8, false, 1)] }, { proto: 17, raw: [1, 2, 3, 4, 5, 6, 7, 8] })).subarray(14);
    const f = parsed(frame6({ src: '2001:db8::9', dst: '2001:db8::80' }, icmpMessage(true, 3, 1, 0, [...quoted])));
    assert.equal(parseIcmpError(f, info, inner), Reason.Ok);
    assert.equal(inner.l4off, -1);
    assert.equal(natIcmpIn(f, info, inner, addr('2001:db8::5'), 9), Reason.Ok);
    assert.equal(f.subarray(14 + 48 + 40 + 8).join(','), '1,2,3,4,5,6,7,8');
  });
});
