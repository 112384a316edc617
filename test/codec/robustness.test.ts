// Hostile input: random and mutated frames must never make the codec throw, and it must never
// read or write outside the window it was given. Buffers are wrapped in a Proxy that throws on
// any index access outside the window, so an out-of-bounds read is a failure even when it
// would have read harmless memory.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import {
  buildIcmpError,
  decapsulate,
  decrementHopLimit6,
  decrementTtl4,
  encapsulate,
  IcmpErrorKind,
  icmpEchoToReply,
  natIcmpIn,
  natRewriteDest,
  natRewriteSource,
  PacketInfo,
  parseFrame,
  parseIcmpError,
  parseNeighborDiscovery,
  REASON_COUNT,
  recomputeL4Checksum,
  TunnelSpec,
  TunnelType,
  verifyL4Checksum,
} from '../../src/codec/index.js';
import { addr, ether, fragmentExt, frame4, frame6, icmpEcho, icmpMessage, ipv4, ipv6, MAC_CLIENT, MAC_DIRECTOR, optionsExt, sctp, tcp, udp } from './packets.js';

function isIndex(k: string | symbol): number {
  if (typeof k !== 'string') return -1;
  const i = Number(k);
  return Number.isInteger(i) && i >= 0 && String(i) === k ? i : -1;
}

/** `buf` where reads outside [lo, hi) and writes outside [wlo, whi) throw. */
function guarded(buf: Uint8Array, lo: number, hi: number, wlo = lo, whi = hi): Uint8Array {
  return new Proxy(buf, {
    get(t, k) {
      const i = isIndex(k);
      if (i >= 0) {
        if (i < lo || i >= hi) throw new RangeError(`read at ${i} outside [${lo}, ${hi})`);
        return t[i];
      }
      const v = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
    set(t, k, v) {
      const i = isIndex(k);
      if (i < 0) return Reflect.set(t, k, v, t);
      if (i < wlo || i >= whi) throw new RangeError(`write at ${i} outside [${wlo}, ${whi})`);
      t[i] = v;
      return true;
    },
  });
}

const info = new PacketInfo();
const inner = new PacketInfo();
const third = new PacketInfo();
const OUT = new Uint8Array(2048);
const SPECS = [
  new TunnelSpec(TunnelType.Ipip, 4, addr('10.0.0.254'), addr('10.0.0.5')),
  new TunnelSpec(TunnelType.Gue, 6, addr('2001:db8::fe'), addr('2001:db8::5'), 6080, 3),
  new TunnelSpec(TunnelType.Gre, 4, addr('10.0.0.254'), addr('10.0.0.5'), 0, 1),
];

/** Every codec entry point that takes a received frame, on `frame` at `off` in a bigger buffer. */
function exercise(bytes: Uint8Array, cut: number): void {
  const pre = 48;
  const mem = new Uint8Array(pre + bytes.length + 48).fill(0xcc);
  mem.set(bytes, pre);
  const end = pre + Math.min(cut, bytes.length);
  const buf = guarded(mem, pre, end);
  const r = parseFrame(buf, pre, end, info);
  assert.equal(typeof r, 'number');
  assert.ok(r <= 0 && r > -REASON_COUNT, `reason ${r}`);
  if (r < 0 || info.ipVersion === 0) return;
  assert.ok(info.ipEnd <= end && info.l3off >= pre);
  assert.ok(info.l4off === -1 || (info.l4off >= info.l3off && info.l4off <= info.ipEnd));

  // Read-only entry points.
  verifyL4Checksum(buf, info);
  parseNeighborDiscovery(buf, info);
  if (parseIcmpError(buf, info, inner) === 0) {
    assert.ok(inner.ipEnd <= info.ipEnd && inner.l3off > info.l3off);
    decapsulate(buf, inner, third, 6080, false, true);
  }
  decapsulate(buf, info, third, 6080, true, false);
  // decapsulate may apply a GUE remote checksum, which writes inside the packet: allowed.

  // Builders read the frame and write only into their own output window.
  const out = guarded(OUT, 100, 700);
  for (const kind of [IcmpErrorKind.PortUnreachable, IcmpErrorKind.FragNeeded]) {
    const n = buildIcmpError(out, 100, 700, buf, info, kind, 1400, addr(info.ipVersion === 4 ? '192.0.2.1' : '2001:db8::1'), 1);
    assert.ok(n < 0 || n <= 600);
  }

  // Rewrites stay inside the IP packet (echo replies also swap MACs in the Ethernet header).
  const packetOnly = guarded(mem, pre, end, info.l3off, info.ipEnd);
  const snapshot = Uint8Array.from(mem);
  const a = info.ipVersion === 4 ? addr('10.9.8.7') : addr('2001:db8::77');
  natRewriteDest(packetOnly, info, a, 1234);
  natRewriteSource(packetOnly, info, a, 4321);
  if (parseIcmpError(packetOnly, info, inner) === 0) natIcmpIn(packetOnly, info, inner, a, 99);
  recomputeL4Checksum(packetOnly, info);
  if (info.ipVersion === 4) decrementTtl4(packetOnly, info);
  else decrementHopLimit6(packetOnly, info);
  for (let i = 0; i < mem.length; i++) if (i < pre || i >= end) assert.equal(mem[i], snapshot[i]);
  icmpEchoToReply(guarded(mem, pre, end, pre, info.ipEnd), info);

  // Encapsulation writes (and checksums) only the headroom and the packet.
  if (parseFrame(mem, pre, end, info) === 0 && info.ipVersion !== 0) {
    for (const spec of SPECS) {
      const staged = guarded(mem, 0, end, 0, info.ipEnd);
      const at = encapsulate(staged, info, spec, 7, 5000, 0, 0);
      assert.ok(at < 0 || at >= 0);
      parseFrame(mem, pre, end, info);
    }
  }
}

const addr4 = fc.constantFrom('10.0.0.1', '192.0.2.10', '224.0.0.5', '255.255.255.255', '0.0.0.0');
const addr6 = fc.constantFrom('2001:db8::1', '2001:db8::80', 'ff02::1:ff00:80', '::', 'fe80::1');
const l4 = fc.oneof(
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff), fc.array(fc.nat(255), { maxLength: 40 })).map(([s, d, p]) => tcp(s, d, { payload: p })),
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff), fc.array(fc.nat(255), { maxLength: 40 }), fc.boolean()).map(([s, d, p, z]) => udp(s, d, p, z)),
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([s, d]) => sctp(s, d)),
  fc.tuple(fc.boolean(), fc.nat(0xffff)).map(([v6, id]) => icmpEcho(v6, id, 1, [1, 2])),
);

const validFrame: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(addr4, addr4, l4, fc.boolean()).map(([s, d, p, vlan]) => frame4({ src: s, dst: d }, p, vlan ? 5 : -1)),
  fc.tuple(addr6, addr6, l4, fc.boolean()).map(([s, d, p, ext]) => frame6({ src: s, dst: d, ext: ext ? [optionsExt(0), fragmentExt(0, false, 1)] : [] }, p)),
  // ICMP errors quoting something, and tunnel packets.
  fc.tuple(addr4, l4).map(([s, p]) => frame4({ src: s, dst: '192.0.2.10' }, icmpMessage(false, 3, 4, 1400, ipv4({ src: '192.0.2.10', dst: s }, p)))),
  fc.tuple(addr6, l4).map(([s, p]) => frame6({ src: s, dst: '2001:db8::80', hop: 255 }, icmpMessage(true, 1, 4, 0, ipv6({ src: '2001:db8::80', dst: s }, p)))),
  l4.map((p) => ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '10.0.0.254', dst: '10.0.0.5' }, { proto: 4, raw: ipv4({ src: '1.2.3.4', dst: '5.6.7.8' }, p) }))),
  l4.map((p) => ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '10.0.0.254', dst: '10.0.0.5' }, udp(1, 6080, [0, 4, 0, 0, ...ipv4({ src: '1.2.3.4', dst: '5.6.7.8' }, p)])))),
  l4.map((p) => ether(MAC_DIRECTOR, MAC_CLIENT, 0x0800, ipv4({ src: '10.0.0.254', dst: '10.0.0.5' }, udp(1, 6080, [2, 4, 0, 1, 0x80, 0, 0, 0, 0, 20, 0, 36, ...ipv4({ src: '1.2.3.4', dst: '5.6.7.8' }, p)])))),
  l4.map((p) => ether(MAC_DIRECTOR, MAC_CLIENT, 0x86dd, ipv6({ src: '::1', dst: '::2' }, { proto: 47, raw: [0xb0, 0, 0x86, 0xdd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, ...ipv6({ src: '::3', dst: '::4' }, p)] }))),
);

const mutated = fc
  .tuple(validFrame, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }), fc.nat())
  .map(([f, flips, cut]) => {
    const b = Uint8Array.from(f);
    for (const [at, v] of flips) b[at % b.length] = v;
    return { bytes: b, cut: cut % (b.length + 1) };
  });

describe('robustness', () => {
  it('random bytes: no throw, no access outside the window', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (b, cut) => {
        exercise(b, cut % (b.length + 1));
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes behind a valid Ethernet/IP prefix', () => {
    const prefix = fc.constantFrom([0x08, 0x00, 0x45], [0x86, 0xdd, 0x60], [0x08, 0x06, 0x00], [0x81, 0x00, 0x00, 0x05, 0x08, 0x00, 0x46]);
    fc.assert(
      fc.property(prefix, fc.uint8Array({ minLength: 0, maxLength: 120 }), (p, rest) => {
        const b = Uint8Array.from([...MAC_DIRECTOR, ...MAC_CLIENT, ...p, ...rest]);
        for (let cut = 0; cut <= b.length; cut += 7) exercise(b, cut);
        exercise(b, b.length);
      }),
      { numRuns: 500 },
    );
  });

  it('valid frames with flipped bytes and truncation', () => {
    fc.assert(
      fc.property(mutated, ({ bytes, cut }) => exercise(bytes, cut)),
      { numRuns: 3000 },
    );
  });

  it('valid frames, every truncation length', () => {
    fc.assert(
      fc.property(validFrame, (f) => {
        for (let cut = 0; cut <= f.length; cut++) exercise(f, cut);
      }),
      { numRuns: 60 },
    );
  });
});
