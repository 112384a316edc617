// Virtual services and their destinations (real servers): the kernel's struct ip_vs_service
// and struct ip_vs_dest. Plain data plus the few derived facts every module needs; the rules
// for changing them live in service-table.ts, the scheduling in schedulers/.

import type { Family, IpAddr } from './addr.js';
import {
  DEST_F_AVAILABLE,
  DEST_F_OVERLOAD,
  FWD_MASK,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  TUN_F_NOCSUM,
  TUN_TYPE_IPIP,
} from './constants.js';
import type { SchedulerInstance } from './schedulers/scheduler.js';
import { Stats } from './stats.js';

export class Dest {
  /** Conn flags given by the user: forwarding method (low 3 bits), ONE_PACKET, NFCT. */
  connFlags = 0;
  weight = 1;
  /** Last non-zero weight (mh builds its table from it, so quiescing keeps the table). */
  lastWeight = 1;
  uThreshold = 0;
  lThreshold = 0;
  tunType = TUN_TYPE_IPIP;
  tunPort = 0;
  tunFlags = TUN_F_NOCSUM;
  /** DEST_F_AVAILABLE | DEST_F_OVERLOAD */
  flags = DEST_F_AVAILABLE;
  activeconns = 0;
  inactconns = 0;
  persistconns = 0;
  readonly stats = new Stats();
  /** Connections and scheduler caches that point at this dest (keeps it in the trash). */
  refcnt = 0;
  /** Position in svc.dests (0 = list head = most recently added); -1 when unlinked. */
  listPos = -1;
  /** When it was moved to the trash (ms), or -1. */
  trashedAt = -1;
  /** Free slot for the service's scheduler (an index into its own tables). */
  schedSlot = -1;
  /** Index in the director's dest registry (what connection entries store), -1 when freed. */
  id = -1;

  constructor(
    /** The service it belongs (or last belonged) to. */
    public svc: Service,
    readonly addr: IpAddr,
    readonly port: number,
  ) {}

  get af(): Family {
    return this.addr.family;
  }

  get fwdMethod(): number {
    return this.connFlags & FWD_MASK;
  }

  get available(): boolean {
    return (this.flags & DEST_F_AVAILABLE) !== 0;
  }

  get overloaded(): boolean {
    return (this.flags & DEST_F_OVERLOAD) !== 0;
  }

  /** Connection overhead used by lc, wlc, lblc, lblcr and twos: active*256 + inactive. */
  get overhead(): number {
    return this.activeconns * 256 + this.inactconns;
  }

  toString(): string {
    return this.addr.family === 6 ? `[${this.addr}]:${this.port}` : `${this.addr}:${this.port}`;
  }
}

export class Service {
  flags = 0;
  /** Persistence timeout in seconds. */
  timeout = 0;
  /** IPv4: a 32-bit mask (applied with AND); IPv6: a prefix length 1..128. */
  netmask: number;
  schedName = 'wlc';
  /** tsvs extension: PROXY protocol header sent to real servers by the proxy plane (0 = none). */
  proxyProtocol: 0 | 1 | 2 = 0;
  sched: SchedulerInstance | null = null;
  peName = '';
  /** Destinations in kernel list order: index 0 is the head, the most recently added. */
  readonly dests: Dest[] = [];
  readonly stats = new Stats();

  constructor(
    readonly af: Family,
    /** IPPROTO_TCP, _UDP or _SCTP (fwmark services: TCP as placeholder). */
    readonly protocol: number,
    readonly addr: IpAddr,
    readonly port: number,
    /** Firewall mark; 0 for an address service. */
    readonly fwmark: number,
  ) {
    this.netmask = af === 4 ? 0xffffffff : 128;
  }

  get persistent(): boolean {
    return (this.flags & SVC_F_PERSISTENT) !== 0;
  }

  get onePacket(): boolean {
    return (this.flags & SVC_F_ONEPACKET) !== 0;
  }

  get numDests(): number {
    return this.dests.length;
  }

  /** Canonical identity: "tcp:198.18.0.1:80", "udp:[2001:db8::1]:53", "fwm4:1", "fwm6:2". */
  get key(): string {
    return serviceKey(this.af, this.protocol, this.addr, this.port, this.fwmark);
  }

  findDest(addr: IpAddr, port: number): Dest | undefined {
    for (const d of this.dests) if (d.port === port && d.addr.equals(addr)) return d;
    return undefined;
  }

  /** Renumber listPos after the list changed. */
  reindex(): void {
    for (let i = 0; i < this.dests.length; i++) this.dests[i]!.listPos = i;
  }

  toString(): string {
    if (this.fwmark) return `FWM ${this.fwmark}${this.af === 6 ? ' IPv6' : ''}`;
    const a = this.af === 6 ? `[${this.addr}]` : `${this.addr}`;
    return `${this.protocol === 17 ? 'UDP' : this.protocol === 132 ? 'SCTP' : 'TCP'} ${a}:${this.port}`;
  }
}

export function serviceKey(af: Family, protocol: number, addr: IpAddr, port: number, fwmark: number): string {
  if (fwmark) return `fwm${af}:${fwmark >>> 0}`;
  const p = protocol === 17 ? 'udp' : protocol === 132 ? 'sctp' : 'tcp';
  return af === 6 ? `${p}:[${addr}]:${port}` : `${p}:${addr}:${port}`;
}
