// hash_32 and hsiphash against the spec's vectors, and the 64-bit helpers against BigInt.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HsiphashKey, hash32, hsiphash32 } from '../../../src/core/schedulers/hash.js';
import { cmpProducts, fls, gcd, randomBelow } from '../../../src/core/schedulers/util/arith.js';

const MASK64 = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & MASK64;

/** A plain SipHash-c-d over bytes with BigInt, to check the fast 32-bit-halves version. */
function sipHash(k0: bigint, k1: bigint, msg: Uint8Array, cRounds: number, dRounds: number): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & MASK64;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK64;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & MASK64;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & MASK64;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const word = (at: number, n: number) => {
    let m = 0n;
    for (let i = n - 1; i >= 0; i--) m = (m << 8n) | BigInt(msg[at + i]!);
    return m;
  };
  const full = msg.length - (msg.length % 8);
  for (let at = 0; at < full; at += 8) {
    const m = word(at, 8);
    v3 ^= m;
    for (let r = 0; r < cRounds; r++) round();
    v0 ^= m;
  }
  const b = (BigInt(msg.length & 0xff) << 56n) | word(full, msg.length - full);
  v3 ^= b;
  for (let r = 0; r < cRounds; r++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let r = 0; r < dRounds; r++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

const le32 = (v: number) => new Uint8Array(new Uint32Array([v >>> 0]).buffer);

test('hash_32: the spec §14 bucket vectors', () => {
  assert.equal(hash32(0x0a000001, 8), 39); // dh, daddr 10.0.0.1
  assert.equal(hash32(0xc0a80101, 8), 136); // sh, saddr 192.168.1.1
  assert.equal(hash32((0xc0a80101 + 12345) >>> 0, 8), 231); // sh-port, port 12345
  assert.equal(hash32(0x0a010203, 10), 10); // lblc/lblcr, daddr 10.1.2.3
});

test('SipHash reference: the official SipHash-2-4 vectors', () => {
  const k0 = 0x0706050403020100n;
  const k1 = 0x0f0e0d0c0b0a0908n;
  assert.equal(sipHash(k0, k1, new Uint8Array(0), 2, 4), 0x726fdb47dd0e0e31n);
  assert.equal(sipHash(k0, k1, Uint8Array.from({ length: 15 }, (_, i) => i), 2, 4), 0xa129ca6149be45e5n);
});

test('hsiphash: SipHash-1-3 of the 4-byte value, low 32 bits (64-bit kernels)', () => {
  const keys = [2654435761, 2654446892, 0, 1, 0xffffffff, 2 ** 52 + 12345];
  fc.assert(
    fc.property(fc.constantFrom(...keys), fc.integer({ min: 0, max: 0xffffffff }), (k, v) => {
      const expected = Number(sipHash(BigInt(k), BigInt(k), le32(v), 1, 3) & 0xffffffffn);
      assert.equal(hsiphash32(HsiphashKey.repeated(k), v) >>> 0, expected);
    }),
    { numRuns: 500 },
  );
});

test('hsiphash: mh offsets and skips of §14 (M = 4093)', () => {
  const h1 = HsiphashKey.repeated(2654435761);
  const h2 = HsiphashKey.repeated(2654446892);
  const vectors: [number, number, number][] = [
    [0x0a000001, 3167, 700],
    [0x0a000002, 1231, 3544],
    [0x0a000003, 1631, 3453],
  ];
  for (const [addr, offset, skip] of vectors) {
    assert.equal((hsiphash32(h1, addr + 80) >>> 0) % 4093, offset);
    assert.equal(((hsiphash32(h2, addr + 80) >>> 0) % 4092) + 1, skip);
  }
});

test('cmpProducts: exact sign of a*b - c*d, also beyond 2^53', () => {
  const int = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: -3, max: 3 }));
  fc.assert(
    fc.property(int, int, int, int, (a, b, c, d) => {
      const diff = BigInt(a) * BigInt(b) - BigInt(c) * BigInt(d);
      assert.equal(cmpProducts(a, b, c, d), diff > 0n ? 1 : diff < 0n ? -1 : 0);
    }),
    { numRuns: 5000 },
  );
  // Products that differ by one but round to the same double.
  const big = 2 ** 31 - 1;
  assert.equal(cmpProducts(big, big, big - 1, big + 1), 1);
  assert.equal(cmpProducts(big - 1, big + 1, big, big), -1);
  assert.equal(cmpProducts(big, big - 2, big - 1, big - 1), -1);
});

test('get_random_u32_below: the high word of ceil * rand, biased low words drawn again', () => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  fc.assert(
    fc.property(u32, fc.array(u32, { minLength: 4, maxLength: 4 }), (ceil, rands) => {
      // The kernel's loop with BigInt.
      let k = 0;
      let expected: bigint;
      if (ceil === 0) expected = BigInt(rands[0]!);
      else {
        const c = BigInt(ceil);
        let mult = c * BigInt(rands[k++]!);
        const bound = ((1n << 32n) - c) % c;
        if ((mult & 0xffffffffn) < c) while ((mult & 0xffffffffn) < bound && k < rands.length) mult = c * BigInt(rands[k++]!);
        expected = mult >> 32n;
      }
      // Once the drawn numbers run out, 2^32 - 1 ends the loop (its low word is never biased).
      let j = 0;
      const got = randomBelow(() => rands[j++] ?? 0xffffffff, ceil);
      if (k < rands.length) assert.equal(BigInt(got), expected);
    }),
    { numRuns: 3000 },
  );
  // ceil * rand >> 32 ...
  assert.equal(
    randomBelow(() => 0x80000001, 10),
    5,
  );
  assert.equal(
    randomBelow(() => 0xffffffff, 10),
    9,
  );
  assert.equal(
    randomBelow(() => 7, 0),
    7,
  );
  // ... except that a low word below 2^32 mod ceil (here 6) is biased and drawn again.
  const draws = [0x80000000, 0xffffffff];
  let j = 0;
  assert.equal(
    randomBelow(() => draws[j++]!, 10),
    9,
  );
  assert.equal(j, 2);
});

test('gcd and fls', () => {
  assert.equal(gcd(12, 18), 6);
  assert.equal(gcd(7, 5), 1);
  assert.equal(fls(0), 0);
  assert.equal(fls(1), 1);
  assert.equal(fls(64), 7);
  assert.equal(fls(0x7fffffff), 31);
});
