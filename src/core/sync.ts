// Connection synchronization (spec ipvs-kernel.md §10): the pure parts the director and the
// sync daemon share — the record a master sends and a backup applies, the kernel's jiffies
// arithmetic for sync_endtime, and which protocol states are worth syncing. No I/O here.

import type { IpAddr } from './addr.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from './constants.js';
import { SCTP_S_CLOSED, SCTP_S_ESTABLISHED, SCTP_S_LAST, SCTP_S_SHUTDOWN_ACK_SENT, SCTP_S_SHUTDOWN_RECEIVED, SCTP_S_SHUTDOWN_SENT } from './proto/sctp.js';
import { TCP_S_CLOSE, TCP_S_CLOSE_WAIT, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_LAST, TCP_S_TIME_WAIT } from './proto/tcp.js';

/** The kernel's timer tick for sync_endtime: HZ 250, one jiffy = 4 ms. */
export const SYNC_HZ = 250;
export const JIFFY_MS = 1000 / SYNC_HZ;

/** Milliseconds → jiffies, as a wrapping unsigned 32-bit counter (a 32-bit kernel's jiffies). */
export function msToJiffies(ms: number): number {
  return Math.floor(ms / JIFFY_MS) >>> 0;
}

/**
 * The full u32 jiffies value of a sync_endtime kept modulo 2^16: the candidate nearest to
 * `ref` (the new end time it is compared with). Exact whenever the two are less than 2^15
 * jiffies (131 s) apart, which covers every comparison the kernel makes with a
 * sync_refresh_period below 131 s; beyond, a gap close to a multiple of 262 s can read as
 * small (one refresh skipped).
 */
export function expandJiffies16(stored: number, ref: number): number {
  const d = ((ref - stored) << 16) >> 16; // signed 16-bit distance
  return (ref - d) >>> 0;
}

/** Templates whose state comes from an old (v0) message, or unknown protocols: 3 minutes. */
export const SYNC_DEFAULT_TIMEOUT_MS = 180_000;
/** ipvs keeps timeouts as jiffies in a long; ours is a u32 of ms: the largest value that fits. */
export const SYNC_MAX_TIMEOUT_S = Math.floor(0xffffffff / 1000);

/**
 * One connection as the sync protocol carries it (both wire versions decode to this). `flags`
 * are the flags to apply: for a received record already reduced as the version demands (v1:
 * BACKUP_MASK | SYNC; v0: all but HASHED, | SYNC); for a record to send, the entry's flags.
 */
export interface SyncConnRecord {
  af: 4 | 6;
  protocol: number;
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  /** v1 only (0 from v0 messages). */
  fwmark: number;
  /** Seconds; 0 from v0 messages (then the backup uses its own protocol timeout). */
  timeout: number;
  caddr: IpAddr;
  vaddr: IpAddr;
  daddr: IpAddr;
  inSeq?: SeqData;
  outSeq?: SeqData;
  peName?: string;
  peData?: Uint8Array;
}

/** struct ip_vs_seq (FTP NAT sequence adjustment). */
export interface SeqData {
  initSeq: number;
  delta: number;
  previousDelta: number;
}

/** What applySyncRecord did with a record (for counters and tests). */
export type SyncApplyResult = 'created' | 'updated' | 'stale' | 'replaced';

/** Number of states of a protocol the backup accepts, 0 when unsupported (ip_vs_proto_get). */
export function protocolStateCount(protocol: number): number {
  if (protocol === IPPROTO_TCP) return TCP_S_LAST;
  if (protocol === IPPROTO_UDP) return 1;
  if (protocol === IPPROTO_SCTP) return SCTP_S_LAST;
  return 0;
}

const TCP_SYNC_STATES = (1 << TCP_S_ESTABLISHED) | (1 << TCP_S_FIN_WAIT) | (1 << TCP_S_CLOSE) | (1 << TCP_S_CLOSE_WAIT) | (1 << TCP_S_TIME_WAIT);
const SCTP_SYNC_STATES = (1 << SCTP_S_ESTABLISHED) | (1 << SCTP_S_SHUTDOWN_SENT) | (1 << SCTP_S_SHUTDOWN_RECEIVED) | (1 << SCTP_S_SHUTDOWN_ACK_SENT) | (1 << SCTP_S_CLOSED);

/** TCP/SCTP states in which a master syncs at all (earlier states are too young to matter). */
export function syncState(protocol: number, state: number): boolean {
  if (state > 31) return false;
  if (protocol === IPPROTO_TCP) return ((TCP_SYNC_STATES >>> state) & 1) === 1;
  if (protocol === IPPROTO_SCTP) return ((SCTP_SYNC_STATES >>> state) & 1) === 1;
  return true;
}

/** The state a sync decision treats as "established" (a move to it is not forced). */
export function establishedState(protocol: number): number {
  return protocol === IPPROTO_SCTP ? SCTP_S_ESTABLISHED : TCP_S_ESTABLISHED;
}

export interface SyncRateParams {
  /** sync_threshold[0] and [1]. */
  threshold: number;
  period: number;
  /** sync_refresh_period, in jiffies. */
  refreshJ: number;
  /** sync_retries (0..3). */
  retries: number;
}

/**
 * The rate part of ip_vs_sync_conn_needed (after the state gate): the new sync_endtime to store
 * when the entry should be sent now, or -1 when not. All times are u32 jiffies and compared
 * with wrap-around, as the kernel's time_before() does. `n` is (now + timeout) rounded down
 * to 4 jiffies; its two low bits then count retries of an unchanged end time.
 */
export function syncRateDecision(nowJ: number, timeoutJ: number, orig: number, template: boolean, pkts: number, p: SyncRateParams): number {
  let n = ((nowJ + timeoutJ) & ~3) >>> 0;
  if (p.refreshJ > 0) {
    const diff = Math.abs((n - orig) | 0);
    const minDiff = Math.max(timeoutJ >>> 1, 10 * SYNC_HZ);
    // Below both the refresh period and half the timeout: the backup's copy is still fresh.
    if (diff < Math.min(p.refreshJ, minDiff)) {
      const retries = orig & 3;
      if (retries >= p.retries) return -1;
      if (((nowJ - ((orig - timeoutJ + (p.refreshJ >>> 3)) >>> 0)) | 0) < 0) return -1;
      n = (n | (retries + 1)) >>> 0;
    }
  }
  if (p.period > 0) {
    // Templates skip the packet count: they are resent whenever a controlled conn is.
    if (!template && pkts % p.period !== p.threshold) return -1;
  } else if (p.refreshJ === 0 && pkts !== p.threshold) {
    return -1;
  }
  return n;
}
