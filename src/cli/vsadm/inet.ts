// The C library parsers ipvsadm relies on, with their exact acceptance rules: strtol as
// ipvsadm's string_to_number uses it, atoi, glibc's inet_aton (a.b.c.d, a.b.c, a.b, a; octal and
// hex parts) and inet_pton for both families.

import { IpAddr } from '../../core/addr.js';

const C_SPACE = ' \t\n\v\f\r';
const LONG_MAX = 2n ** 63n - 1n;
const LONG_MIN = -(2n ** 63n);

/**
 * strtol(s, &end, 10) with the whole string consumed: leading blanks and a sign are allowed,
 * nothing may follow the digits. null when that fails or the value overflows a 64-bit long.
 */
export function strtolWhole(s: string): bigint | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(s);
  if (!m) return null;
  let v = BigInt(m[2]!);
  if (m[1] === '-') v = -v;
  if (v > LONG_MAX || v < LONG_MIN) return null;
  return v;
}

/** ipvsadm's string_to_number: the value if it is a whole decimal number in [min, max], else -1. */
export function stringToNumber(s: string, min: number, max: number): number {
  const v = strtolWhole(s);
  if (v === null || v < BigInt(min) || v > BigInt(max)) return -1;
  return Number(v);
}

/** atoi(): leading number of the string, 0 when there is none, wrapped to a C int. */
export function atoi(s: string): number {
  let i = 0;
  while (i < s.length && C_SPACE.includes(s[i]!)) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') neg = s[i++] === '-';
  let j = i;
  while (j < s.length && s[j]! >= '0' && s[j]! <= '9') j++;
  if (j === i) return 0;
  let v = BigInt(s.slice(i, j));
  if (neg) v = -v;
  // strtol saturates, then the long is truncated to int
  if (v > LONG_MAX) v = LONG_MAX;
  if (v < LONG_MIN) v = LONG_MIN;
  return Number(BigInt.asIntN(32, v));
}

/** strtoul(s, &end, 0) on a string that starts with a digit: value and characters used. */
function strtoulBase0(s: string): { value: bigint; used: number } {
  let base = 10;
  let i = 0;
  if (s[0] === '0' && (s[1] === 'x' || s[1] === 'X') && /[0-9a-fA-F]/.test(s[2] ?? '')) {
    base = 16;
    i = 2;
  } else if (s[0] === '0') {
    base = 8;
  }
  const digits = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/;
  let v = 0n;
  const start = i;
  while (i < s.length && digits.test(s[i]!)) {
    v = v * BigInt(base) + BigInt(Number.parseInt(s[i]!, base));
    i++;
  }
  // "0x" without hex digits and a lone "0" both parse the 0 only
  if (i === start) return { value: 0n, used: 1 };
  return { value: v, used: i };
}

/** glibc inet_aton: the IPv4 address as an unsigned number (host order), or null. */
export function inetAton(text: string): number | null {
  const parts: number[] = [];
  let s = text;
  let val: bigint;
  for (;;) {
    if (!/^[0-9]/.test(s)) return null;
    const { value, used } = strtoulBase0(s);
    if (value > 0xffffffffn) return null;
    val = value;
    s = s.slice(used);
    if (s[0] === '.') {
      if (parts.length > 2 || val > 0xffn) return null;
      parts.push(Number(val));
      s = s.slice(1);
    } else {
      break;
    }
  }
  // anything after the number must start with a blank
  if (s.length > 0 && !C_SPACE.includes(s[0]!)) return null;
  const max = [0xffffffffn, 0xffffffn, 0xffffn, 0xffn][parts.length]!;
  if (val > max) return null;
  let n = Number(val);
  for (let k = 0; k < parts.length; k++) n += parts[k]! * 2 ** (24 - 8 * k);
  return n >>> 0;
}

/** glibc inet_pton(AF_INET): exactly four decimal octets, no leading zeros. */
export function inetPton4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

/** glibc inet_pton(AF_INET6). */
export function inetPton6(text: string): IpAddr | null {
  if (!text.includes(':')) return null;
  const a = IpAddr.tryParse(text);
  return a && a.family === 6 ? a : null;
}

/** The C isdigit test over a whole string, as ipvsadm's str_is_digit (true for ""). */
export function allDigits(s: string): boolean {
  return /^\d*$/.test(s);
}
