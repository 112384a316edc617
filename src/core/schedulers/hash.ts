// The kernel's hash functions used by the schedulers, bit for bit.
//
// hash_32 (include/linux/hash.h): dh, sh, lblc and lblcr bucket their keys with it.
// hsiphash (lib/siphash.c): mh permutes dests and looks up clients with it. On 64-bit kernels
// hsiphash is SipHash-1-3 (one compression round, three finalisation rounds) with a 128-bit key
// made of two unsigned longs, truncated to 32 bits; 32-bit kernels use HalfSipHash instead and
// build different tables, so this is the 64-bit variant. JavaScript has no 64-bit integers that
// are fast, so each 64-bit word lives in two int32 halves (h = high, l = low).
// Also here: what sh and mh take from a packet (the address fold and, with their -port flag,
// the source port).

import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../constants.js';
import type { Flow } from '../flow.js';
import type { Service } from '../service.js';

const GOLDEN_RATIO_32 = 0x61c88647;

/** hash_32(val, bits): the top `bits` bits of val * GOLDEN_RATIO_32 (mod 2^32); 1 <= bits <= 32. */
export function hash32(val: number, bits: number): number {
  return Math.imul(val, GOLDEN_RATIO_32) >>> (32 - bits);
}

/** The port sh and mh hash with: the source port for TCP, UDP and SCTP, else 0. */
export function hashPort(flow: Flow): number {
  const p = flow.protocol;
  return p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP ? flow.sport : 0;
}

/** ip_vs_addr_fold of the packet's source address, folded by the service's family. */
export function sourceFold(svc: Service, flow: Flow): number {
  return svc.af === 4 ? flow.s0 >>> 0 : (flow.s0 ^ flow.s1 ^ flow.s2 ^ flow.s3) >>> 0;
}

/**
 * A hsiphash key, pre-mixed into the four initial state words. The first quarter of the first
 * SipRound (v0 += v1; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)) involves neither the message
 * nor v2/v3, so it is done here once per key; v0/v1 below are the state after it.
 */
export class HsiphashKey {
  readonly v0h: number;
  readonly v0l: number;
  readonly v1h: number;
  readonly v1l: number;
  readonly v2h: number;
  readonly v2l: number;
  readonly v3h: number;
  readonly v3l: number;

  /** key[0] = k0 and key[1] = k1 as 64-bit words given by halves. */
  constructor(k0h: number, k0l: number, k1h: number, k1l: number) {
    // SipHash's constants "somepseudorandomlygeneratedbytes", xored with the key.
    let v0h = 0x736f6d65 ^ k0h;
    let v0l = 0x70736575 ^ k0l;
    const v1h = 0x646f7261 ^ k1h;
    const v1l = 0x6e646f6d ^ k1l;
    this.v2h = 0x6c796765 ^ k0h;
    this.v2l = 0x6e657261 ^ k0l;
    this.v3h = 0x74656462 ^ k1h;
    this.v3l = 0x79746573 ^ k1l;
    const lo = (v0l + v1l) | 0;
    v0h = (v0h + v1h + ((lo >>> 0) < (v1l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    this.v1h = ((v1h << 13) | (v1l >>> 19)) ^ v0h;
    this.v1l = ((v1l << 13) | (v1h >>> 19)) ^ v0l;
    this.v0h = v0l;
    this.v0l = v0h;
  }

  /** Both key words equal to an unsigned long below 2^53 (mh's keys). */
  static repeated(k: number): HsiphashKey {
    const h = Math.floor(k / 4294967296) | 0;
    const l = k | 0;
    return new HsiphashKey(h, l, h, l);
  }
}

/**
 * hsiphash(&v, 4, key) on a 64-bit little-endian kernel: SipHash-1-3 of the 4-byte message v,
 * truncated to its low 32 bits. Returned as a signed int32 (take `>>> 0` for the kernel's u32):
 * unsigned values above 2^31 would be boxed as heap numbers on every call.
 *
 * Everything stays in int32: a 64-bit add carries when the unsigned low sum wraps below an
 * operand ((x >>> 0) < (y >>> 0) compares as unsigned).
 */
export function hsiphash32(key: HsiphashKey, v: number): number {
  let v0h = key.v0h;
  let v0l = key.v0l;
  let v1h = key.v1h;
  let v1l = key.v1l;
  let v2h = key.v2h;
  let v2l = key.v2l;
  // The last (only) block: message length 4 in the top byte, the 4 bytes little-endian below.
  const bh = 0x04000000;
  const bl = v | 0;
  let v3h = key.v3h ^ bh;
  let v3l = key.v3l ^ bl;
  let lo = 0;
  let h = 0;
  let l = 0;
  // The compression round, from its second quarter on (the first is in the key).
  // v2 += v3; v3 = rotl(v3, 16) ^ v2
  lo = (v2l + v3l) | 0;
  v2h = (v2h + v3h + ((lo >>> 0) < (v3l >>> 0) ? 1 : 0)) | 0;
  v2l = lo;
  h = (v3h << 16) | (v3l >>> 16);
  l = (v3l << 16) | (v3h >>> 16);
  v3h = h ^ v2h;
  v3l = l ^ v2l;
  // v0 += v3; v3 = rotl(v3, 21) ^ v0
  lo = (v0l + v3l) | 0;
  v0h = (v0h + v3h + ((lo >>> 0) < (v3l >>> 0) ? 1 : 0)) | 0;
  v0l = lo;
  h = (v3h << 21) | (v3l >>> 11);
  l = (v3l << 21) | (v3h >>> 11);
  v3h = h ^ v0h;
  v3l = l ^ v0l;
  // v2 += v1; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
  lo = (v2l + v1l) | 0;
  v2h = (v2h + v1h + ((lo >>> 0) < (v1l >>> 0) ? 1 : 0)) | 0;
  v2l = lo;
  h = (v1h << 17) | (v1l >>> 15);
  l = (v1l << 17) | (v1h >>> 15);
  v1h = h ^ v2h;
  v1l = l ^ v2l;
  h = v2h;
  v2h = v2l;
  v2l = h;
  // Finalisation: three full rounds.
  v0h ^= bh;
  v0l ^= bl;
  v2l ^= 0xff;
  for (let round = 0; round < 3; round++) {
    // v0 += v1; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
    lo = (v0l + v1l) | 0;
    v0h = (v0h + v1h + ((lo >>> 0) < (v1l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    h = (v1h << 13) | (v1l >>> 19);
    l = (v1l << 13) | (v1h >>> 19);
    v1h = h ^ v0h;
    v1l = l ^ v0l;
    h = v0h;
    v0h = v0l;
    v0l = h;
    // v2 += v3; v3 = rotl(v3, 16) ^ v2
    lo = (v2l + v3l) | 0;
    v2h = (v2h + v3h + ((lo >>> 0) < (v3l >>> 0) ? 1 : 0)) | 0;
    v2l = lo;
    h = (v3h << 16) | (v3l >>> 16);
    l = (v3l << 16) | (v3h >>> 16);
    v3h = h ^ v2h;
    v3l = l ^ v2l;
    // v0 += v3; v3 = rotl(v3, 21) ^ v0
    lo = (v0l + v3l) | 0;
    v0h = (v0h + v3h + ((lo >>> 0) < (v3l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    h = (v3h << 21) | (v3l >>> 11);
    l = (v3l << 21) | (v3h >>> 11);
    v3h = h ^ v0h;
    v3l = l ^ v0l;
    // v2 += v1; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
    lo = (v2l + v1l) | 0;
    v2h = (v2h + v1h + ((lo >>> 0) < (v1l >>> 0) ? 1 : 0)) | 0;
    v2l = lo;
    h = (v1h << 17) | (v1l >>> 15);
    l = (v1l << 17) | (v1h >>> 15);
    v1h = h ^ v2h;
    v1l = l ^ v2l;
    h = v2h;
    v2h = v2l;
    v2l = h;
  }
  return v0l ^ v1l ^ v2l ^ v3l;
}
