// The management model shared by the core, the control API and vsadm: the requests mirror the
// kernel's ip_vs_service_user / ip_vs_dest_user (as ipvsadm fills them, plus address family and
// tunnel fields from the netlink interface), the snapshots what GET_SERVICES/GET_DESTS and
// /proc/net/ip_vs_conn return. All JSON-safe: vsadm and vsd exchange them over the control API.

import type { CounterValues, RateValues } from './stats.js';

/** Identifies a service: by protocol + address + port, or by firewall mark (+ family). */
export interface ServiceKeySpec {
  af: 4 | 6;
  /** 6 (TCP), 17 (UDP), 132 (SCTP); fwmark services use 6 as ipvsadm does. */
  protocol: number;
  /** Numeric address text; '0.0.0.0' / '::' for fwmark services. */
  addr: string;
  port: number;
  /** 0 for an address service. */
  fwmark: number;
}

/** Add or edit a service (ip_vs_service_user + af + pe_name). Edit replaces every field. */
export interface ServiceSpec extends ServiceKeySpec {
  /** Scheduler name; 'none' means no scheduler. */
  schedName: string;
  /** SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED1..3 */
  flags: number;
  /** Persistence timeout, seconds. */
  timeout: number;
  /** IPv4: 32-bit mask as an unsigned number; IPv6: prefix length. */
  netmask: number;
  /** Persistence engine ('' = none; the kernel knows 'sip'). */
  peName?: string;
  /**
   * tsvs extension, not in ipvsadm: PROXY protocol version (1 or 2) the proxy plane sends to
   * real servers, 0 for none. Left unchanged by an edit that does not give it.
   */
  proxyProtocol?: 0 | 1 | 2;
}

/** Add, edit or delete a real server (ip_vs_dest_user + netlink's family and tunnel fields). */
export interface DestSpec {
  /** Family of the real server; may differ from the service's only for tunnelling. */
  af: 4 | 6;
  addr: string;
  port: number;
  /** Forwarding method in the low 3 bits (FWD_*), plus CONN_F_ONE_PACKET/NFCT if wanted. */
  connFlags: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType?: number;
  tunPort?: number;
  tunFlags?: number;
}

export interface TimeoutsSpec {
  /** seconds; 0 = leave unchanged (ipvsadm --set semantics) */
  tcp: number;
  tcpfin: number;
  udp: number;
}

export interface DestInfo {
  af: 4 | 6;
  addr: string;
  port: number;
  connFlags: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
  /** DEST_F_AVAILABLE | DEST_F_OVERLOAD */
  flags: number;
  stats: CounterValues;
  rates: RateValues;
}

export interface ServiceInfo extends ServiceSpec {
  peName: string;
  proxyProtocol: 0 | 1 | 2;
  /** Real servers in kernel list order (newest first), as `ipvsadm --nosort` shows them. */
  dests: DestInfo[];
  stats: CounterValues;
  rates: RateValues;
}

export interface ConnInfo {
  af: 4 | 6;
  protocol: number;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  /** Family of the real server address (differs for mixed-family tunnels). */
  daf: 4 | 6;
  fwmark: number;
  flags: number;
  /** State name as /proc/net/ip_vs_conn prints it: ESTABLISHED, UDP, NONE, ASSURED … */
  state: string;
  /** Milliseconds until the entry expires. */
  expiresMs: number;
  /** Current inactivity timeout of the entry, in seconds. */
  timeout: number;
  peName: string;
  peData: string;
}

export interface InfoSnapshot {
  version: string;
  /** Connection hash table size (buckets), as the header line prints it. */
  connTabSize: number;
  numServices: number;
}
