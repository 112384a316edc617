// The host's routes and addresses, as the packet plane needs them: for a destination, the
// interface to leave by, the next hop (a gateway, or the destination itself on a connected
// network), the source address and the MTU; and which addresses are the host's own. Read with
// `ip -j` (main table, both families) and refreshed by the plane on a timer, so the plane
// follows the host's routing as the kernel's IPVS does (policy routing beyond the main table
// is not followed).

import { IpAddr } from '../../core/addr.js';
import type { HostTools } from './host-tools.js';

export interface InterfaceFacts {
  name: string;
  ifindex: number;
  mtu: number;
  mac: string;
  up: boolean;
  /** Addresses with their prefix length, in `ip addr` order (primary first). */
  addrs: { addr: IpAddr; prefixLen: number; scope: string }[];
}

export interface Route {
  family: 4 | 6;
  /** Prefix words (masked) and length. */
  p0: number;
  p1: number;
  p2: number;
  p3: number;
  len: number;
  /** Gateway, or null when the destination is on the link. */
  gateway: IpAddr | null;
  dev: string;
  prefsrc: IpAddr | null;
  /** Route MTU (metrics mtu), 0 when the interface's applies. */
  mtu: number;
  /** unicast, or what `ip` says: unreachable, blackhole, prohibit, throw, local... */
  type: string;
  metric: number;
}

interface IpRouteJson {
  type?: string;
  dst: string;
  gateway?: string;
  via?: { family?: string; host?: string };
  dev?: string;
  prefsrc?: string;
  metric?: number;
  metrics?: Array<{ mtu?: number }>;
  nexthops?: Array<{ gateway?: string; dev?: string }>;
}

interface IpAddrJson {
  ifindex: number;
  ifname: string;
  mtu: number;
  address?: string;
  flags?: string[];
  operstate?: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number; scope?: string; tentative?: boolean }>;
}

/** Mask of the first `len` bits of word `i` (0..3) of a 128-bit prefix. */
function wordMask(len: number, i: number): number {
  const bits = len - i * 32;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

export function parseRoute(j: IpRouteJson, family: 4 | 6): Route | null {
  let prefix: IpAddr;
  let len: number;
  if (j.dst === 'default') {
    prefix = family === 4 ? new IpAddr(4, 0) : new IpAddr(6, 0, 0, 0, 0);
    len = 0;
  } else {
    const [a, l] = j.dst.split('/');
    const p = IpAddr.tryParse(a ?? '');
    if (!p || p.family !== family) return null;
    prefix = p;
    len = l === undefined ? (family === 4 ? 32 : 128) : Number(l);
    if (!Number.isInteger(len) || len < 0 || len > (family === 4 ? 32 : 128)) return null;
  }
  const first = j.nexthops?.[0];
  const gwText = j.gateway ?? j.via?.host ?? first?.gateway;
  const gw = gwText ? IpAddr.tryParse(gwText) : null;
  const dev = j.dev ?? first?.dev ?? '';
  const w = family === 4 ? [prefix.w0, 0, 0, 0] : [prefix.w0, prefix.w1, prefix.w2, prefix.w3];
  const m = (i: number) => (family === 4 ? (i === 0 ? wordMask(len, 0) : 0) : wordMask(len, i));
  return {
    family,
    p0: (w[0]! & m(0)) >>> 0,
    p1: (w[1]! & m(1)) >>> 0,
    p2: (w[2]! & m(2)) >>> 0,
    p3: (w[3]! & m(3)) >>> 0,
    len,
    gateway: gw && gw.family === family ? gw : null,
    dev,
    prefsrc: j.prefsrc ? IpAddr.tryParse(j.prefsrc) : null,
    mtu: j.metrics?.find((x) => typeof x.mtu === 'number')?.mtu ?? 0,
    type: j.type ?? 'unicast',
    metric: j.metric ?? 0,
  };
}

function routeMatches(r: Route, family: number, w0: number, w1: number, w2: number, w3: number): boolean {
  if (r.family !== family) return false;
  if (family === 4) return ((w0 & wordMask(r.len, 0)) >>> 0) === r.p0;
  return (
    ((w0 & wordMask(r.len, 0)) >>> 0) === r.p0 &&
    ((w1 & wordMask(r.len, 1)) >>> 0) === r.p1 &&
    ((w2 & wordMask(r.len, 2)) >>> 0) === r.p2 &&
    ((w3 & wordMask(r.len, 3)) >>> 0) === r.p3
  );
}

export class HostRoutes {
  /** Bumped on every refresh that changed something (caches keyed on it start over). */
  generation = 0;
  readonly interfaces = new Map<string, InterfaceFacts>();
  private routes4: Route[] = [];
  private routes6: Route[] = [];
  private local4 = new Set<number>();
  private local6 = new Set<string>();
  private lastText = '';
  private readonly cache4 = new Map<number, Route | null>();

  constructor(private readonly tools: HostTools) {}

  /** Reads addresses and routes again; returns whether anything changed. */
  async refresh(): Promise<boolean> {
    const [addrs, r4, r6] = await Promise.all([
      this.tools.ipJson<IpAddrJson>(['addr', 'show']),
      this.tools.ipJson<IpRouteJson>(['-4', 'route', 'show', 'table', 'main']),
      this.tools.ipJson<IpRouteJson>(['-6', 'route', 'show', 'table', 'main']),
    ]);
    return this.load(addrs, r4, r6);
  }

  refreshSync(): boolean {
    return this.load(
      this.tools.ipJsonSync<IpAddrJson>(['addr', 'show']),
      this.tools.ipJsonSync<IpRouteJson>(['-4', 'route', 'show', 'table', 'main']),
      this.tools.ipJsonSync<IpRouteJson>(['-6', 'route', 'show', 'table', 'main']),
    );
  }

  /** Replaces the tables from `ip -j addr` and `ip -j route` output (exported for tests). */
  load(addrs: IpAddrJson[], r4: IpRouteJson[], r6: IpRouteJson[]): boolean {
    const text = JSON.stringify([addrs.map((a) => [a.ifname, a.ifindex, a.mtu, a.address, a.flags, a.addr_info]), r4, r6]);
    if (text === this.lastText) return false;
    this.lastText = text;
    this.interfaces.clear();
    this.local4.clear();
    this.local6.clear();
    for (const a of addrs) {
      const facts: InterfaceFacts = {
        name: a.ifname,
        ifindex: a.ifindex,
        mtu: a.mtu,
        mac: a.address ?? '',
        up: (a.flags ?? []).includes('UP'),
        addrs: [],
      };
      for (const ai of a.addr_info ?? []) {
        const addr = IpAddr.tryParse(ai.local);
        if (!addr) continue;
        facts.addrs.push({ addr, prefixLen: ai.prefixlen, scope: ai.scope ?? 'global' });
        if (addr.family === 4) this.local4.add(addr.w0 >>> 0);
        else this.local6.add(addr.toString());
      }
      this.interfaces.set(a.ifname, facts);
    }
    const order = (x: Route, y: Route) => y.len - x.len || x.metric - y.metric;
    this.routes4 = r4.map((j) => parseRoute(j, 4)).filter((r): r is Route => r !== null).sort(order);
    this.routes6 = r6.map((j) => parseRoute(j, 6)).filter((r): r is Route => r !== null).sort(order);
    this.cache4.clear();
    this.generation++;
    return true;
  }

  /** Longest-prefix match in the main table (null: no route). */
  lookup(family: number, w0: number, w1 = 0, w2 = 0, w3 = 0): Route | null {
    if (family === 4) {
      const key = w0 >>> 0;
      const hit = this.cache4.get(key);
      if (hit !== undefined) return hit;
      let found: Route | null = null;
      for (const r of this.routes4) {
        if (routeMatches(r, 4, key, 0, 0, 0)) {
          found = r;
          break;
        }
      }
      if (this.cache4.size > 65536) this.cache4.clear();
      this.cache4.set(key, found);
      return found;
    }
    for (const r of this.routes6) if (routeMatches(r, 6, w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0)) return r;
    return null;
  }

  isLocal(family: number, w0: number, w1 = 0, w2 = 0, w3 = 0): boolean {
    if (family === 4) return this.local4.has(w0 >>> 0);
    return this.local6.has(new IpAddr(6, w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0).toString());
  }

  isLocalAddr(a: IpAddr): boolean {
    return a.family === 4 ? this.local4.has(a.w0 >>> 0) : this.local6.has(a.toString());
  }

  /** The host's addresses (both families), for the served index. */
  localAddresses(): IpAddr[] {
    const out: IpAddr[] = [];
    for (const f of this.interfaces.values()) for (const a of f.addrs) out.push(a.addr);
    return out;
  }

  /**
   * The source address for packets the host sends on `dev` toward `dst`: the route's prefsrc,
   * else the first address of that family on the interface (global before link-local for
   * IPv6; link-local when dst is link-local).
   */
  sourceFor(family: 4 | 6, dev: string, route: Route | null, dst?: IpAddr): IpAddr | null {
    if (route?.prefsrc && route.prefsrc.family === family) return route.prefsrc;
    const f = this.interfaces.get(dev);
    if (!f) return null;
    const fam = f.addrs.filter((a) => a.addr.family === family);
    if (family === 6) {
      const linkLocalDst = dst !== undefined && dst.w0 >>> 22 === 0x3fa; // fe80::/10
      const pick = fam.find((a) => (a.scope === 'link') === linkLocalDst) ?? fam[0];
      return pick?.addr ?? null;
    }
    return fam[0]?.addr ?? null;
  }

  /** Whether `a` is on a network connected to `dev` (DR real servers must be). */
  onLink(dev: string, a: IpAddr): boolean {
    const r = this.lookup(a.family, a.w0, a.w1, a.w2, a.w3);
    return r !== null && r.dev === dev && r.gateway === null && r.type === 'unicast';
  }
}
