// Health checks that travel the clients' way through the packet plane (`via: virtual`, see
// src/health/via-virtual.ts and docs/health.md): the plane's VirtualPathProvider.
//
// The plane owns a veth pair in the director's namespace (never the machine's interfaces):
//
//   tsvsvp0  kernel side: the probe sources, one address per (service, real server), /32 and
//            /128 from packet.virtualPaths.v4 / v6 (198.18.255.0/24, 2001:2:0:ffff::/64)
//   tsvsvp1  plane side: attached as one more port of the plane (its rings, its engine)
//
// Policy routing sends what the director itself sends from a probe source into the pair:
//
//   ip rule add from 198.18.255.0/24 iif lo lookup 7470 pref 7470
//   ip route add default dev tsvsvp0 table 7470           (the same for IPv6)
//
// Both ends are NOARP and carry the same MAC, so the kernel's frames reach the plane addressed
// to the port's own MAC, and the plane's reach the kernel addressed to its own, without any
// neighbour resolution. A probe bound to its source and connecting to VIP:port thus enters the
// plane on tsvsvp1 as a client's packet enters it on eth0; the core has the source pinned to
// the real server (Director.pinSource), so the packet is forwarded to exactly that one by the
// service's method (DR: its MAC; TUN: encapsulated to it). The real server's reply goes straight
// to the source (the real servers route the probe ranges via the director); it arrives on an
// attached interface and the plane hands it to tsvsvp1, so the kernel receives it on tsvsvp0,
// where the reverse route of the source points: strict rp_filter holds.
//
// nftables table `inet tsvs_vpath` (comment "tsvs packet plane pid=N") keeps the kernel away
// from the plane's end of the pair and from the replies the plane carries. The pair, the rules
// and the table are removed at stop, and when a process that died left them, at the next start.
//
// When the health manager takes a real server out of the table, its probes must still reach it
// (or it could never come back): the core then answers VERDICT_UNREACH for the pinned source,
// and the plane carries the probe itself, without a connection entry, to the server by its
// method (pinnedTarget below).

import { existsSync } from 'node:fs';
import { IpAddr } from '../../core/addr.js';
import { FWD_DROUTE, FWD_MASK, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP, TUN_F_NOCSUM, TUN_TYPE_IPIP } from '../../core/constants.js';
import type { Director } from '../../core/director.js';
import type { Flow } from '../../core/flow.js';
import type { ServiceKeySpec } from '../../core/model.js';
import { serviceKey } from '../../core/service.js';
import type { VirtualPath, VirtualPathProvider, VirtualPathRequest } from '../../health/via-virtual.js';
import type { HostTools } from './host-tools.js';
import { alive, PLANE_MARKER, tableOwner } from './nft-guard.js';
import { type ProbeNet, type ProbeServed, wordMask } from './served.js';

export interface VirtualPathsConfig {
  /** Probe sources for IPv4 services (CIDR); '' for none. */
  v4: string;
  /** Probe sources for IPv6 services (CIDR); '' for none. */
  v6: string;
  /** Routing table the rule points at (its only route: default dev <device>0). */
  table: number;
  /** Priority of the `ip rule` (below main's 32766). */
  priority: number;
  /** The veth pair: <device>0 (kernel side), <device>1 (the plane's port). */
  device: string;
}

export const VIRTUAL_PATHS_DEFAULTS: VirtualPathsConfig = { v4: '198.18.255.0/24', v6: '2001:2:0:ffff::/64', table: 7470, priority: 7470, device: 'tsvsvp' };

export const VPATH_TABLE = 'tsvs_vpath';
/** Both ends of the pair: locally administered, the same on both (see above). */
const PAIR_MAC = '02:74:73:76:70:01';
const MAX_V6_SOURCES = 65534;

/** A real server out of the table that a probe must still reach (the plane carries it without a connection). */
export interface PinnedTarget {
  af: 4 | 6;
  addr: IpAddr;
  port: number;
  method: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

interface Path extends PinnedTarget {
  key: string;
  svcKey: string;
  service: ServiceKeySpec;
  src: IpAddr;
  slot: number;
  refs: number;
  unpins: Map<number, () => void>;
}

/** "198.18.255.0/24" → network and length; throws with a readable message. */
export function parseCidr(text: string, family: 4 | 6): ProbeNet {
  const [a, l] = text.split('/');
  const addr = IpAddr.tryParse(a ?? '');
  const len = Number(l);
  if (!addr || addr.family !== family || l === undefined || !Number.isInteger(len)) throw new Error(`${text}: expected an IPv${family} network (address/length)`);
  const max = family === 4 ? 30 : 120;
  const min = family === 4 ? 16 : 64;
  if (len < min || len > max) throw new Error(`${text}: the prefix length must be ${min}..${max}`);
  const w = [addr.w0, addr.w1, addr.w2, addr.w3].map((x, i) => (family === 4 && i > 0 ? 0 : (x & wordMask(len, i)) >>> 0)) as ProbeNet['words'];
  return { family, words: w, len };
}

export function netText(n: ProbeNet): string {
  return `${new IpAddr(n.family, ...n.words).toString()}/${n.len}`;
}

/** The n-th source of a network (n ≥ 1: the network address itself is never handed out). */
function nthAddress(n: ProbeNet, k: number): IpAddr {
  if (n.family === 4) return new IpAddr(4, (n.words[0] + k) >>> 0);
  const w3 = (n.words[3] + k) >>> 0;
  return new IpAddr(6, n.words[0], n.words[1], n.words[2], w3);
}

function capacity(n: ProbeNet): number {
  return n.family === 4 ? 2 ** (32 - n.len) - 2 : Math.min(MAX_V6_SOURCES, 2 ** Math.min(32, 128 - n.len) - 1);
}

export interface VirtualPathsOptions {
  director: Director;
  config: VirtualPathsConfig;
  /** The host's tools (null: no host side, e.g. memory ports in tests). */
  tools: HostTools | null;
  /** Whether an address is the host's own (a VIP the host configured cannot be probed this way). */
  isLocal: (a: IpAddr) => boolean;
}

export class VirtualPaths implements VirtualPathProvider {
  readonly name = 'packet plane';
  readonly kernelDev: string;
  readonly planeDev: string;
  nets: ProbeNet[] = [];
  /** Index of the plane's port on the pair (set by the plane once its ports are open). */
  port = -1;
  private readonly cfg: VirtualPathsConfig;
  private readonly paths = new Map<string, Path>();
  private readonly bySource = new Map<string, Path>();
  /** Per family: the next never-used slot (source n of the network), and the released ones, oldest first. */
  private readonly next = { 4: 1, 6: 1 };
  private readonly free: { 4: number[]; 6: number[] } = { 4: [], 6: [] };
  /** Sources with their address on the kernel's end of the pair. */
  private readonly assigned = new Set<string>();
  private hostUp = false;
  private closed = false;
  private readonly marker = `${PLANE_MARKER} pid=${process.pid}`;

  constructor(private readonly o: VirtualPathsOptions) {
    this.cfg = o.config;
    this.kernelDev = `${o.config.device}0`;
    this.planeDev = `${o.config.device}1`;
    if (o.config.v4) this.nets.push(parseCidr(o.config.v4, 4));
    if (o.config.v6) this.nets.push(parseCidr(o.config.v6, 6));
  }

  /** The engines' part (ServedData.probe); null until the port is known. */
  served(): ProbeServed | null {
    return this.port < 0 ? null : { port: this.port, nets: this.nets };
  }

  get count(): number {
    return this.paths.size;
  }

  status(): Record<string, unknown> {
    return {
      device: `${this.kernelDev}/${this.planeDev}`,
      sources: this.nets.map(netText),
      table: this.cfg.table,
      priority: this.cfg.priority,
      paths: [...this.paths.values()].map((p) => ({ service: p.svcKey, realServer: p.af === 6 ? `[${p.addr}]:${p.port}` : `${p.addr}:${p.port}`, source: p.src.toString(), checkers: p.refs })),
    };
  }

  // ---- VirtualPathProvider ------------------------------------------------------------------

  open(req: VirtualPathRequest): VirtualPath | null {
    if (this.closed) return null;
    if (req.method !== FWD_DROUTE && req.method !== FWD_TUNNEL) return null;
    const fam = req.service.af;
    const net = this.nets.find((n) => n.family === fam);
    if (!net) throw new Error(`no probe sources for IPv${fam} (packet.virtualPaths.v${fam})`);
    if (!req.service.fwmark) {
      const vip = IpAddr.tryParse(req.service.addr);
      if (vip && this.o.isLocal(vip)) throw new Error(`the virtual address ${req.service.addr} is configured on this host: the kernel delivers probes to it locally`);
    }
    const svcKey = serviceKey(fam, req.service.protocol, IpAddr.parse(req.service.addr), req.service.port, req.service.fwmark);
    const destAddr = IpAddr.parse(req.dest.addr);
    const key = `${svcKey}|${destAddr.toString()}|${req.dest.port}`;
    let path = this.paths.get(key);
    if (!path) {
      const slot = this.allocate(fam, net);
      const src = nthAddress(net, slot);
      try {
        this.assign(src);
      } catch (e) {
        this.free[fam].push(slot);
        throw e;
      }
      path = {
        key,
        svcKey,
        service: req.service,
        src,
        slot,
        refs: 0,
        unpins: new Map(),
        af: req.dest.af,
        addr: destAddr,
        port: req.dest.port,
        method: req.method,
        tunType: req.tunnel?.type ?? TUN_TYPE_IPIP,
        tunPort: req.tunnel?.port ?? 0,
        tunFlags: req.tunnel?.flags ?? TUN_F_NOCSUM,
      };
      this.paths.set(key, path);
      this.bySource.set(sourceKey(fam, src.w0, src.w1, src.w2, src.w3), path);
      this.snapshot(path);
    }
    const proto = req.protocol === 'udp' ? IPPROTO_UDP : IPPROTO_TCP;
    if (!path.unpins.has(proto)) path.unpins.set(proto, this.o.director.pinSource(fam, proto, path.src, { addr: destAddr, port: req.dest.port }));
    path.refs++;
    const p = path;
    let released = false;
    return {
      bind: { address: p.src.toString() },
      release: () => {
        if (released) return;
        released = true;
        this.release(p);
      },
    };
  }

  private release(p: Path): void {
    if (--p.refs > 0 || this.paths.get(p.key) !== p) return;
    for (const u of p.unpins.values()) u();
    p.unpins.clear();
    this.paths.delete(p.key);
    this.bySource.delete(sourceKey(p.src.family, p.src.w0, p.src.w1, p.src.w2, p.src.w3));
    // The address stays on the device (the next path reuses it): no command on the way out.
    this.free[p.src.family].push(p.slot);
  }

  private allocate(fam: 4 | 6, net: ProbeNet): number {
    // Never-used sources first, then the one released longest ago: a source's old connections
    // (FIN_WAIT, TIME_WAIT in the table) have time to go before it serves another real server.
    const f = this.free[fam];
    if (f.length > 0 && this.next[fam] > capacity(net)) return f.shift()!;
    if (this.next[fam] <= capacity(net)) return this.next[fam]++;
    throw new Error(`no probe source left in ${netText(net)} (${capacity(net)} in use): widen packet.virtualPaths.v${fam}`);
  }

  /** Puts a source on the kernel's end of the pair (once; it stays until the pair goes). */
  private assign(src: IpAddr): void {
    const t = this.o.tools;
    const text = src.toString();
    if (!t || !this.hostUp || this.assigned.has(text)) return;
    const args = src.family === 4 ? ['addr', 'add', `${text}/32`, 'dev', this.kernelDev, 'noprefixroute'] : ['-6', 'addr', 'add', `${text}/128`, 'dev', this.kernelDev, 'nodad', 'noprefixroute'];
    const r = t.runSync('ip', args);
    if (r.status !== 0 && !/File exists/.test(r.stderr)) throw new Error(`cannot add probe source ${text} to ${this.kernelDev}: ${r.stderr.trim()}`);
    this.assigned.add(text);
  }

  // ---- The core's side ------------------------------------------------------------------------

  /** Follows the table: a path keeps its real server's method and tunnel while it is there. */
  refresh(): void {
    for (const p of this.paths.values()) this.snapshot(p);
  }

  private snapshot(p: Path): void {
    const dest = this.o.director.table.find(p.service)?.findDest(p.addr, p.port);
    if (!dest) return;
    const m = dest.connFlags & FWD_MASK;
    if (m === FWD_DROUTE || m === FWD_TUNNEL) p.method = m;
    p.tunType = dest.tunType;
    p.tunPort = dest.tunPort;
    p.tunFlags = dest.tunFlags;
  }

  /**
   * A probe the core did not carry (no connection: VERDICT_UNREACH or _ACCEPT) that the plane
   * must carry itself: from a probe source, to its path's service, whose real server is out of
   * the table. Null otherwise (the core's verdict stands).
   */
  pinnedTarget(f: Flow): PinnedTarget | null {
    if (this.bySource.size === 0) return null;
    const p = this.bySource.get(sourceKey(f.family, f.s0, f.s1, f.s2, f.s3));
    if (!p) return null;
    const svc = this.o.director.table.lookup(f.family, f.protocol, f.d0, f.d1, f.d2, f.d3, f.dport, f.mark);
    if (!svc || svc.key !== p.svcKey) return null;
    if (svc.findDest(p.addr, p.port)?.available) return null;
    return p;
  }

  // ---- The host's side --------------------------------------------------------------------

  /**
   * Removes what a process that died left (pair, rules, table), refuses when a live one owns
   * them, then creates the pair, the rules and the table. Throws with a readable message (and
   * leaves nothing behind).
   */
  setupHost(mtu: number): { stalePid?: number } {
    const t = this.o.tools;
    if (!t) return {};
    // A kernel without IPv6 (ipv6.disable=1): IPv4 probes only.
    if (!existsSync('/proc/sys/net/ipv6')) this.nets = this.nets.filter((n) => n.family === 4);
    const stalePid = this.removeStale(t);
    try {
      this.hostUp = true;
      const ip = (...args: string[]) => {
        const r = t.runSync('ip', args);
        if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
      };
      const k = this.kernelDev;
      const pl = this.planeDev;
      ip('link', 'add', k, 'address', PAIR_MAC, 'mtu', String(mtu), 'gso_max_segs', '1', 'type', 'veth', 'peer', 'name', pl, 'address', PAIR_MAC, 'mtu', String(mtu), 'gso_max_segs', '1');
      ip('link', 'set', 'dev', k, 'alias', this.marker);
      for (const d of [k, pl]) ip('link', 'set', 'dev', d, 'arp', 'off', 'addrgenmode', 'none');
      for (const d of [k, pl]) ip('link', 'set', 'dev', d, 'up');
      const nft = t.runSync('nft', ['-f', '-'], this.ruleset());
      if (nft.status !== 0) throw new Error(`nft could not install table inet ${VPATH_TABLE}: ${nft.stderr.trim()}`);
      for (const n of this.nets) {
        const f = n.family === 4 ? '-4' : '-6';
        ip(f, 'rule', 'add', 'from', netText(n), 'iif', 'lo', 'lookup', String(this.cfg.table), 'pref', String(this.cfg.priority));
        const r = t.runSync('ip', [f, 'route', 'add', 'default', 'dev', k, 'table', String(this.cfg.table)]);
        if (r.status !== 0) throw new Error(`routing table ${this.cfg.table} is in use (${r.stderr.trim()}): choose another packet.virtualPaths.table`);
      }
    } catch (e) {
      this.teardownHost();
      throw e;
    }
    return stalePid !== undefined ? { stalePid } : {};
  }

  /** The nftables table (exported for tests through the plane's status). */
  ruleset(pid = process.pid): string {
    let t = `table inet ${VPATH_TABLE} {\n  comment "${PLANE_MARKER} pid=${pid}"\n`;
    t += '  chain pre {\n    type filter hook prerouting priority raw - 10; policy accept;\n';
    t += `    iifname "${this.planeDev}" drop\n`;
    for (const n of this.nets) t += `    ${n.family === 4 ? 'ip' : 'ip6'} daddr ${netText(n)} iifname != "${this.kernelDev}" drop\n`;
    t += '  }\n}\n';
    return t;
  }

  /** Removes the pair (its addresses and routes go with it), the rules and the table. */
  teardownHost(): void {
    const t = this.o.tools;
    if (!t || !this.hostUp) return;
    this.hostUp = false;
    this.assigned.clear();
    t.runSync('ip', ['link', 'del', 'dev', this.kernelDev]);
    this.deleteRules(t);
    if (tableOwner(t, VPATH_TABLE)) t.runSync('nft', ['delete', 'table', 'inet', VPATH_TABLE]);
  }

  /** Our rules: this priority, from a probe network, iif lo, to this table (never anyone else's). */
  private deleteRules(t: HostTools): void {
    for (const n of this.nets) {
      for (let i = 0; i < 16; i++) {
        const r = t.runSync('ip', [n.family === 4 ? '-4' : '-6', 'rule', 'del', 'pref', String(this.cfg.priority), 'from', netText(n), 'iif', 'lo', 'lookup', String(this.cfg.table)]);
        if (r.status !== 0) break;
      }
    }
  }

  private removeStale(t: HostTools): number | undefined {
    let stalePid: number | undefined;
    const check = (pid: number | null, what: string, foreign: string) => {
      if (pid === null) throw new Error(`${what} exists and is not tsvs's (${foreign}): remove it, or choose another in packet.virtualPaths`);
      if (pid !== process.pid && alive(pid)) throw new Error(`another tsvs packet plane (pid ${pid}) owns ${what}`);
      stalePid = pid;
    };
    const owner = tableOwner(t, VPATH_TABLE);
    if (owner) check(owner.pid, `nftables table inet ${VPATH_TABLE}`, `comment "${owner.pid === null ? owner.comment : ''}"`);
    const link = t.runSync('ip', ['-j', 'link', 'show', 'dev', this.kernelDev]);
    let linkPid: number | undefined;
    if (link.status === 0) {
      const alias = ((JSON.parse(link.stdout || '[]') as Array<{ ifalias?: string }>)[0]?.ifalias ?? '').trim();
      const m = new RegExp(`^${PLANE_MARKER} pid=(\\d+)$`).exec(alias);
      check(m ? Number(m[1]) : null, `interface ${this.kernelDev}`, alias ? `alias "${alias}"` : 'no alias');
      linkPid = stalePid;
    }
    const other = t.runSync('ip', ['link', 'show', 'dev', this.planeDev]);
    if (other.status === 0 && linkPid === undefined) throw new Error(`interface ${this.planeDev} exists and is not tsvs's: remove it, or choose another packet.virtualPaths.device`);
    if (stalePid === undefined) {
      // Rules alone (a crash between the steps): ours by priority and table.
      this.deleteRules(t);
      return undefined;
    }
    if (link.status === 0) t.runSync('ip', ['link', 'del', 'dev', this.kernelDev]);
    this.deleteRules(t);
    if (owner) t.runSync('nft', ['delete', 'table', 'inet', VPATH_TABLE]);
    return stalePid;
  }

  /** Stop: every pin released, the host's side removed. */
  close(): void {
    this.closed = true;
    for (const p of this.paths.values()) for (const u of p.unpins.values()) u();
    this.paths.clear();
    this.bySource.clear();
    this.teardownHost();
  }
}

function sourceKey(fam: number, w0: number, w1: number, w2: number, w3: number): string {
  return fam === 4 ? `4:${w0 >>> 0}` : `6:${w0 >>> 0}:${w1 >>> 0}:${w2 >>> 0}:${w3 >>> 0}`;
}
