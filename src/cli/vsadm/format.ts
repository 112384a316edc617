// ipvsadm's listings, byte for byte: the version header, the titles of every mode, service and
// real-server lines (default, --stats, --rate, --thresholds, --persistent-conn, --tun-info),
// the large-number routine, --exact, the connection listing, --timeout and --daemon.
// Names are resolved through the NameResolver unless -n: host names by reverse lookup (numeric
// when there is none), ports by service name of the service's protocol (decimal when none).

import { IpAddr } from '../../core/addr.js';
import { FWD_MASK, FWD_TUNNEL, fwdName, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, TUN_TYPE_GRE, TUN_TYPE_GUE, TUN_TYPE_IPIP } from '../../core/constants.js';
import type { ConnInfo, DestInfo, InfoSnapshot, ServiceInfo, TimeoutsSpec } from '../../core/model.js';
import type { DaemonInfo } from '../../control/ipvs-api.js';
import type { NameResolver } from './names.js';
import { protoForServices } from './names.js';
import type { Format } from './parse.js';

export function padRight(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

export function padLeft(s: string, width: number): string {
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}

/** C's %u of a 32-bit value. */
function u32(n: number): string {
  return String(n >>> 0);
}

/** C's %d of a 32-bit value. */
function i32(n: number): string {
  return String(n | 0);
}

/** An unsigned 64-bit counter as text (counters are exact JS integers up to 2^53). */
function u64(n: number): string {
  return n < 0 ? '0' : String(Math.floor(n));
}

/**
 * print_largenum: right-aligned in 9 columns, scaled by powers of 1000 with a K/M/G/T suffix
 * from 10^8 up; with --exact the full number, at least 9 columns, always one leading blank.
 */
export function largeNum(value: number, exact: boolean): string {
  const i = Math.max(0, Math.floor(value));
  if (exact) {
    const s = String(i);
    return padLeft(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 1e8) return padLeft(String(i), 9);
  if (i < 1e9) return `${padLeft(String(Math.floor(i / 1e3)), 8)}K`;
  if (i < 1e11) return `${padLeft(String(Math.floor(i / 1e6)), 8)}M`;
  if (i < 1e14) return `${padLeft(String(Math.floor(i / 1e9)), 8)}G`;
  return `${padLeft(String(Math.floor(i / 1e12)), 8)}T`;
}

export function protocolName(protocol: number): string {
  return protocol === 6 ? 'TCP' : protocol === 17 ? 'UDP' : protocol === 132 ? 'SCTP' : '?';
}

/** Turns addresses and ports into what ipvsadm prints, remembering reverse lookups. */
export class Names {
  private readonly hosts = new Map<string, Promise<string | null>>();

  constructor(
    private readonly resolver: NameResolver,
    readonly numeric: boolean,
  ) {}

  private async host(addr: IpAddr): Promise<string> {
    const key = addr.toString();
    let p = this.hosts.get(key);
    if (!p) {
      p = this.resolver.addrToHost(addr).catch(() => null);
      this.hosts.set(key, p);
    }
    return (await p) ?? key;
  }

  private port(port: number, protocol: number): string {
    const proto = protoForServices(protocol);
    return (proto && this.resolver.portToService(port, proto)) || String(port);
  }

  /** addrport_to_anyname: "addr:port", "[v6]:port", names unless numeric; at most 59 bytes. */
  async addrPort(af: 4 | 6, addrText: string, port: number, protocol: number): Promise<string> {
    const addr = IpAddr.tryParse(addrText) ?? IpAddr.v4(0);
    const open = af === 4 ? '' : '[';
    const close = af === 4 ? '' : ']';
    const s = this.numeric ? `${open}${addr}${close}:${port}` : `${open}${await this.host(addr)}${close}:${this.port(port, protocol)}`;
    return s.slice(0, 59);
  }
}

export function versionHeader(info: InfoSnapshot): string {
  const v = info.version.split('.').map((x) => Number.parseInt(x, 10) || 0);
  return `IP Virtual Server version ${v[0] ?? 0}.${v[1] ?? 0}.${v[2] ?? 0} (size=${info.connTabSize})\n`;
}

/** print_title, for every mode except -S (which has none). */
export function listTitle(f: Format): string {
  if (f.stats) return `${padRight('Prot LocalAddress:Port', 33)}    Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n`;
  if (f.rate) return `${padRight('Prot LocalAddress:Port', 33)}      CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n`;
  if (f.thresholds) return `${padRight('Prot LocalAddress:Port', 33)} Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n`;
  if (f.persistentConn) return `${padRight('Prot LocalAddress:Port', 33)} Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n`;
  if (f.tunInfo) return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
}

/** print_sched_flags: the names of the SCHED bits as the scheduler knows them. */
export function schedFlagNames(svc: Pick<ServiceInfo, 'schedName' | 'flags'>): string[] {
  const out: string[] = [];
  const [one, two] = svc.schedName === 'sh' ? ['sh-fallback', 'sh-port'] : svc.schedName === 'mh' ? ['mh-fallback', 'mh-port'] : ['flag-1', 'flag-2'];
  if (svc.flags & SVC_F_SCHED1) out.push(one);
  if (svc.flags & SVC_F_SCHED2) out.push(two);
  if (svc.flags & SVC_F_SCHED3) out.push('flag-3');
  return out;
}

/** The mask as ipvsadm prints it, or null when it is the default (/32, /128). */
export function maskText(svc: Pick<ServiceInfo, 'af' | 'netmask'>): string | null {
  if (svc.af === 4) return svc.netmask >>> 0 !== 0xffffffff ? IpAddr.v4(svc.netmask).toString() : null;
  return svc.netmask !== 128 ? String(svc.netmask | 0) : null;
}

/** The service part of a line: "TCP  addr:port" (IPv4 cut at 33), "FWM  %d[ IPv6]". */
export async function serviceName(svc: ServiceInfo, names: Names): Promise<string> {
  if (svc.fwmark) return svc.af === 6 ? `FWM  ${i32(svc.fwmark)} IPv6` : `FWM  ${i32(svc.fwmark)}`;
  const vname = await names.addrPort(svc.af, svc.addr, svc.port, svc.protocol);
  const s = `${padRight(protocolName(svc.protocol), 4)} ${vname}`;
  return svc.af !== 6 ? s.slice(0, 33) : s;
}

/** A real server's name in listings: IPv4 cut at 28. */
export async function destName(d: DestInfo, protocol: number, names: Names): Promise<string> {
  const s = await names.addrPort(d.af, d.addr, d.port, protocol);
  return d.af !== 6 ? s.slice(0, 28) : s;
}

/** fwd_tun_info: "ipip", "gue:<port>:<csum>", "gre:<csum>"; null for other methods. */
export function tunnelInfo(d: DestInfo): string | null {
  if ((d.connFlags & FWD_MASK) !== FWD_TUNNEL) return null;
  const csum = ['-c', '+c', 'r+c'][d.tunFlags] ?? '?';
  if (d.tunType === TUN_TYPE_IPIP) return 'ipip';
  if (d.tunType === TUN_TYPE_GUE) return `gue:${d.tunPort}:${csum}`;
  if (d.tunType === TUN_TYPE_GRE) return `gre:${csum}`;
  return null;
}

/** ip_vs_fwd_name: Masq, Local, Tunnel, Route (and tsvs's Proxy). */
export function forwardName(connFlags: number): string {
  return fwdName(connFlags & FWD_MASK);
}

/** The service line of the default, --thresholds, --persistent-conn and --tun-info modes. */
export function serviceDetails(svc: ServiceInfo): string {
  let s = ` ${svc.schedName}`;
  const flags = schedFlagNames(svc);
  if (flags.length) s += ` (${flags.join(',')})`;
  if (svc.flags & SVC_F_PERSISTENT) {
    s += ` persistent ${u32(svc.timeout)}`;
    const mask = maskText(svc);
    if (mask !== null) s += ` mask ${mask}`;
    if (svc.peName) s += ` pe ${svc.peName}`;
  }
  if (svc.flags & SVC_F_ONEPACKET) s += ' ops';
  return s;
}

/** print_service_entry for every listing mode (not -S): the service line and its real servers. */
export async function formatServiceEntry(svc: ServiceInfo, f: Format, names: Names, dests: readonly DestInfo[]): Promise<string> {
  const name = await serviceName(svc, names);
  let out: string;
  if (f.stats) {
    const st = svc.stats;
    out = padRight(name, 33) + [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes].map((v) => largeNum(v, f.exact)).join('');
  } else if (f.rate) {
    const r = svc.rates;
    out = padRight(name, 33) + [r.cps, r.inpps, r.outpps, r.inbps, r.outbps].map((v) => largeNum(v, f.exact)).join('');
  } else {
    out = name + serviceDetails(svc);
  }
  out += '\n';
  for (const d of dests) {
    const dname = await destName(d, svc.protocol, names);
    if (f.stats) {
      const st = d.stats;
      out += `  -> ${padRight(dname, 28)}${[st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes].map((v) => largeNum(v, f.exact)).join('')}\n`;
    } else if (f.rate) {
      const r = d.rates;
      // the packet rates of a real server are never scaled (a quirk of ipvsadm)
      out += `  -> ${padRight(dname, 28)} ${padLeft(u64(r.cps), 8)} ${padLeft(u64(r.inpps), 8)} ${padLeft(u64(r.outpps), 8)}${largeNum(r.inbps, f.exact)}${largeNum(r.outbps, f.exact)}\n`;
    } else if (f.thresholds) {
      out += `  -> ${padRight(dname, 28)} ${padRight(u32(d.uThreshold), 10)} ${padRight(u32(d.lThreshold), 10)} ${padRight(u32(d.activeConns), 10)} ${padRight(u32(d.inactConns), 10)}\n`;
    } else if (f.persistentConn) {
      out += `  -> ${padRight(dname, 28)} ${padRight(u32(d.weight), 9)} ${padRight(u32(d.persistConns), 11)} ${padRight(u32(d.activeConns), 10)} ${padRight(u32(d.inactConns), 10)}\n`;
    } else if (f.tunInfo) {
      out += `  -> ${padRight(dname, 28)} ${padRight(forwardName(d.connFlags), 7)} ${padRight(tunnelInfo(d) ?? 'n/a', 13)} ${padRight(i32(d.weight), 6)} ${padRight(u32(d.activeConns), 10)} ${padRight(u32(d.inactConns), 10)}\n`;
    } else {
      out += `  -> ${padRight(dname, 28)} ${padRight(forwardName(d.connFlags), 7)} ${padRight(i32(d.weight), 6)} ${padRight(u32(d.activeConns), 10)} ${padRight(u32(d.inactConns), 10)}\n`;
    }
  }
  return out;
}

export function connTitle(f: Format): string {
  const head = 'IPVS connection entries\n';
  if (f.persistentConn) return `${head}pro expire ${padRight('state', 11)} ${padRight('source', 18)} ${padRight('virtual', 18)} ${padRight('destination', 18)} ${padRight('pe name', 16)} pe_data\n`;
  return `${head}pro expire ${padRight('state', 11)} ${padRight('source', 18)} ${padRight('virtual', 18)} destination\n`;
}

/** The protocol name /proc/net/ip_vs_conn prints (ip_vs_proto_name). */
export function connProtocolName(protocol: number): string {
  if (protocol === 0) return 'IP';
  if (protocol === 6) return 'TCP';
  if (protocol === 17) return 'UDP';
  if (protocol === 132) return 'SCTP';
  if (protocol === 1) return 'ICMP';
  if (protocol === 58) return 'ICMPv6';
  return `IP_${protocol}`;
}

/** Seconds left, as the kernel prints them in /proc/net/ip_vs_conn. */
export function connExpires(c: ConnInfo): number {
  return Math.max(0, Math.floor(c.expiresMs / 1000));
}

/** print_conn: one line of `ipvsadm -L -c`. */
export async function formatConn(c: ConnInfo, f: Format, names: Names): Promise<string> {
  const proto = connProtocolName(c.protocol);
  const cname = await names.addrPort(c.af, c.caddr, c.cport, c.protocol);
  const vname = await names.addrPort(c.af, c.vaddr, c.vport, c.protocol);
  const dname = await names.addrPort(c.daf, c.daddr, c.dport, c.protocol);
  const exp = connExpires(c);
  const expire = `${String(Math.floor(exp / 60)).padStart(2, '0')}:${String(exp % 60).padStart(2, '0')}`;
  // ipvsadm reads the /proc line with sscanf("%s"): the state and the PE data are single words
  const state = c.state.split(/\s+/)[0] ?? '';
  const peData = c.peData.split(/\s+/)[0] ?? '';
  if (f.persistentConn && c.peName && peData) {
    return `${padRight(proto, 3)} ${padRight(expire, 6)} ${padRight(state, 11)} ${padRight(cname, 18)} ${padRight(vname, 18)} ${padRight(dname, 16)} ${padRight(c.peName, 18)} ${peData}\n`;
  }
  return `${padRight(proto, 3)} ${padRight(expire, 6)} ${padRight(state, 11)} ${padRight(cname, 18)} ${padRight(vname, 18)} ${dname}\n`;
}

export function formatTimeouts(t: TimeoutsSpec): string {
  return `Timeout (tcp tcpfin udp): ${i32(t.tcp)} ${i32(t.tcpfin)} ${i32(t.udp)}\n`;
}

/** list_daemon: master first, then backup; the optional parts only when the kernel reports them. */
export function formatDaemons(daemons: readonly DaemonInfo[]): string {
  let out = '';
  for (const state of ['master', 'backup'] as const) {
    const d = daemons.find((x) => x.state === state);
    if (!d) continue;
    out += `${state} sync daemon (mcast=${d.mcastIfn}, syncid=${d.syncid}`;
    if (d.syncMaxlen) out += `, maxlen=${d.syncMaxlen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ')\n';
  }
  return out;
}
