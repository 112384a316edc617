// IPVS constants, with the kernel's values (include/uapi/linux/ip_vs.h, include/net/ip_vs.h).

export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

export type Protocol = typeof IPPROTO_TCP | typeof IPPROTO_UDP | typeof IPPROTO_SCTP;

export function protocolName(p: number): string {
  return p === IPPROTO_TCP ? 'TCP' : p === IPPROTO_UDP ? 'UDP' : p === IPPROTO_SCTP ? 'SCTP' : `IP${p}`;
}

/** Service flags (IP_VS_SVC_F_*). */
export const SVC_F_PERSISTENT = 0x0001;
export const SVC_F_HASHED = 0x0002;
export const SVC_F_ONEPACKET = 0x0004;
export const SVC_F_SCHED1 = 0x0008;
export const SVC_F_SCHED2 = 0x0010;
export const SVC_F_SCHED3 = 0x0020;
export const SVC_F_SCHED_SH_FALLBACK = SVC_F_SCHED1;
export const SVC_F_SCHED_SH_PORT = SVC_F_SCHED2;
export const SVC_F_SCHED_MH_FALLBACK = SVC_F_SCHED1;
export const SVC_F_SCHED_MH_PORT = SVC_F_SCHED2;

/** Forwarding methods: the low three bits of a destination's conn_flags. */
export const FWD_MASQ = 0;
export const FWD_LOCALNODE = 1;
export const FWD_TUNNEL = 2;
export const FWD_DROUTE = 3;
export const FWD_BYPASS = 4;
/**
 * tsvs's own method: the real server is reached by a socket from the proxy data plane
 * (a full proxy, "fullnat"). The kernel leaves the values 5..7 unused.
 */
export const FWD_PROXY = 5;
export const FWD_MASK = 0x0007;

export type FwdMethod = typeof FWD_MASQ | typeof FWD_LOCALNODE | typeof FWD_TUNNEL | typeof FWD_DROUTE | typeof FWD_BYPASS | typeof FWD_PROXY;

/** Name ipvsadm prints in the Forward column (ip_vs_fwd_name). */
export function fwdName(m: number): string {
  switch (m & FWD_MASK) {
    case FWD_MASQ:
      return 'Masq';
    case FWD_LOCALNODE:
      return 'Local';
    case FWD_TUNNEL:
      return 'Tunnel';
    case FWD_DROUTE:
      return 'Route';
    case FWD_PROXY:
      return 'Proxy';
    default:
      return 'Unknown';
  }
}

/** Connection flags (IP_VS_CONN_F_*). */
export const CONN_F_SYNC = 0x0020;
export const CONN_F_HASHED = 0x0040;
export const CONN_F_NOOUTPUT = 0x0080;
export const CONN_F_INACTIVE = 0x0100;
export const CONN_F_OUT_SEQ = 0x0200;
export const CONN_F_IN_SEQ = 0x0400;
export const CONN_F_SEQ_MASK = 0x0600;
export const CONN_F_NO_CPORT = 0x0800;
export const CONN_F_TEMPLATE = 0x1000;
export const CONN_F_ONE_PACKET = 0x2000;
export const CONN_F_NFCT = 1 << 16;
export const CONN_F_BACKUP_MASK = FWD_MASK | CONN_F_NOOUTPUT | CONN_F_INACTIVE | CONN_F_SEQ_MASK | CONN_F_NO_CPORT | CONN_F_TEMPLATE;
export const CONN_F_BACKUP_UPD_MASK = CONN_F_INACTIVE | CONN_F_SEQ_MASK;
export const CONN_F_DEST_MASK = FWD_MASK | CONN_F_ONE_PACKET | CONN_F_NFCT;

/** Destination flags. */
export const DEST_F_AVAILABLE = 0x0001;
export const DEST_F_OVERLOAD = 0x0002;

/** Tunnel types and flags. */
export const TUN_TYPE_IPIP = 0;
export const TUN_TYPE_GUE = 1;
export const TUN_TYPE_GRE = 2;
export const TUN_F_NOCSUM = 0;
export const TUN_F_CSUM = 1 << 0;
export const TUN_F_REMCSUM = 1 << 1;

/** Persistence template state bit (IP_VS_CTPL_S_ASSURED). */
export const CTPL_S_NONE = 0;
export const CTPL_S_ASSURED = 1;

/** ipvsadm/kernel limits. */
export const IP_VS_SCHEDNAME_MAXLEN = 16;
export const IP_VS_PENAME_MAXLEN = 16;
export const IPVS_SVC_PERSISTENT_TIMEOUT = 360; // seconds: ipvsadm's bare -p
export const IP_VS_VERSION_CODE = 0x010201;
export const INT_MAX = 2147483647;
export const UINT_MAX = 4294967295;
export const MAX_PERSISTENT_TIMEOUT = 2678400; // 31 days, ipvsadm's -p and --set range
