// The kernel's text views of IPVS, rendered from snapshots: /proc/net/ip_vs, ip_vs_stats,
// ip_vs_stats_percpu, ip_vs_conn, ip_vs_conn_sync and ip_vs_app, byte for byte as the kernel's
// seq_show functions print them (spec ipvsadm-keepalived.md §1.13). Tools that parse those
// files (node_exporter's ipvs collector, scripts, Octavia) read ours unchanged.
//
// Pure functions: no I/O, no clock. The order of services is the caller's, except that, as in
// the kernel, address services come before firewall-mark services (two hash tables, listed
// one after the other); real servers keep their list order (newest first).

import { IpAddr } from '../core/addr.js';
import { CONN_F_SYNC, FWD_DROUTE, FWD_LOCALNODE, FWD_MASK, FWD_TUNNEL, SVC_F_ONEPACKET, SVC_F_PERSISTENT } from '../core/constants.js';
import type { ConnInfo, ServiceInfo } from '../core/model.js';
import type { CounterValues, RateValues } from '../core/stats.js';

/** The kernel prints persistence timeouts in jiffies; Debian kernels run at HZ=250. */
export const HZ = 250;

export const IP_VS_HEADER_TITLES = 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n';
export const IP_VS_CONN_HEADER = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
export const IP_VS_CONN_SYNC_HEADER = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n';
export const IP_VS_APP = 'prot port    usecnt name\n';

/** `%08X` of an unsigned 32-bit value. */
export function hex8(n: number): string {
  return (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** `%04X` of a port. */
export function hex4(n: number): string {
  return (n & 0xffff).toString(16).toUpperCase().padStart(4, '0');
}

/** `%LX` of a 64-bit counter (exact up to 2^53), right-aligned in `width`. */
function hexWide(n: number, width: number): string {
  return Math.max(0, Math.trunc(n)).toString(16).toUpperCase().padStart(width, ' ');
}

/** The kernel's `%pI6`: eight groups of four lower-case hex digits, never compressed. */
export function ipv6Full(a: IpAddr): string {
  const w = [a.w0, a.w1, a.w2, a.w3];
  const g: string[] = [];
  for (const x of w) {
    g.push((x >>> 16).toString(16).padStart(4, '0'), (x & 0xffff).toString(16).padStart(4, '0'));
  }
  return g.join(':');
}

/** ip_vs_proto_name */
export function procProtoName(p: number): string {
  switch (p) {
    case 0:
      return 'IP';
    case 6:
      return 'TCP';
    case 17:
      return 'UDP';
    case 132:
      return 'SCTP';
    case 58:
      return 'ICMPv6';
    case 1:
      return 'ICMP';
    default:
      return `IP_${p}`;
  }
}

/**
 * ip_vs_fwd_name: the kernel knows three names and calls everything else Masq, so tsvs's proxy
 * method (fullnat) shows as Masq here — readers of this file know no other name.
 */
export function procFwdName(connFlags: number): string {
  switch (connFlags & FWD_MASK) {
    case FWD_LOCALNODE:
      return 'Local';
    case FWD_TUNNEL:
      return 'Tunnel';
    case FWD_DROUTE:
      return 'Route';
    default:
      return 'Masq';
  }
}

/** `%-Nd` / `%-Ns`: left-justified, never truncated. */
function left(v: string | number, width: number): string {
  return String(v).padEnd(width, ' ');
}

/** Address text of a snapshot as the kernel prints it: `%08X` (host order) or `%pI6`. */
function addrField(af: 4 | 6, text: string): string {
  const a = IpAddr.parse(text);
  if (af === 6) return ipv6Full(a.family === 6 ? a : new IpAddr(6, a.w0));
  return hex8(a.w0);
}

/** The netmask field of a persistent service: host-order IPv4 mask, or the IPv6 prefix through ntohl. */
function netmaskField(s: Pick<ServiceInfo, 'af' | 'netmask'>): string {
  if (s.af === 4) return hex8(s.netmask);
  const p = s.netmask >>> 0;
  // ntohl() of a host-order prefix on a little-endian kernel: the bytes reversed
  const swapped = ((p & 0xff) << 24) | ((p & 0xff00) << 8) | ((p >>> 8) & 0xff00) | (p >>> 24);
  return hex8(swapped);
}

/** One service line of /proc/net/ip_vs (with its newline). */
export function procServiceLine(s: ServiceInfo): string {
  const sched = s.schedName && s.schedName !== 'none' ? s.schedName : 'none';
  const ops = s.flags & SVC_F_ONEPACKET ? 'ops ' : '';
  let line: string;
  if (s.fwmark) {
    line = `FWM  ${hex8(s.fwmark)} ${sched} ${ops}`;
  } else if (s.af === 6) {
    // the kernel's IPv6 format has no ops field
    line = `${procProtoName(s.protocol)}  [${addrField(6, s.addr)}]:${hex4(s.port)} ${sched} `;
  } else {
    line = `${procProtoName(s.protocol)}  ${addrField(4, s.addr)}:${hex4(s.port)} ${sched} ${ops} `;
  }
  if (s.flags & SVC_F_PERSISTENT) return `${line}persistent ${s.timeout * HZ} ${netmaskField(s)}\n`;
  return `${line}\n`;
}

/** One real-server line of /proc/net/ip_vs. */
export function procDestLine(d: ServiceInfo['dests'][number]): string {
  const where = d.af === 6 ? `[${addrField(6, d.addr)}]` : addrField(4, d.addr);
  return `  -> ${where}:${hex4(d.port)}      ${left(procFwdName(d.connFlags), 7)} ${left(d.weight | 0, 6)} ${left(d.activeConns | 0, 10)} ${left(d.inactConns | 0, 10)}\n`;
}

/** Address services first, then firewall-mark services, each group in the given order. */
export function kernelServiceOrder<T extends Pick<ServiceInfo, 'fwmark'>>(services: readonly T[]): T[] {
  return [...services.filter((s) => !s.fwmark), ...services.filter((s) => s.fwmark)];
}

/** /proc/net/ip_vs */
export function renderIpVs(info: { version?: string; connTabSize: number }, services: readonly ServiceInfo[]): string {
  const parts = [`IP Virtual Server version ${info.version ?? '1.2.1'} (size=${info.connTabSize})\n`, IP_VS_HEADER_TITLES];
  for (const s of kernelServiceOrder(services)) {
    parts.push(procServiceLine(s));
    for (const d of s.dests) parts.push(procDestLine(d));
  }
  return parts.join('');
}

function statsRow(v: CounterValues): string {
  return `${hexWide(v.conns, 8)} ${hexWide(v.inpkts, 8)} ${hexWide(v.outpkts, 8)} ${hexWide(v.inbytes, 16)} ${hexWide(v.outbytes, 16)}`;
}

function ratesRow(r: RateValues): string {
  return `${hexWide(r.cps, 8)} ${hexWide(r.inpps, 8)} ${hexWide(r.outpps, 8)} ${hexWide(r.inbps, 16)} ${hexWide(r.outbps, 16)}`;
}

/** /proc/net/ip_vs_stats: the totals and their estimated rates, in hex. */
export function renderIpVsStats(stats: CounterValues, rates: RateValues): string {
  return (
    '   Total Incoming Outgoing         Incoming         Outgoing\n' +
    '   Conns  Packets  Packets            Bytes            Bytes\n' +
    `${statsRow(stats)}\n\n` +
    ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
    `${ratesRow(rates)}\n`
  );
}

/**
 * /proc/net/ip_vs_stats_percpu. tsvs counts on one event loop, so everything is CPU 0 (the
 * kernel's per-CPU rows are raw; the `~` row the total).
 */
export function renderIpVsStatsPercpu(stats: CounterValues, rates: RateValues, cpus = 1): string {
  const zero: CounterValues = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  const rows: string[] = [];
  for (let i = 0; i < Math.max(1, cpus); i++) rows.push(`${i.toString(16).toUpperCase().padStart(3, ' ')} ${statsRow(i === 0 ? stats : zero)}\n`);
  return (
    '       Total Incoming Outgoing         Incoming         Outgoing\n' +
    'CPU    Conns  Packets  Packets            Bytes            Bytes\n' +
    rows.join('') +
    `  ~ ${statsRow(stats)}\n\n` +
    '     Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
    `    ${ratesRow(rates)}\n`
  );
}

/** Remaining seconds as the kernel prints them (msecs / 1000, never negative). */
export function procExpires(c: Pick<ConnInfo, 'expiresMs'>): number {
  return Math.max(0, Math.floor(c.expiresMs / 1000));
}

/** The address columns shared by ip_vs_conn and ip_vs_conn_sync, up to and including the state. */
function connColumns(c: ConnInfo): string {
  const daddr = c.daf === 6 ? addrField(6, c.daddr) : addrField(4, c.daddr);
  return `${left(procProtoName(c.protocol), 3)} ${addrField(c.af, c.caddr)} ${hex4(c.cport)} ${addrField(c.af, c.vaddr)} ${hex4(c.vport)} ${daddr} ${hex4(c.dport)} ${left(c.state, 11)}`;
}

/** One line of /proc/net/ip_vs_conn. */
export function procConnLine(c: ConnInfo): string {
  const pe = c.peData ? ` ${c.peName} ${c.peData}` : '';
  return `${connColumns(c)} ${String(procExpires(c)).padStart(7, ' ')}${pe}\n`;
}

/** One line of /proc/net/ip_vs_conn_sync (Origin: SYNC for entries learnt from a sync daemon). */
export function procConnSyncLine(c: ConnInfo): string {
  return `${connColumns(c)} ${left(c.flags & CONN_F_SYNC ? 'SYNC' : 'LOCAL', 6)} ${String(procExpires(c)).padStart(7, ' ')}\n`;
}

/** /proc/net/ip_vs_conn */
export function renderIpVsConn(conns: Iterable<ConnInfo>): string {
  const parts = [IP_VS_CONN_HEADER];
  for (const c of conns) parts.push(procConnLine(c));
  return parts.join('');
}

/** /proc/net/ip_vs_conn_sync */
export function renderIpVsConnSync(conns: Iterable<ConnInfo>): string {
  const parts = [IP_VS_CONN_SYNC_HEADER];
  for (const c of conns) parts.push(procConnSyncLine(c));
  return parts.join('');
}

/** /proc/net/ip_vs_app: tsvs has no application helpers (FTP), so the header alone. */
export function renderIpVsApp(): string {
  return IP_VS_APP;
}
