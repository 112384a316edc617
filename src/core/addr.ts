// IP addresses as the core sees them: an address family and four 32-bit words in network
// order. IPv4 keeps its address in w0 and zeros in w1..w3, so the kernel's addr_fold
// (IPv4: the address; IPv6: xor of the four words) is `w0 ^ w1 ^ w2 ^ w3` for both families.

export type Family = 4 | 6;

export class IpAddr {
  constructor(
    readonly family: Family,
    readonly w0: number,
    readonly w1 = 0,
    readonly w2 = 0,
    readonly w3 = 0,
  ) {}

  /** The kernel's ip_vs_addr_fold, as an unsigned 32-bit number. */
  get fold(): number {
    return (this.w0 ^ this.w1 ^ this.w2 ^ this.w3) >>> 0;
  }

  equals(o: IpAddr): boolean {
    return this.family === o.family && this.w0 === o.w0 && this.w1 === o.w1 && this.w2 === o.w2 && this.w3 === o.w3;
  }

  /** Canonical text: dotted quad, or RFC 5952 IPv6 (as inet_ntop prints it). */
  toString(): string {
    return this.family === 4 ? v4ToString(this.w0) : v6ToString(this.w0, this.w1, this.w2, this.w3);
  }

  /** Address bytes in network order (4 or 16 bytes). */
  toBytes(): Uint8Array {
    const words = this.family === 4 ? [this.w0] : [this.w0, this.w1, this.w2, this.w3];
    const b = new Uint8Array(words.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < words.length; i++) dv.setUint32(i * 4, words[i]! >>> 0);
    return b;
  }

  static v4(n: number): IpAddr {
    return new IpAddr(4, n >>> 0);
  }

  static fromBytes(b: Uint8Array): IpAddr {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.length === 4) return new IpAddr(4, dv.getUint32(0));
    if (b.length === 16) return new IpAddr(6, dv.getUint32(0), dv.getUint32(4), dv.getUint32(8), dv.getUint32(12));
    throw new Error(`an IP address has 4 or 16 bytes, not ${b.length}`);
  }

  /** Strict parse of a numeric address (dotted quad or IPv6 text, optional %zone refused). */
  static parse(text: string): IpAddr {
    const a = IpAddr.tryParse(text);
    if (!a) throw new Error(`invalid IP address: ${JSON.stringify(text)}`);
    return a;
  }

  static tryParse(text: string): IpAddr | null {
    if (text.includes(':')) return parseV6(text);
    const n = parseV4(text);
    return n === null ? null : new IpAddr(4, n);
  }
}

export function v4ToString(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Dotted-quad IPv4 (exactly four decimal parts 0..255); null if not one. */
export function parseV4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

function parseV6(text: string): IpAddr | null {
  if (text.length > 45 || /[^0-9a-fA-F:.]/.test(text)) return null;
  let head: string[] = [];
  let tail: string[] = [];
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    if (text.indexOf('::', dbl + 1) >= 0) return null;
    const a = text.slice(0, dbl);
    const b = text.slice(dbl + 2);
    head = a ? a.split(':') : [];
    tail = b ? b.split(':') : [];
  } else {
    head = text.split(':');
  }
  const groups: number[] = [];
  const pushGroups = (parts: string[], out: number[], allowV4: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4 && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (v4 === null) return false;
        out.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false;
      out.push(Number.parseInt(p, 16));
    }
    return true;
  };
  const h: number[] = [];
  const t: number[] = [];
  if (!pushGroups(head, h, tail.length === 0 && dbl < 0)) return null;
  if (!pushGroups(tail, t, true)) return null;
  if (dbl >= 0) {
    if (h.length + t.length > 7) return null;
    groups.push(...h, ...new Array(8 - h.length - t.length).fill(0), ...t);
  } else {
    if (h.length !== 8) return null;
    groups.push(...h);
  }
  const w = (i: number) => ((groups[i * 2]! << 16) | groups[i * 2 + 1]!) >>> 0;
  return new IpAddr(6, w(0), w(1), w(2), w(3));
}

function v6ToString(w0: number, w1: number, w2: number, w3: number): string {
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // IPv4-mapped and IPv4-compatible forms as glibc's inet_ntop prints them.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && (g[5] === 0xffff || (g[5] === 0 && g[6] !== 0))) {
    return (g[5] === 0xffff ? '::ffff:' : '::') + v4ToString(w3);
  }
  return compressV6Groups(g);
}

/** Eight 16-bit groups as RFC 5952 text: the longest run (≥ 2, first wins) of zeros is '::'. */
export function compressV6Groups(g: readonly number[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: readonly number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** IPv4 netmask applied to an address (kernel: plain AND, any 32-bit mask). */
export function maskV4(addr: number, mask: number): number {
  return (addr & mask) >>> 0;
}

/** The first `prefix` bits of an IPv6 address (ipv6_addr_prefix). */
export function maskV6(a: IpAddr, prefix: number): IpAddr {
  const m = (bits: number) => (bits >= 32 ? 0xffffffff : bits <= 0 ? 0 : (~0 << (32 - bits)) >>> 0);
  return new IpAddr(6, (a.w0 & m(prefix)) >>> 0, (a.w1 & m(prefix - 32)) >>> 0, (a.w2 & m(prefix - 64)) >>> 0, (a.w3 & m(prefix - 96)) >>> 0);
}
