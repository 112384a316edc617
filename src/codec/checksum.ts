// The Internet checksum (RFC 1071), pseudo-header sums, RFC 1624 incremental updates, and
// CRC32c for SCTP. Sums are kept as plain non-negative numbers and folded once at the end:
// even and odd bytes are summed separately so no intermediate leaves the small-integer range.

import { rd16 } from './bytes.js';
import type { AddrWords } from './info.js';

/** Folds a non-negative sum (< 2^53) to 16 bits with end-around carry; 0 only when s is 0. */
export function foldSum(s: number): number {
  // 2^32 = 1 (mod 0xffff), so folding 32-bit halves first keeps >>> in range.
  while (s > 0xffffffff) s = (s % 0x100000000) + Math.floor(s / 0x100000000);
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  return s;
}

/** Below this length byte loads win; above it 32-bit DataView loads are about twice as fast. */
const WIDE_SUM_MIN = 64;

// DataViews for the last two arrays summed (typically the receive and transmit rings), keyed
// by the array object because reading `.buffer` is slow; long sums allocate nothing once warm.
let viewArrA: Uint8Array | null = null;
let viewA: DataView | null = null;
let viewArrB: Uint8Array | null = null;
let viewB: DataView | null = null;

function viewOf(buf: Uint8Array): DataView {
  if (buf === viewArrA) return viewA!;
  let dv: DataView;
  if (buf === viewArrB) {
    dv = viewB!;
  } else {
    const ab = buf.buffer;
    dv = viewA?.buffer === ab ? viewA : viewB?.buffer === ab ? viewB : new DataView(ab);
  }
  viewArrB = viewArrA;
  viewB = viewA;
  viewArrA = buf;
  viewA = dv;
  return dv;
}

/**
 * Ones' complement sum of buf[off, off+len) read as big-endian 16-bit words (a trailing odd
 * byte is padded with zero), plus `initial`; folded, not complemented.
 */
export function onesSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  // isView is false for a Proxy standing in for the buffer (the bounds tests), which then
  // takes the byte path where every read goes through the proxy.
  if (len >= WIDE_SUM_MIN && off >= 0 && off + len <= buf.length && ArrayBuffer.isView(buf)) return wideSum(buf, off, len, initial);
  let hi = 0;
  let lo = 0;
  let i = off;
  const end = off + len;
  const end8 = end - 7;
  for (; i < end8; i += 8) {
    hi += buf[i] + buf[i + 2] + buf[i + 4] + buf[i + 6];
    lo += buf[i + 1] + buf[i + 3] + buf[i + 5] + buf[i + 7];
  }
  for (; i + 1 < end; i += 2) {
    hi += buf[i];
    lo += buf[i + 1];
  }
  if (i < end) hi += buf[i];
  return foldSum(hi * 256 + lo + initial);
}

function wideSum(buf: Uint8Array, off: number, len: number, initial: number): number {
  const dv = viewOf(buf);
  let i = buf.byteOffset + off;
  const end = i + len;
  const end16 = end - 15;
  // Big-endian 32-bit words: hi16 * 65536 + lo16 = hi16 + lo16 (mod 0xffff). A double holds
  // the sum exactly (64 KiB of words stays far below 2^53). Starting from -0 rather than a
  // small integer makes V8 keep the accumulator an unboxed double: from 0 it boxes a heap
  // number per iteration.
  let s = -0;
  for (; i < end16; i += 16) s += dv.getUint32(i) + dv.getUint32(i + 4) + dv.getUint32(i + 8) + dv.getUint32(i + 12);
  for (; i + 3 < end; i += 4) s += dv.getUint32(i);
  for (; i + 1 < end; i += 2) s += dv.getUint16(i);
  if (i < end) s += dv.getUint8(i) << 8;
  s += initial;
  // Folded here, in integer halves, rather than by a call that would box the double.
  const q = Math.floor(s / 0x100000000);
  const r = s - q * 0x100000000;
  let t = (r >>> 16) + (r & 0xffff) + (q >>> 16) + (q & 0xffff);
  t = (t >>> 16) + (t & 0xffff);
  return (t >>> 16) + (t & 0xffff);
}

/** The checksum field value for buf[off, off+len) with the field itself zero: ~sum. */
export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return 0xffff - onesSum(buf, off, len, initial);
}

/** Unfolded IPv4 pseudo-header sum (addresses as unsigned numbers). */
export function pseudoSum4(saddr: number, daddr: number, protocol: number, length: number): number {
  return (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + protocol + length;
}

/** Unfolded IPv6 pseudo-header sum, addresses read from the packet. */
export function pseudoSum6(buf: Uint8Array, saddrOff: number, daddrOff: number, protocol: number, length: number): number {
  return onesSum(buf, saddrOff, 16) + onesSum(buf, daddrOff, 16) + protocol + (length >>> 16) + (length & 0xffff);
}

/** Unfolded sum of the eight 16-bit words of an address given as words. */
export function addrWordsSum(a: AddrWords): number {
  return word32Sum(a.w0 | 0) + word32Sum(a.w1 | 0) + word32Sum(a.w2 | 0) + word32Sum(a.w3 | 0);
}

function word32Sum(w: number): number {
  return (w >>> 16) + (w & 0xffff);
}

/**
 * The RFC 1624 difference term for replacing the 32-bit value `oldVal` by `newVal`
 * (~m + m' over both halves), unfolded; add several and apply once with csumAdjust.
 */
export function diff32(oldVal: number, newVal: number): number {
  return 0x1fffe - (oldVal >>> 16) - (oldVal & 0xffff) + (newVal >>> 16) + (newVal & 0xffff);
}

/** The RFC 1624 difference term for replacing a 16-bit word. */
export function diff16(oldVal: number, newVal: number): number {
  return 0xffff - (oldVal & 0xffff) + (newVal & 0xffff);
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + diff), for a checksum field that holds a complemented sum. */
export function csumAdjust(check: number, diff: number): number {
  return 0xffff - foldSum(0xffff - check + diff);
}

/**
 * The same update for a CHECKSUM_PARTIAL field, which holds the folded pseudo-header sum
 * uncomplemented (what the NIC expects); only pseudo-header changes go into `diff`.
 */
export function csumAdjustPartial(check: number, diff: number): number {
  return foldSum(check + diff);
}

/** Checksum field after one 16-bit word of the covered data changed. */
export function csumReplace16(check: number, oldWord: number, newWord: number): number {
  return csumAdjust(check, diff16(oldWord, newWord));
}

/** Checksum field after one 32-bit word (an IPv4 address) changed. */
export function csumReplace32(check: number, oldVal: number, newVal: number): number {
  return csumAdjust(check, diff32(oldVal, newVal));
}

/**
 * Checksum field after a 128-bit value (an IPv6 address) at oldBuf[oldOff] is replaced by the
 * one at newBuf[newOff]; call before overwriting the old address.
 */
export function csumReplace128(check: number, oldBuf: Uint8Array, oldOff: number, newBuf: Uint8Array, newOff: number): number {
  let d = 0;
  for (let i = 0; i < 16; i += 2) d += 0xffff - rd16(oldBuf, oldOff + i) + rd16(newBuf, newOff + i);
  return csumAdjust(check, d);
}

/** True when buf[off, off+len) plus `initial` sums to 0xffff: a valid checksum is included. */
export function checksumValid(buf: Uint8Array, off: number, len: number, initial = 0): boolean {
  return onesSum(buf, off, len, initial) === 0xffff;
}

// CRC32c (Castagnoli, reflected polynomial 0x82f63b78), table built once at load.
const CRC32C_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC32c of buf[off, off+len) as SCTP uses it (init ~0, final complement); unsigned. */
export function crc32c(buf: Uint8Array, off: number, len: number): number {
  let c = -1;
  const end = off + len;
  for (let i = off; i < end; i++) c = CRC32C_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
