// Big-endian field access by byte arithmetic. No DataView or view object is made per packet;
// callers check lengths before reading, so these stay branch-free and inline well.

export function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Unsigned 32-bit read (the same numbering as core's IpAddr words). */
export function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Signed 32-bit read: the same bits as rd32 but always a small integer, for arithmetic that
 * only needs the bits (checksum differences) and must not box a double.
 */
export function rd32s(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/**
 * Copies len bytes. The same array as source and destination is a memmove (copyWithin);
 * otherwise a plain loop, so two different views must not overlap. (Checking `.buffer` to
 * tell would cost more than a whole header copy: it is a slow accessor in V8.)
 */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (len <= 0) return;
  if (dst === src) {
    dst.copyWithin(dstOff, srcOff, srcOff + len);
    return;
  }
  for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
}

export function fillBytes(b: Uint8Array, off: number, len: number, value: number): void {
  for (let i = 0; i < len; i++) b[off + i] = value;
}

export function bytesEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}
