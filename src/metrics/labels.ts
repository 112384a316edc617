// Label values as node_exporter's IPVS collector produces them from /proc/net/ip_vs, so that
// series from tsvs and from node_exporter on a kernel director are the same series:
//   proto          TCP, UDP (SCTP too: node_exporter skips SCTP lines, tsvs names them), FWM
//   local_address  the virtual IP as Go's net.IP.String() prints it; "" for fwmark services
//   local_port     decimal; "0" for fwmark services
//   local_mark     the kernel's %08X of the mark ("00000001"); "" for address services
//   remote_*       the real server, same rules

import { compressV6Groups, IpAddr } from '../core/addr.js';
import type { DestInfo, ServiceInfo } from '../core/model.js';
import { hex8 } from './proc-format.js';

/** node_exporter's backend labels, in its canonical order. */
export const BACKEND_LABELS = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark'] as const;
export type BackendLabel = (typeof BACKEND_LABELS)[number];

/**
 * `--collector.ipvs.backend-labels`: keep the canonical order whatever order is given; unknown
 * names are refused with node_exporter's message.
 */
export function parseBackendLabels(names: readonly string[]): BackendLabel[] {
  const wanted = new Set(names.filter((n) => n !== ''));
  const out = BACKEND_LABELS.filter((l) => wanted.delete(l));
  if (wanted.size) throw new Error(`unknown IPVS backend labels: "${[...wanted].sort().join(', ')}"`);
  return out;
}

/** Go's net.IP.String(): IPv4 (and IPv4-mapped IPv6) dotted, other IPv6 RFC 5952 lower case. */
export function goIpString(text: string): string {
  const a = IpAddr.tryParse(text);
  if (!a) return text;
  if (a.family === 4) return a.toString();
  if (a.w0 === 0 && a.w1 === 0 && a.w2 === 0xffff) return IpAddr.v4(a.w3).toString();
  return compressV6Groups([a.w0 >>> 16, a.w0 & 0xffff, a.w1 >>> 16, a.w1 & 0xffff, a.w2 >>> 16, a.w2 & 0xffff, a.w3 >>> 16, a.w3 & 0xffff]);
}

export function protoLabel(s: Pick<ServiceInfo, 'protocol' | 'fwmark'>): string {
  if (s.fwmark) return 'FWM';
  return s.protocol === 17 ? 'UDP' : s.protocol === 132 ? 'SCTP' : s.protocol === 6 ? 'TCP' : `IP_${s.protocol}`;
}

/** The service's labels, keys in alphabetical order (the order node_exporter prints). */
export function serviceLabels(s: Pick<ServiceInfo, 'protocol' | 'fwmark' | 'addr' | 'port'>): Record<string, string> {
  return {
    local_address: s.fwmark ? '' : goIpString(s.addr),
    local_mark: s.fwmark ? hex8(s.fwmark) : '',
    local_port: s.fwmark ? '0' : String(s.port),
    proto: protoLabel(s),
  };
}

/** Service and real-server labels, alphabetical. */
export function backendLabels(s: Pick<ServiceInfo, 'protocol' | 'fwmark' | 'addr' | 'port'>, d: Pick<DestInfo, 'addr' | 'port'>): Record<string, string> {
  return { ...serviceLabels(s), remote_address: goIpString(d.addr), remote_port: String(d.port) };
}

/** The key tsvs uses for a service elsewhere (Service.key): "tcp:10.0.0.1:80", "fwm4:1". */
export function serviceKeyOf(s: Pick<ServiceInfo, 'af' | 'protocol' | 'fwmark' | 'addr' | 'port'>): string {
  if (s.fwmark) return `fwm${s.af}:${s.fwmark >>> 0}`;
  const p = s.protocol === 17 ? 'udp' : s.protocol === 132 ? 'sctp' : 'tcp';
  return s.af === 6 ? `${p}:[${s.addr}]:${s.port}` : `${p}:${s.addr}:${s.port}`;
}
