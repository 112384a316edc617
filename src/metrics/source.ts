// What the metrics endpoint and the dashboard read from a running vsd. The service table comes
// through vsd's own control socket (getServices), as vsadm reads it, because that reply carries
// what other extensions add per real server (health state, weight reasons); totals, the
// connection table and the planes' counters are read in-process.

import { ControlClient } from '../control/client.js';
import type { Director } from '../core/director.js';
import type { DestInfo, ServiceInfo } from '../core/model.js';
import type { CounterValues, RateValues } from '../core/stats.js';

export type AnnotatedDest = DestInfo & Record<string, unknown>;
export type AnnotatedService = Omit<ServiceInfo, 'dests'> & { dests: AnnotatedDest[]; servedBy?: string[]; unserved?: string };

export interface ConnStateCount {
  proto: string;
  state: string;
  kind: 'connection' | 'template';
  count: number;
}

export interface MetricsSnapshot {
  services: AnnotatedService[];
  totals: { stats: CounterValues; rates: RateValues };
  table: { entries: number; capacity: number; bytes: number; hashSize: number };
  connStates: ConnStateCount[];
  planes: Record<string, Record<string, unknown>>;
  sysctl: Record<string, unknown>;
  /** The core's refusals by reason (Director.drops). */
  drops: Record<string, number>;
}

/** The parts of Vsd this module uses (a structural type keeps tests free to fake it). */
export interface VsdLike {
  readonly director: Director;
  status(): Record<string, unknown>;
}

export class VsdSource {
  private client: ControlClient | null = null;
  private connecting: Promise<ControlClient> | null = null;
  private readonly socketPath: string | undefined;

  constructor(private readonly vsd: VsdLike) {
    const s = vsd.status().socket;
    this.socketPath = typeof s === 'string' ? s : undefined;
  }

  get director(): Director {
    return this.vsd.director;
  }

  private async connection(): Promise<ControlClient | null> {
    if (!this.socketPath) return null;
    if (this.client) return this.client;
    this.connecting ??= ControlClient.connect(this.socketPath).finally(() => {
      this.connecting = null;
    });
    this.client = await this.connecting;
    return this.client;
  }

  /** One control API call through vsd's socket, reconnecting once if the socket went away. */
  async call<T>(op: string, ...args: unknown[]): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.connection();
      if (!c) throw new Error('vsd has no control socket');
      try {
        return await c.call<T>(op, ...args);
      } catch (e) {
        if ((e as Error).name === 'DaemonUnavailable' && attempt === 0) {
          this.client?.close();
          this.client = null;
          continue;
        }
        throw e;
      }
    }
  }

  /** Services with the extensions' per-dest annotations; the bare table if the socket fails. */
  async services(): Promise<AnnotatedService[]> {
    try {
      return await this.call<AnnotatedService[]>('getServices');
    } catch {
      return this.vsd.director.serviceInfos() as AnnotatedService[];
    }
  }

  /** Planes' status objects (DataPlane.status()), by plane name. */
  planes(): Record<string, Record<string, unknown>> {
    const p = this.vsd.status().planes;
    return p && typeof p === 'object' ? (p as Record<string, Record<string, unknown>>) : {};
  }

  async snapshot(): Promise<MetricsSnapshot> {
    const services = await this.services();
    const d = this.vsd.director;
    return {
      services,
      totals: { stats: d.totalStats.counters(), rates: d.totalStats.rates() },
      table: { entries: d.conns.count, capacity: d.conns.capacity, bytes: d.conns.byteSize, hashSize: d.connTabSize },
      connStates: countConnStates(d),
      planes: this.planes(),
      sysctl: { ...d.sysctl },
      drops: { ...d.drops },
    };
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }
}

const TEMPLATE = 0x1000; // IP_VS_CONN_F_TEMPLATE

/**
 * Entries by protocol and state. One pass over the typed columns, grouping by the raw
 * (protocol, state, template) bytes; the state name is asked once per group.
 */
export function countConnStates(d: Director): ConnStateCount[] {
  const c = d.conns;
  const groups = new Map<number, { first: number; count: number }>();
  for (let i = 0; i < c.high; i++) {
    if (c.af[i] === 0) continue;
    const key = c.protocol[i]! * 1024 + (c.flags[i]! & TEMPLATE ? 512 : 0) + c.state[i]!;
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { first: i, count: 1 });
  }
  const out: ConnStateCount[] = [];
  for (const [key, g] of groups) {
    const proto = key >> 10;
    out.push({
      proto: proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 132 ? 'SCTP' : proto === 0 ? 'IP' : `IP_${proto}`,
      state: d.stateName(g.first),
      kind: key & 512 ? 'template' : 'connection',
      count: g.count,
    });
  }
  return out;
}
