import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import {
  checksumValid,
  crc32c,
  csumAdjust,
  csumReplace16,
  csumReplace32,
  csumReplace128,
  diff16,
  diff32,
  foldSum,
  internetChecksum,
  ipv4HeaderChecksum,
  onesSum,
  setIpv4HeaderChecksum,
  verifyIpv4HeaderChecksum,
} from '../../src/codec/index.js';
import { refChecksum, refSum } from './packets.js';

const bytes = (len: { minLength: number; maxLength: number }) => fc.uint8Array(len);

describe('internet checksum', () => {
  it('matches the RFC 1071 worked example', () => {
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    assert.equal(onesSum(b, 0, 8), 0xddf2);
    assert.equal(internetChecksum(b, 0, 8), 0x220d);
  });

  it('computes a known IPv4 header checksum (0xb861)', () => {
    const h = Uint8Array.from([0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]);
    assert.equal(ipv4HeaderChecksum(h, 0), 0xb861);
    assert.ok(verifyIpv4HeaderChecksum(h, 0));
    h[10] = 0;
    h[11] = 0;
    setIpv4HeaderChecksum(h, 0);
    assert.equal((h[10] << 8) | h[11], 0xb861);
  });

  it('pads an odd trailing byte with zero', () => {
    const b = Uint8Array.from([0x12, 0x34, 0x56]);
    assert.equal(onesSum(b, 0, 3), 0x1234 + 0x5600);
  });

  it('agrees with a naive sum for any bytes, offset and initial value', () => {
    fc.assert(
      fc.property(bytes({ minLength: 0, maxLength: 300 }), fc.nat(8), fc.nat(0xfffff), (b, skip, initial) => {
        const off = Math.min(skip, b.length);
        const data = [...b.subarray(off)];
        if (data.length % 2) data.push(0);
        const ref = refSum([...data, (initial >>> 24) & 255, (initial >>> 16) & 255, (initial >>> 8) & 255, initial & 255]);
        assert.equal(onesSum(b, off, b.length - off, initial), ref);
      }),
    );
  });

  it('gives the same sum through views with any byteOffset, Buffers, and alternating buffers', () => {
    fc.assert(
      fc.property(bytes({ minLength: 64, maxLength: 400 }), fc.nat(31), fc.nat(40), (b, shift, skip) => {
        const backing = new ArrayBuffer(b.length + 64);
        const view = new Uint8Array(backing, shift, b.length);
        view.set(b);
        const buf = Buffer.from(b);
        const off = Math.min(skip, b.length);
        const data = [...b.subarray(off)];
        if (data.length % 2) data.push(0);
        const ref = refSum(data);
        // Three buffers in turn also exercise the two-entry DataView cache.
        assert.equal(onesSum(view, off, b.length - off), ref);
        assert.equal(onesSum(buf, off, b.length - off), ref);
        assert.equal(onesSum(b, off, b.length - off), ref);
        assert.equal(onesSum(view, off, b.length - off), ref);
      }),
    );
  });

  it('sums 64 KiB without leaving the safe range', () => {
    const b = new Uint8Array(65536).fill(0xff);
    assert.equal(onesSum(b, 0, b.length), 0xffff);
    assert.equal(onesSum(b, 0, b.length, 0xffffffff), 0xffff);
    assert.equal(foldSum(2 ** 40 + 5), foldSum((2 ** 40 % 0xffff) + 5));
  });

  it('validates: a packet with its checksum inserted sums to 0xffff', () => {
    fc.assert(
      fc.property(bytes({ minLength: 4, maxLength: 200 }), (b) => {
        const p = Uint8Array.from(b);
        p[0] = 0;
        p[1] = 0;
        const c = internetChecksum(p, 0, p.length);
        assert.equal(c, refChecksum(p));
        p[0] = c >>> 8;
        p[1] = c & 255;
        assert.ok(checksumValid(p, 0, p.length));
      }),
    );
  });
});

describe('RFC 1624 incremental update', () => {
  // A packet with a valid checksum in bytes 0..1 and a changed field elsewhere: the incremental
  // result must equal computing the checksum again over the changed bytes.
  function withChecksum(b: Uint8Array): Uint8Array {
    const p = Uint8Array.from(b);
    p[0] = 0;
    p[1] = 0;
    const c = internetChecksum(p, 0, p.length);
    p[0] = c >>> 8;
    p[1] = c & 255;
    return p;
  }
  // Checksums of all-zero data may come out as +0 (0xffff) one way and -0 (0x0000) the other:
  // the same value in ones' complement. Real packets (non-zero pseudo-header) never hit this.
  function same(a: number, b: number): void {
    assert.equal(a % 0xffff, b % 0xffff);
  }
  function recomputed(p: Uint8Array): number {
    const q = Uint8Array.from(p);
    q[0] = 0;
    q[1] = 0;
    return internetChecksum(q, 0, q.length);
  }

  it('16-bit word', () => {
    fc.assert(
      fc.property(bytes({ minLength: 6, maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 0xffff }), (b, at, word) => {
        const p = withChecksum(b);
        const i = 2 + 2 * (at % Math.floor((p.length - 2) / 2));
        const old = (p[i] << 8) | p[i + 1];
        p[i] = word >>> 8;
        p[i + 1] = word & 255;
        same(csumReplace16((p[0] << 8) | p[1], old, word), recomputed(p));
      }),
    );
  });

  it('32-bit word', () => {
    fc.assert(
      fc.property(bytes({ minLength: 8, maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (b, at, val) => {
        const p = withChecksum(b);
        const i = 2 + 2 * (at % Math.floor((p.length - 4) / 2));
        const old = ((p[i] << 24) | (p[i + 1] << 16) | (p[i + 2] << 8) | p[i + 3]) >>> 0;
        p[i] = val >>> 24;
        p[i + 1] = val >>> 16;
        p[i + 2] = val >>> 8;
        p[i + 3] = val;
        same(csumReplace32((p[0] << 8) | p[1], old, val), recomputed(p));
      }),
    );
  });

  it('128-bit address', () => {
    fc.assert(
      fc.property(bytes({ minLength: 20, maxLength: 100 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(), (b, addr, at) => {
        const p = withChecksum(b);
        const i = 2 + 2 * (at % Math.floor((p.length - 16) / 2));
        const c = csumReplace128((p[0] << 8) | p[1], p, i, addr, 0);
        p.set(addr, i);
        same(c, recomputed(p));
      }),
    );
  });

  it('combined differences applied once equal applying them one by one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffe }), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffff), fc.nat(0xffff), (c, a, b, x, y) => {
        const once = csumAdjust(c, diff32(a, b) + diff16(x, y));
        const twice = csumReplace16(csumReplace32(c, a, b), x, y);
        // Both are checksums of the same data; they may differ only as +0/-0 (0x0000 vs 0xffff).
        assert.equal(once % 0xffff, twice % 0xffff);
      }),
    );
  });
});

describe('crc32c', () => {
  it('matches the standard check value', () => {
    const b = new TextEncoder().encode('123456789');
    assert.equal(crc32c(b, 0, b.length), 0xe3069283);
  });
});
