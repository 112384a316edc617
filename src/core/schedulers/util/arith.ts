// Exact integer arithmetic the kernel's schedulers rely on: comparisons of 64-bit products
// ((__s64)a * b) and get_random_u32_below's 64-bit product of two u32. Doubles hold
// integers exactly only below 2^53, so the products are compared directly when they are small
// (the usual case) and split into 16-bit halves when they are not.

const TWO_53 = 9007199254740992;
const TWO_16 = 65536;
const TWO_32 = 4294967296;

/**
 * Sign (-1, 0, 1) of a*b - c*d, exact for integers of magnitude below 2^32: the kernel's
 * `(__s64)a * b` comparisons (wlc, sed, nq, lblc, lblcr) with any int or u32 operands.
 */
export function cmpProducts(a: number, b: number, c: number, d: number): number {
  const p = a * b;
  const q = c * d;
  // A double below 2^53 in magnitude is the exact product; above, fall back to the split.
  if (p < TWO_53 && p > -TWO_53 && q < TWO_53 && q > -TWO_53) return p < q ? -1 : p > q ? 1 : 0;
  return cmpProductsSplit(a, b, c, d);
}

/** a*b - c*d = H * 2^16 + L with every partial product below 2^49, hence exact. */
function cmpProductsSplit(a: number, b: number, c: number, d: number): number {
  const bHigh = Math.floor(b / TWO_16);
  const dHigh = Math.floor(d / TWO_16);
  const high = a * bHigh - c * dHigh;
  const low = a * (b - bHigh * TWO_16) - c * (d - dHigh * TWO_16);
  // Normalise so that 0 <= low < 2^16; then the sign is the sign of high, or of low if high is 0.
  const carry = Math.floor(low / TWO_16);
  const h = high + carry;
  if (h !== 0) return h > 0 ? 1 : -1;
  return low - carry * TWO_16 > 0 ? 1 : 0;
}

/** The kernel's int (two's complement 32-bit) view of a number. */
export function toInt32(x: number): number {
  return x | 0;
}

/**
 * get_random_u32_below(ceil) for a non-constant ceil (__get_random_u32_below): the high word of
 * ceil * rand, rejecting the few rand values that would bias the result; ceil 0 returns rand.
 */
export function randomBelow(random32: () => number, ceil: number): number {
  ceil >>>= 0;
  let rand = random32() >>> 0;
  if (ceil === 0) return rand;
  // ceil * rand as 64 bits: high = x * 2^32 + mid, the low word is mid mod 2^32. Written out
  // here rather than through mulLow32/mulHigh32 so no intermediate above 2^31 gets boxed.
  let high = ceil * (rand >>> 16);
  let mid = (high % TWO_16) * TWO_16 + ceil * (rand & 0xffff);
  let low = mid % TWO_32;
  if (low < ceil) {
    const bound = (TWO_32 - ceil) % ceil;
    while (low < bound) {
      rand = random32() >>> 0;
      high = ceil * (rand >>> 16);
      mid = (high % TWO_16) * TWO_16 + ceil * (rand & 0xffff);
      low = mid % TWO_32;
    }
  }
  return Math.floor(high / TWO_16) + Math.floor(mid / TWO_32);
}

/** Greatest common divisor of two positive integers (the kernel's gcd()). */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** fls(): 1-based index of the highest set bit, 0 for 0. */
export function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}
