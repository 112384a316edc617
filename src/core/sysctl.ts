// The director's tunables: the kernel's /proc/sys/net/ipv4/vs/* with their defaults and the
// ranges the kernel enforces (spec ipvs-kernel.md §12).

import { fail } from './errors.js';

export interface Sysctls {
  amemthresh: number;
  am_droprate: number;
  drop_entry: number;
  drop_packet: number;
  secure_tcp: number;
  cache_bypass: number;
  expire_nodest_conn: number;
  expire_quiescent_template: number;
  sloppy_tcp: number;
  sloppy_sctp: number;
  conn_reuse_mode: number;
  schedule_icmp: number;
  ignore_tunneled: number;
  nat_icmp_send: number;
  pmtu_disc: number;
  snat_reroute: number;
  run_estimation: number;
  backup_only: number;
  conntrack: number;
  sync_version: number;
  sync_ports: number;
  sync_persist_mode: number;
  sync_qlen_max: number;
  sync_sock_size: number;
  /** [threshold, period] */
  sync_threshold: [number, number];
  sync_refresh_period: number;
  sync_retries: number;
  lblc_expiration: number;
  lblcr_expiration: number;
}

export function defaultSysctls(): Sysctls {
  return {
    amemthresh: 1024,
    am_droprate: 10,
    drop_entry: 0,
    drop_packet: 0,
    secure_tcp: 0,
    cache_bypass: 0,
    expire_nodest_conn: 0,
    expire_quiescent_template: 0,
    sloppy_tcp: 0,
    sloppy_sctp: 0,
    conn_reuse_mode: 1,
    schedule_icmp: 0,
    ignore_tunneled: 0,
    nat_icmp_send: 0,
    pmtu_disc: 1,
    snat_reroute: 1,
    run_estimation: 1,
    backup_only: 0,
    conntrack: 0,
    sync_version: 1,
    sync_ports: 1,
    sync_persist_mode: 0,
    sync_qlen_max: 4096,
    sync_sock_size: 0,
    sync_threshold: [3, 50],
    sync_refresh_period: 0,
    sync_retries: 0,
    lblc_expiration: 24 * 60 * 60,
    lblcr_expiration: 24 * 60 * 60,
  };
}

const BOOLEAN = ['cache_bypass', 'expire_nodest_conn', 'expire_quiescent_template', 'sloppy_tcp', 'sloppy_sctp', 'schedule_icmp', 'ignore_tunneled', 'nat_icmp_send', 'pmtu_disc', 'snat_reroute', 'run_estimation', 'backup_only', 'conntrack', 'sync_persist_mode'];

/** Validate and apply one sysctl; throws IpvsError(EINVAL) and changes nothing on bad input. */
export function setSysctl(s: Sysctls, name: string, value: unknown): void {
  if (!(name in s)) fail('ENOENT', `unknown sysctl ${name}`);
  const key = name as keyof Sysctls;
  if (key === 'sync_threshold') {
    const v = value as unknown[];
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && (x as number) >= 0)) fail('EINVAL', 'sync_threshold takes two integers: threshold period');
    const [t, p] = v as [number, number];
    if (p !== 0 && t >= p) fail('EINVAL', 'sync_threshold: threshold must be below period');
    s.sync_threshold = [t, p];
    return;
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) fail('EINVAL', `${name} takes an integer`);
  const v = value as number;
  const bad = () => fail('EINVAL', `invalid value ${v} for ${name}`);
  if (key === 'drop_entry' || key === 'drop_packet' || key === 'secure_tcp') {
    if (v < 0 || v > 3) bad();
  } else if (key === 'sync_version') {
    if (v !== 0 && v !== 1) bad();
  } else if (key === 'sync_ports') {
    if (v < 1 || (v & (v - 1)) !== 0) bad();
  } else if (key === 'sync_retries') {
    if (v < 0 || v > 3) bad();
  } else if (key === 'conn_reuse_mode') {
    if (v < 0) bad();
  } else if (BOOLEAN.includes(key)) {
    if (v < 0) bad();
  } else if (v < 0) {
    bad();
  }
  (s as unknown as Record<string, number>)[key] = v;
}
