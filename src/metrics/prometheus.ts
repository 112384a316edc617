// The Prometheus exposition of a director: node_exporter's IPVS metrics under their exact names,
// labels and types (spec ipvsadm-keepalived.md §5), so dashboards and alerts written for a
// kernel director work unchanged, plus tsvs's own under tsvs_ (docs/observability.md lists
// them). Values are read from one snapshot per scrape; prom-client formats the text.

import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { VERSION } from '../version.js';
import { destHealth } from './health.js';
import { BACKEND_LABELS, type BackendLabel, backendLabels, serviceLabels } from './labels.js';
import type { MetricsSnapshot } from './source.js';

type Labels = Record<string, string>;
type Sample = [Labels, number];

const SVC_LABELS = ['local_address', 'local_mark', 'local_port', 'proto'];
const DEST_LABELS = [...SVC_LABELS, 'remote_address', 'remote_port'];

export interface PromExporterOptions {
  /** node_exporter's --collector.ipvs.backend-labels (canonical order enforced); default all six. */
  backendLabels?: readonly BackendLabel[];
  /** Node's process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

export class PromExporter {
  readonly registry = new Registry();
  private snap: MetricsSnapshot | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly backendLabelNames: BackendLabel[];

  constructor(opts: PromExporterOptions = {}) {
    this.backendLabelNames = [...(opts.backendLabels ?? BACKEND_LABELS)];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.defineNodeExporterMetrics();
    this.defineTsvsMetrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for one snapshot. Scrapes are serialised: each sees its own snapshot. */
  render(snap: MetricsSnapshot): Promise<string> {
    const run = this.queue.then(async () => {
      this.snap = snap;
      try {
        return await this.registry.metrics();
      } finally {
        this.snap = null;
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private gauge(name: string, help: string, labelNames: string[], samples: (s: MetricsSnapshot) => Sample[]): void {
    const self = this;
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        if (!self.snap) return;
        for (const [l, v] of samples(self.snap)) {
          if (labelNames.length) this.set(l, v);
          else this.set(v);
        }
      },
    });
  }

  private counter(name: string, help: string, labelNames: string[], samples: (s: MetricsSnapshot) => Sample[]): void {
    const self = this;
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        if (!self.snap) return;
        for (const [l, v] of samples(self.snap)) {
          // counters can go down after `ipvsadm -Z`; Prometheus reads that as a counter reset
          const x = Math.max(0, v);
          if (labelNames.length) this.inc(l, x);
          else this.inc(x);
        }
      },
    });
  }

  // ---- node_exporter's ipvs collector ---------------------------------------------------

  private defineNodeExporterMetrics(): void {
    const totals: [string, string, 'conns' | 'inpkts' | 'outpkts' | 'inbytes' | 'outbytes'][] = [
      ['node_ipvs_connections_total', 'The total number of connections made.', 'conns'],
      ['node_ipvs_incoming_packets_total', 'The total number of incoming packets.', 'inpkts'],
      ['node_ipvs_outgoing_packets_total', 'The total number of outgoing packets.', 'outpkts'],
      ['node_ipvs_incoming_bytes_total', 'The total amount of incoming data.', 'inbytes'],
      ['node_ipvs_outgoing_bytes_total', 'The total amount of outgoing data.', 'outbytes'],
    ];
    for (const [name, help, k] of totals) this.counter(name, help, [], (s) => [[{}, s.totals.stats[k]]]);

    const names = [...this.backendLabelNames].sort();
    const perBackend: [string, string, 'active' | 'inactive' | 'weight'][] = [
      ['node_ipvs_backend_connections_active', 'The current active connections by local and remote address.', 'active'],
      ['node_ipvs_backend_connections_inactive', 'The current inactive connections by local and remote address.', 'inactive'],
      ['node_ipvs_backend_weight', 'The current backend weight by local and remote address.', 'weight'],
    ];
    for (const [name, help, k] of perBackend) this.gauge(name, help, names, (s) => this.backendSums(s).map(([l, v]) => [l, v[k]]));
  }

  /** Backends with the chosen labels; those left with identical labels are summed (node_exporter). */
  private backendSums(s: MetricsSnapshot): [Labels, { active: number; inactive: number; weight: number }][] {
    const sums = new Map<string, [Labels, { active: number; inactive: number; weight: number }]>();
    const keep = [...this.backendLabelNames].sort();
    for (const svc of s.services) {
      for (const d of svc.dests) {
        const all = backendLabels(svc, d);
        const l: Labels = {};
        for (const k of keep) l[k] = all[k]!;
        const key = keep.map((k) => l[k]).join('\u0000');
        let e = sums.get(key);
        if (!e) sums.set(key, (e = [l, { active: 0, inactive: 0, weight: 0 }]));
        e[1].active += d.activeConns;
        e[1].inactive += d.inactConns;
        e[1].weight += d.weight;
      }
    }
    return [...sums.values()];
  }

  // ---- tsvs's own -------------------------------------------------------------------------

  private defineTsvsMetrics(): void {
    this.gauge('tsvs_build_info', 'tsvs version (value 1).', ['version'], () => [[{ version: VERSION }, 1]]);
    this.gauge('tsvs_services', 'Virtual services in the table.', [], (s) => [[{}, s.services.length]]);
    this.gauge('tsvs_backends', 'Real servers in the table.', [], (s) => [[{}, s.services.reduce((n, x) => n + x.dests.length, 0)]]);

    const rates: [string, string, 'cps' | 'inpps' | 'outpps' | 'inbps' | 'outbps'][] = [
      ['connections_per_second', 'connections per second', 'cps'],
      ['incoming_packets_per_second', 'incoming packets per second', 'inpps'],
      ['outgoing_packets_per_second', 'outgoing packets per second', 'outpps'],
      ['incoming_bytes_per_second', 'incoming bytes per second', 'inbps'],
      ['outgoing_bytes_per_second', 'outgoing bytes per second', 'outbps'],
    ];
    const counters: [string, string, 'conns' | 'inpkts' | 'outpkts' | 'inbytes' | 'outbytes'][] = [
      ['connections_total', 'connections scheduled', 'conns'],
      ['incoming_packets_total', 'incoming packets', 'inpkts'],
      ['outgoing_packets_total', 'outgoing packets', 'outpkts'],
      ['incoming_bytes_total', 'incoming bytes', 'inbytes'],
      ['outgoing_bytes_total', 'outgoing bytes', 'outbytes'],
    ];
    const EST = 'estimated by IPVS’s 2-second estimator, as ipvsadm --rate shows it';
    for (const [n, h, k] of rates) this.gauge(`tsvs_${n}`, `All services: ${h}, ${EST}.`, [], (s) => [[{}, s.totals.rates[k]]]);

    for (const [n, h, k] of counters) this.counter(`tsvs_service_${n}`, `Per virtual service: ${h} (ipvsadm --stats).`, SVC_LABELS, (s) => s.services.map((x) => [serviceLabels(x), x.stats[k]]));
    for (const [n, h, k] of rates) this.gauge(`tsvs_service_${n}`, `Per virtual service: ${h}, ${EST}.`, SVC_LABELS, (s) => s.services.map((x) => [serviceLabels(x), x.rates[k]]));
    this.gauge('tsvs_service_backends', 'Real servers of the virtual service.', SVC_LABELS, (s) => s.services.map((x) => [serviceLabels(x), x.dests.length]));
    this.gauge('tsvs_service_served', '1 when a running data plane carries the service, 0 when none can.', SVC_LABELS, (s) =>
      s.services.filter((x) => x.servedBy).map((x) => [serviceLabels(x), x.servedBy!.length > 0 ? 1 : 0]),
    );

    const dests = (s: MetricsSnapshot) => s.services.flatMap((x) => x.dests.map((d) => ({ svc: x, d, labels: backendLabels(x, d) })));
    for (const [n, h, k] of counters) this.counter(`tsvs_backend_${n}`, `Per real server: ${h} (ipvsadm --stats).`, DEST_LABELS, (s) => dests(s).map((e) => [e.labels, e.d.stats[k]]));
    for (const [n, h, k] of rates) this.gauge(`tsvs_backend_${n}`, `Per real server: ${h}, ${EST}.`, DEST_LABELS, (s) => dests(s).map((e) => [e.labels, e.d.rates[k]]));
    this.gauge('tsvs_backend_connections_persistent', 'Persistence templates pointing at the real server.', DEST_LABELS, (s) => dests(s).map((e) => [e.labels, e.d.persistConns]));
    this.gauge('tsvs_backend_overloaded', '1 while the real server is over its upper connection threshold (-x).', DEST_LABELS, (s) => dests(s).map((e) => [e.labels, e.d.flags & 2 ? 1 : 0]));
    this.gauge('tsvs_backend_upper_threshold_connections', 'Upper connection threshold (-x); 0 is none.', DEST_LABELS, (s) => dests(s).map((e) => [e.labels, e.d.uThreshold]));
    this.gauge('tsvs_backend_lower_threshold_connections', 'Lower connection threshold (-y); 0 is none.', DEST_LABELS, (s) => dests(s).map((e) => [e.labels, e.d.lThreshold]));
    this.gauge('tsvs_backend_up', 'Health checks of the real server pass (1) or fail (0); absent when it is not checked.', DEST_LABELS, (s) =>
      dests(s).flatMap((e) => {
        const h = destHealth(e.d);
        return h.up === undefined ? [] : [[e.labels, h.up ? 1 : 0] as Sample];
      }),
    );
    this.gauge('tsvs_backend_health_state', 'The health checker’s state of the real server (value 1).', [...DEST_LABELS, 'state'], (s) =>
      dests(s).flatMap((e) => {
        const h = destHealth(e.d);
        return h.state === undefined ? [] : [[{ ...e.labels, state: h.state }, 1] as Sample];
      }),
    );
    this.gauge('tsvs_backend_configured_weight', 'The weight the configuration gives; node_ipvs_backend_weight is the weight in effect (dynamic weights, drain).', DEST_LABELS, (s) =>
      dests(s).flatMap((e) => {
        const h = destHealth(e.d);
        return h.configuredWeight === undefined ? [] : [[e.labels, h.configuredWeight] as Sample];
      }),
    );

    this.gauge('tsvs_connection_table_entries', 'Entries in the connection table (connections and persistence templates).', [], (s) => [[{}, s.table.entries]]);
    this.gauge('tsvs_connection_table_capacity', 'Entries the connection table has room for before it grows.', [], (s) => [[{}, s.table.capacity]]);
    this.gauge('tsvs_connection_table_memory_bytes', 'Bytes held by the connection table.', [], (s) => [[{}, s.table.bytes]]);
    this.gauge('tsvs_connection_table_hash_size', 'Connection hash size as ipvsadm reports it (size=…).', [], (s) => [[{}, s.table.hashSize]]);
    this.gauge('tsvs_connection_entries', 'Connection-table entries by protocol and state; kind "template" for persistence templates.', ['kind', 'proto', 'state'], (s) =>
      s.connStates.map((c) => [{ kind: c.kind, proto: c.proto, state: c.state }, c.count]),
    );
    this.gauge('tsvs_defense_active', '1 while a DoS defense strategy is in effect (drop_entry, drop_packet, secure_tcp at 2 or 3).', ['strategy'], (s) =>
      ['drop_entry', 'drop_packet', 'secure_tcp'].map((k) => {
        const v = Number(s.sysctl[k] ?? 0);
        return [{ strategy: k }, v >= 2 ? 1 : 0] as Sample;
      }),
    );

    this.counter('tsvs_drops_total', 'Packets and entries the core refused, by reason: noDest (no real server, ICMP unreachable), dropPacket (drop_packet defense), destUnavailable (real server deleted), dropEntry (drop_entry defense), nodestFlush (expire_nodest_conn).', ['reason'], (s) =>
      Object.entries(s.drops).map(([reason, v]) => [{ reason }, v] as Sample),
    );

    // Data-plane counters, read from DataPlane.status() by convention (docs/observability.md)
    const planeRecord = (field: string, label: string) => (s: MetricsSnapshot) =>
      Object.entries(s.planes).flatMap(([plane, st]) => numericEntries(st?.[field]).map(([k, v]) => [{ plane, [label]: k }, v] as Sample));
    this.counter('tsvs_plane_drops_total', 'Packets or connections a data plane dropped, by reason.', ['plane', 'reason'], planeRecord('drops', 'reason'));
    this.counter('tsvs_plane_packets_total', 'Packets a data plane handled, by direction.', ['direction', 'plane'], planeRecord('packets', 'direction'));
    this.counter('tsvs_plane_bytes_total', 'Bytes a data plane handled, by direction.', ['direction', 'plane'], planeRecord('bytes', 'direction'));
    this.counter('tsvs_plane_errors_total', 'Errors a data plane met, by kind.', ['kind', 'plane'], planeRecord('errors', 'kind'));
    this.gauge('tsvs_plane_status_value', 'Every other number a data plane reports in its status (name is the dotted path).', ['name', 'plane'], (s) =>
      Object.entries(s.planes).flatMap(([plane, st]) => flattenNumbers(st, '', RESERVED).map(([name, v]) => [{ name, plane }, v] as Sample)),
    );
  }
}

const RESERVED = new Set(['drops', 'packets', 'bytes', 'errors']);

function numericEntries(v: unknown): [string, number][] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
  return Object.entries(v as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
}

/** Numeric leaves of a status object as "a.b.c" paths (booleans as 0/1), skipping `skip` at the top. */
export function flattenNumbers(v: unknown, prefix: string, skip?: Set<string>): [string, number][] {
  if (typeof v === 'number') return Number.isFinite(v) && prefix ? [[prefix, v]] : [];
  if (typeof v === 'boolean') return prefix ? [[prefix, v ? 1 : 0]] : [];
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
  const out: [string, number][] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!prefix && skip?.has(k)) continue;
    out.push(...flattenNumbers(x, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}
