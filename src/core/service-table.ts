// The virtual service table: services by address or firewall mark, their real servers, and
// every rule the kernel applies when they change (ip_vs_ctl.c, spec ipvs-kernel.md §3.1, §3.2,
// §3.5, §11.2). A rejected change throws IpvsError and leaves the table exactly as it was.

import { IpAddr } from './addr.js';
import {
  CONN_F_DEST_MASK,
  CONN_F_INACTIVE,
  CONN_F_NOOUTPUT,
  DEST_F_AVAILABLE,
  DEST_F_OVERLOAD,
  FWD_BYPASS,
  FWD_MASK,
  FWD_MASQ,
  FWD_PROXY,
  FWD_TUNNEL,
  INT_MAX,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_HASHED,
  TUN_TYPE_GRE,
  TUN_TYPE_GUE,
  TUN_TYPE_IPIP,
  UINT_MAX,
} from './constants.js';
import { fail } from './errors.js';
import type { DestSpec, ServiceKeySpec, ServiceSpec } from './model.js';
import { findScheduler, type SchedulerContext, type SchedulerInstance } from './schedulers/scheduler.js';
import { Dest, Service, serviceKey } from './service.js';

/** Persistence engines the table accepts by name (the kernel ships "sip"). */
const KNOWN_PES = new Set(['sip']);

/** How long an unreferenced dest stays in the trash before it is freed (IP_VS_DEST_TRASH_PERIOD). */
export const DEST_TRASH_PERIOD_MS = 120_000;

export interface ServiceTableHooks {
  /** A dest left its service (deleted, or its service was): connections may need flushing. */
  destUnlinked(dest: Dest): void;
}

export class ServiceTable {
  private readonly byKey = new Map<string, Service>();
  /** Address services by (addr fold, port) for the per-packet lookup. */
  private readonly byAddr = new Map<number, Service[]>();
  /** Number of TCP services on port 21 (the FTP lookup rule) and of port-0 services. */
  private ftpServices = 0;
  private nullServices = 0;
  /** Every live dest (in a service or in a trash), indexed by Dest.id. */
  readonly destById: (Dest | undefined)[] = [];
  private readonly freeDestIds: number[] = [];
  /**
   * Dests deleted (or whose service was deleted) while connections still refer to them. Global,
   * as in the kernel: a service deleted and added again revives its old dests and counters.
   */
  readonly trash: Dest[] = [];
  /** Kernel's ip_unprivileged_port_start (FTP data lookup rule). */
  unprivilegedPortStart = 1024;
  /** Tells whether an address is local to the director (dest address checks). */
  isLocalAddress: (a: IpAddr) => boolean = () => false;
  /** Sync daemons running: mixed-family dests are then refused. */
  syncRunning = false;

  constructor(
    private readonly schedCtx: SchedulerContext,
    private readonly hooks: ServiceTableHooks,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  services(): IterableIterator<Service> {
    return this.byKey.values();
  }

  // ---- lookup ---------------------------------------------------------------------------

  private static addrKey(fold: number, port: number): number {
    return fold * 65536 + port;
  }

  private findAddr(af: number, protocol: number, a0: number, a1: number, a2: number, a3: number, port: number): Service | null {
    const list = this.byAddr.get(ServiceTable.addrKey((a0 ^ a1 ^ a2 ^ a3) >>> 0, port));
    if (!list) return null;
    for (const s of list) {
      const a = s.addr;
      if (s.port === port && s.protocol === protocol && s.af === af && a.w0 === a0 && a.w1 === a1 && a.w2 === a2 && a.w3 === a3) return s;
    }
    return null;
  }

  private findFwmark(af: number, mark: number): Service | null {
    return this.byKey.get(`fwm${af}:${mark >>> 0}`) ?? null;
  }

  /** Per-packet service lookup, in the kernel's order (ip_vs_service_find, §3.1). */
  lookup(af: number, protocol: number, a0: number, a1: number, a2: number, a3: number, port: number, mark: number): Service | null {
    if (mark !== 0) {
      const s = this.findFwmark(af, mark);
      if (s) return s;
    }
    let s = this.findAddr(af, protocol, a0, a1, a2, a3, port);
    if (s) return s;
    if (this.ftpServices > 0 && protocol === IPPROTO_TCP && (port === 20 || port >= this.unprivilegedPortStart)) {
      s = this.findAddr(af, protocol, a0, a1, a2, a3, 21);
      if (s) return s;
    }
    if (this.nullServices > 0) s = this.findAddr(af, protocol, a0, a1, a2, a3, 0);
    return s;
  }

  /** Find by the management key; null if absent. */
  find(k: ServiceKeySpec): Service | null {
    const { af, addr, fwmark } = checkKey(k);
    return this.byKey.get(serviceKey(af, k.protocol, addr, k.port, fwmark)) ?? null;
  }

  /** Find or fail with ESRCH, as every operation on a missing service does. */
  get(k: ServiceKeySpec): Service {
    const s = this.find(k);
    if (!s) fail('ESRCH', 'No such service');
    return s;
  }

  // ---- services -------------------------------------------------------------------------

  addService(spec: ServiceSpec): Service {
    const { af, addr, fwmark } = checkKey(spec);
    const key = serviceKey(af, spec.protocol, addr, spec.port, fwmark);
    if (this.byKey.has(key)) fail('EEXIST', 'Service already exists');
    checkServiceParams(spec);
    const svc = new Service(af, fwmark ? IPPROTO_TCP : spec.protocol, fwmark ? new IpAddr(af, 0) : addr, fwmark ? 0 : spec.port, fwmark);
    svc.flags = (spec.flags | SVC_F_HASHED) >>> 0;
    svc.timeout = spec.timeout >>> 0;
    svc.netmask = spec.netmask >>> 0;
    svc.peName = spec.peName ?? '';
    svc.proxyProtocol = spec.proxyProtocol ?? 0;
    svc.schedName = spec.schedName;
    svc.sched = this.bindScheduler(svc, spec.schedName);
    this.byKey.set(key, svc);
    if (!fwmark) {
      const ak = ServiceTable.addrKey(addr.fold, svc.port);
      const list = this.byAddr.get(ak);
      if (list) list.push(svc);
      else this.byAddr.set(ak, [svc]);
      if (svc.port === 21 && svc.protocol === IPPROTO_TCP) this.ftpServices++;
      if (svc.port === 0) this.nullServices++;
    }
    return svc;
  }

  /** Edit: every parameter is replaced; the key cannot change. Validated before any change. */
  editService(spec: ServiceSpec): Service {
    const svc = this.get(spec);
    checkServiceParams(spec);
    let sched = svc.sched;
    if (spec.schedName !== svc.schedName) {
      // The kernel unbinds the old scheduler first and keeps none if the new one fails; tsvs
      // builds the new one first so that a rejected edit leaves the service untouched.
      sched = this.bindScheduler(svc, spec.schedName);
      svc.sched?.done();
    }
    svc.flags = (spec.flags | SVC_F_HASHED) >>> 0;
    svc.timeout = spec.timeout >>> 0;
    svc.netmask = spec.netmask >>> 0;
    svc.peName = spec.peName ?? '';
    if (spec.proxyProtocol !== undefined) svc.proxyProtocol = spec.proxyProtocol;
    svc.schedName = spec.schedName;
    svc.sched = sched;
    return svc;
  }

  private bindScheduler(svc: Service, name: string): SchedulerInstance | null {
    if (name === 'none') return null;
    const ops = findScheduler(name);
    if (!ops) fail('ENOENT', 'Scheduler or persistence engine not found');
    return ops.init(svc, this.schedCtx);
  }

  delService(k: ServiceKeySpec): void {
    const svc = this.get(k);
    this.unlinkService(svc);
  }

  flush(): void {
    for (const svc of [...this.byKey.values()]) this.unlinkService(svc);
  }

  private unlinkService(svc: Service): void {
    this.byKey.delete(svc.key);
    if (!svc.fwmark) {
      const ak = ServiceTable.addrKey(svc.addr.fold, svc.port);
      const list = this.byAddr.get(ak)!;
      list.splice(list.indexOf(svc), 1);
      if (list.length === 0) this.byAddr.delete(ak);
      if (svc.port === 21 && svc.protocol === IPPROTO_TCP) this.ftpServices--;
      if (svc.port === 0) this.nullServices--;
    }
    // Dests go to the trash while connections still use them (__ip_vs_del_service).
    const dests = svc.dests.splice(0);
    for (const d of dests) this.retireDest(d);
    svc.sched?.done();
    svc.sched = null;
  }

  // ---- destinations ---------------------------------------------------------------------

  addDest(k: ServiceKeySpec, spec: DestSpec): Dest {
    const svc = this.get(k);
    const addr = parseDestAddr(spec);
    checkDestParams(svc, spec, addr, this.syncRunning);
    if (svc.findDest(addr, spec.port)) fail('EEXIST', 'Destination already exists');
    // A dest deleted earlier and still referenced by connections is revived from the trash,
    // counters and stats kept (ip_vs_trash_get_dest).
    const key = svc.key;
    let dest = this.trash.find((d) => d.port === spec.port && d.addr.equals(addr) && d.svc.key === key);
    if (dest) {
      this.trash.splice(this.trash.indexOf(dest), 1);
      dest.trashedAt = -1;
      dest.svc = svc;
    } else {
      checkDestAddress(svc, addr, this.isLocalAddress);
      dest = new Dest(svc, addr, spec.port);
      this.registerDest(dest);
    }
    applyDestParams(dest, spec);
    // The kernel keeps last_weight at the latest non-zero weight, except that an add (revival
    // from the trash included) takes the given weight even when it is 0.
    dest.lastWeight = spec.weight;
    dest.flags |= DEST_F_AVAILABLE;
    svc.dests.unshift(dest);
    svc.reindex();
    svc.sched?.addDest(dest);
    return dest;
  }

  editDest(k: ServiceKeySpec, spec: DestSpec): Dest {
    const svc = this.get(k);
    const addr = parseDestAddr(spec);
    checkDestParams(svc, spec, addr, this.syncRunning);
    const dest = svc.findDest(addr, spec.port);
    if (!dest) fail('ENOENT', 'No such destination');
    applyDestParams(dest, spec);
    svc.sched?.updDest(dest);
    return dest;
  }

  delDest(k: ServiceKeySpec, spec: Pick<DestSpec, 'af' | 'addr' | 'port'>): void {
    const svc = this.get(k);
    const addr = parseDestAddr(spec);
    const dest = svc.findDest(addr, spec.port);
    if (!dest) fail('ENOENT', 'No such destination');
    svc.dests.splice(dest.listPos, 1);
    svc.reindex();
    dest.flags &= ~DEST_F_AVAILABLE;
    dest.listPos = -1;
    svc.sched?.delDest(dest);
    this.retireDest(dest);
  }

  private registerDest(dest: Dest): void {
    const id = this.freeDestIds.pop() ?? this.destById.length;
    this.destById[id] = dest;
    dest.id = id;
  }

  /** Unlinked from its service: into the trash, freed once nothing refers to it. */
  private retireDest(dest: Dest): void {
    dest.flags &= ~DEST_F_AVAILABLE;
    dest.listPos = -1;
    this.trash.push(dest);
    dest.trashedAt = -1;
    this.hooks.destUnlinked(dest);
  }

  /** Trash sweep (every 60 s): free dests nothing has referred to for DEST_TRASH_PERIOD_MS. */
  sweepTrash(now: number): void {
    for (let i = this.trash.length - 1; i >= 0; i--) {
      const d = this.trash[i]!;
      if (d.refcnt > 0) {
        d.trashedAt = -1;
        continue;
      }
      if (d.trashedAt < 0) d.trashedAt = now;
      if (now - d.trashedAt >= DEST_TRASH_PERIOD_MS) {
        this.trash.splice(i, 1);
        this.releaseDest(d);
      }
    }
  }

  /** Forget a dest for good (its id is reused). */
  releaseDest(d: Dest): void {
    if (d.id >= 0) {
      this.destById[d.id] = undefined;
      this.freeDestIds.push(d.id);
      d.id = -1;
    }
  }
}

/** Re-evaluate OVERLOAD (ip_vs_dest_update_overload, current kernels, spec §3.5). */
export function updateOverload(d: Dest): void {
  const u = d.uThreshold;
  if (u === 0) {
    d.flags &= ~DEST_F_OVERLOAD;
    return;
  }
  const conns = d.activeconns + d.inactconns;
  if (conns >= u) {
    d.flags |= DEST_F_OVERLOAD;
    return;
  }
  const l = d.lThreshold !== 0 ? d.lThreshold : u - (u >>> 2);
  if (conns >= l) return;
  d.flags &= ~DEST_F_OVERLOAD;
}

function checkKey(k: ServiceKeySpec): { af: 4 | 6; addr: IpAddr; fwmark: number } {
  if (k.af !== 4 && k.af !== 6) fail('EAFNOSUPPORT', 'Address family not supported by protocol');
  const fwmark = Number(k.fwmark ?? 0);
  if (!Number.isInteger(fwmark) || fwmark < 0 || fwmark > UINT_MAX) fail('EINVAL', `invalid firewall mark ${k.fwmark}`);
  if (k.protocol !== IPPROTO_TCP && k.protocol !== IPPROTO_UDP && k.protocol !== IPPROTO_SCTP) fail('EFAULT', `unsupported protocol ${k.protocol}`);
  if (fwmark) return { af: k.af, addr: new IpAddr(k.af, 0), fwmark };
  const addr = IpAddr.tryParse(String(k.addr));
  if (!addr || addr.family !== k.af) fail('EINVAL', `invalid service address ${JSON.stringify(k.addr)}`);
  if (!Number.isInteger(k.port) || k.port < 0 || k.port > 65535) fail('EINVAL', `invalid port ${k.port}`);
  return { af: k.af, addr, fwmark: 0 };
}

function checkServiceParams(spec: ServiceSpec): void {
  if (typeof spec.schedName !== 'string' || spec.schedName.length === 0 || spec.schedName.length > 15) fail('EINVAL', 'Invalid scheduler name');
  if (!Number.isInteger(spec.flags) || spec.flags < 0 || spec.flags > UINT_MAX) fail('EINVAL', 'invalid service flags');
  if (!Number.isInteger(spec.timeout) || spec.timeout < 0 || spec.timeout > UINT_MAX) fail('EINVAL', 'invalid persistence timeout');
  if (!Number.isInteger(spec.netmask) || spec.netmask < 0 || spec.netmask > UINT_MAX) fail('EINVAL', 'invalid netmask');
  if (spec.af === 6 && (spec.netmask < 1 || spec.netmask > 128)) fail('EINVAL', 'Invalid argument');
  const pe = spec.peName ?? '';
  if (pe.length > 15) fail('EINVAL', 'Invalid argument');
  if (pe && !KNOWN_PES.has(pe)) fail('ENOENT', 'Scheduler or persistence engine not found');
  if (spec.schedName !== 'none' && !findScheduler(spec.schedName)) fail('ENOENT', 'Scheduler or persistence engine not found');
  if (spec.proxyProtocol !== undefined && spec.proxyProtocol !== 0 && spec.proxyProtocol !== 1 && spec.proxyProtocol !== 2) fail('EINVAL', 'proxyProtocol must be 0, 1 or 2');
}

function parseDestAddr(spec: Pick<DestSpec, 'af' | 'addr'>): IpAddr {
  if (spec.af !== 4 && spec.af !== 6) fail('EAFNOSUPPORT', 'Address family not supported by protocol');
  const a = IpAddr.tryParse(String(spec.addr));
  if (!a || a.family !== spec.af) fail('EINVAL', `invalid real server address ${JSON.stringify(spec.addr)}`);
  return a;
}

function checkDestParams(svc: Service, spec: DestSpec, addr: IpAddr, syncRunning: boolean): void {
  if (!Number.isInteger(spec.port) || spec.port < 0 || spec.port > 65535) fail('EINVAL', `invalid port ${spec.port}`);
  const fwd = spec.connFlags & FWD_MASK;
  if (!Number.isInteger(spec.connFlags) || spec.connFlags < 0 || spec.connFlags > UINT_MAX || fwd === FWD_BYPASS || fwd > FWD_PROXY) fail('EINVAL', 'invalid forwarding method');
  if (addr.family !== svc.af && (fwd !== FWD_TUNNEL || syncRunning)) fail('EINVAL', 'Invalid argument');
  if (!Number.isInteger(spec.weight) || spec.weight < 0) fail('ERANGE', 'Numerical result out of range');
  if (spec.weight > INT_MAX) fail('ERANGE', 'Numerical result out of range');
  for (const t of [spec.uThreshold, spec.lThreshold]) if (!Number.isInteger(t) || t < 0 || t > UINT_MAX) fail('EINVAL', 'invalid threshold');
  if (spec.lThreshold > spec.uThreshold) fail('ERANGE', 'Numerical result out of range');
  if (spec.uThreshold > INT_MAX) fail('EINVAL', 'Invalid argument');
  const tunType = spec.tunType ?? TUN_TYPE_IPIP;
  if (tunType !== TUN_TYPE_IPIP && tunType !== TUN_TYPE_GUE && tunType !== TUN_TYPE_GRE) fail('EINVAL', 'invalid tunnel type');
  const tunPort = spec.tunPort ?? 0;
  if (!Number.isInteger(tunPort) || tunPort < 0 || tunPort > 65535) fail('EINVAL', 'invalid tunnel port');
  if (fwd === FWD_TUNNEL && tunType === TUN_TYPE_GUE && tunPort === 0) fail('EINVAL', 'Invalid argument');
  const tunFlags = spec.tunFlags ?? 0;
  if (!Number.isInteger(tunFlags) || tunFlags < 0 || tunFlags > 0xffff) fail('EINVAL', 'invalid tunnel flags');
}

/** Address checks made only when a new dest object is created (ip_vs_new_dest). */
function checkDestAddress(_svc: Service, a: IpAddr, isLocal: (a: IpAddr) => boolean): void {
  if (a.family === 4) {
    const top = a.w0 >>> 24;
    // inet_addr_type: zeronet and limited broadcast are BROADCAST, 224/4 MULTICAST.
    if (top === 0 || a.w0 === 0xffffffff || (top & 0xf0) === 0xe0) fail('EINVAL', 'Invalid argument');
  } else {
    const multicast = a.w0 >>> 24 === 0xff;
    const unspecified = (a.w0 | a.w1 | a.w2 | a.w3) === 0;
    const linkLocal = a.w0 >>> 22 === 0x3fa; // fe80::/10
    if ((multicast || unspecified || linkLocal) && !isLocal(a)) fail('EINVAL', 'Invalid argument');
  }
}

/** __ip_vs_update_dest: apply the user's parameters to a dest. */
function applyDestParams(d: Dest, spec: DestSpec): void {
  let connFlags = (spec.connFlags & CONN_F_DEST_MASK) | CONN_F_INACTIVE;
  if ((connFlags & FWD_MASK) !== FWD_MASQ && (connFlags & FWD_MASK) !== FWD_PROXY) connFlags |= CONN_F_NOOUTPUT;
  d.connFlags = connFlags;
  d.tunType = spec.tunType ?? TUN_TYPE_IPIP;
  d.tunPort = spec.tunPort ?? 0;
  d.tunFlags = spec.tunFlags ?? 0;
  d.weight = spec.weight;
  if (spec.weight !== 0) d.lastWeight = spec.weight;
  const thresholdsChanged = d.uThreshold !== spec.uThreshold || d.lThreshold !== spec.lThreshold;
  d.uThreshold = spec.uThreshold;
  d.lThreshold = spec.lThreshold;
  if (thresholdsChanged) updateOverload(d);
}
