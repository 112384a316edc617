// What the vsadm tests share: a real director behind LocalApi, a stand-in for vsd's sync-daemon
// control, a fixed name resolver (no lookups leave the test), a runner that captures stdout,
// stderr and the exit status, and an overlay that adds the counters and connection entries real
// traffic would have produced (for the golden cases recorded after traffic).

import type { ApplyReport, DesiredTable } from '../../../src/core/apply.js';
import '../../../src/core/schedulers/index.js';
import { ManualClock } from '../../../src/core/clock.js';
import { Director } from '../../../src/core/director.js';
import { fail } from '../../../src/core/errors.js';
import type { ConnInfo, DestInfo, DestSpec, InfoSnapshot, ServiceInfo, ServiceKeySpec, ServiceSpec, TimeoutsSpec } from '../../../src/core/model.js';
import type { DaemonInfo, DaemonSpec, IpvsApi } from '../../../src/control/ipvs-api.js';
import { LocalApi, type SyncControl } from '../../../src/control/local-api.js';
import { ServicesDb, StaticResolver } from '../../../src/cli/vsadm/names.js';
import { runVsadm } from '../../../src/cli/vsadm/run.js';

/** The lines of Debian's /etc/services (netbase) that the golden cases use. */
export const DEBIAN_SERVICES = `
domain		53/tcp				# Domain Name Server
domain		53/udp
http		80/tcp		www		# WorldWideWeb HTTP
https		443/tcp				# http protocol over TLS/SSL
https		443/udp				# HTTP/3
sip		5060/tcp			# Session Initiation Protocol
sip		5060/udp
mdns		5353/udp			# Multicast DNS
http-alt	8080/tcp	webcache	# WWW caching service
`;

/** No PTR records, like the VM the goldens were recorded on. */
export const testResolver = new StaticResolver(ServicesDb.fromText(DEBIAN_SERVICES));

/**
 * Stand-in for vsd's sync-daemon control, with the kernel's rules: a role runs once (EEXIST),
 * stopping a stopped role is ESRCH, and no daemon starts while a real server's family differs
 * from its service's (EINVAL, ipvs->mixed_address_family_dests).
 */
export class TestSync implements SyncControl {
  private readonly daemons = new Map<'master' | 'backup', DaemonInfo>();

  constructor(private readonly director: Director) {}

  start(d: DaemonSpec): void {
    for (const svc of this.director.table.services()) {
      for (const dest of svc.dests) if (dest.af !== svc.af) fail('EINVAL', 'Invalid argument');
    }
    if (this.daemons.has(d.state)) fail('EEXIST', 'Daemon has already run');
    const minLen = d.state === 'backup' ? 1024 : 1;
    this.daemons.set(d.state, {
      state: d.state,
      mcastIfn: d.mcastIfn,
      syncid: d.syncid,
      syncMaxlen: d.syncMaxlen ? Math.min(Math.max(d.syncMaxlen, minLen), 65507) : 1472,
      mcastGroup: d.mcastGroup ?? '224.0.0.81',
      mcastPort: d.mcastPort ?? 8848,
      mcastTtl: d.mcastTtl ?? 1,
    });
    this.director.table.syncRunning = true;
  }

  stop(state: 'master' | 'backup'): void {
    if (!this.daemons.delete(state)) fail('ESRCH', 'No daemon is running');
    this.director.table.syncRunning = this.daemons.size > 0;
  }

  list(): DaemonInfo[] {
    return [...this.daemons.values()];
  }
}

export function newApi(): { director: Director; api: LocalApi; clock: ManualClock } {
  const clock = new ManualClock(1_000_000);
  const director = new Director({ now: clock.now });
  return { director, api: new LocalApi(director, new TestSync(director)), clock };
}

export interface RunResult {
  out: string;
  err: string;
  status: number;
}

export async function vsadm(api: IpvsApi, args: string[], opts: { stdin?: string; argv0?: string } = {}): Promise<RunResult> {
  let out = '';
  let err = '';
  const status = await runVsadm(
    args,
    {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      stdin: opts.stdin ?? '',
      argv0: opts.argv0 ?? 'ipvsadm',
      resolver: testResolver,
    },
    api,
  );
  return { out, err, status };
}

type Five = [number, number, number, number, number];

export interface TrafficSnapshot {
  /** "tcp:198.18.0.1:80" → counters of the service */
  serviceStats: Record<string, Five>;
  serviceRates: Record<string, Five>;
  /** "tcp:198.18.0.1:80|198.19.0.2:80" → counters of the real server */
  destStats: Record<string, Five>;
  destRates: Record<string, Five>;
  /** "tcp:...|dest" → [active, inactive, persistent] */
  destConns: Record<string, [number, number, number]>;
  connections: ConnInfo[];
}

function svcKey(s: Pick<ServiceInfo, 'protocol' | 'addr' | 'port' | 'fwmark' | 'af'>): string {
  if (s.fwmark) return `fwm${s.af}:${s.fwmark >>> 0}`;
  const p = s.protocol === 17 ? 'udp' : s.protocol === 132 ? 'sctp' : 'tcp';
  return s.af === 6 ? `${p}:[${s.addr}]:${s.port}` : `${p}:${s.addr}:${s.port}`;
}

function destKey(d: Pick<DestInfo, 'af' | 'addr' | 'port'>): string {
  return d.af === 6 ? `[${d.addr}]:${d.port}` : `${d.addr}:${d.port}`;
}

const counters = (v: Five) => ({ conns: v[0], inpkts: v[1], outpkts: v[2], inbytes: v[3], outbytes: v[4] });
const rates = (v: Five) => ({ cps: v[0], inpps: v[1], outpps: v[2], inbps: v[3], outbps: v[4] });

/**
 * IpvsApi over another, adding the effects of traffic tsvs cannot replay in-process (the golden
 * run's SYN floods and UDP burst through the kernel): per-dest connection counts, counters,
 * rates, and the connection list. Zeroing and flushing clear what they clear in the kernel.
 */
export class TrafficOverlay implements IpvsApi {
  enabled = false;
  private zeroed = new Set<string>();
  private allZeroed = false;
  private flushed = false;

  constructor(
    private readonly inner: IpvsApi,
    private readonly snap: TrafficSnapshot,
  ) {}

  private patch(s: ServiceInfo): ServiceInfo {
    if (!this.enabled || this.flushed) return s;
    const k = svcKey(s);
    const statsGone = this.allZeroed || this.zeroed.has(k);
    const out: ServiceInfo = { ...s, dests: s.dests.map((d) => ({ ...d })) };
    if (!statsGone && this.snap.serviceStats[k]) out.stats = counters(this.snap.serviceStats[k]);
    if (!statsGone && this.snap.serviceRates[k]) out.rates = rates(this.snap.serviceRates[k]);
    for (const d of out.dests) {
      const dk = `${k}|${destKey(d)}`;
      const c = this.snap.destConns[dk];
      if (c) [d.activeConns, d.inactConns, d.persistConns] = c;
      if (!statsGone && this.snap.destStats[dk]) d.stats = counters(this.snap.destStats[dk]);
      if (!statsGone && this.snap.destRates[dk]) d.rates = rates(this.snap.destRates[dk]);
    }
    return out;
  }

  getInfo(): Promise<InfoSnapshot> {
    return this.inner.getInfo();
  }
  async getServices(): Promise<ServiceInfo[]> {
    return (await this.inner.getServices()).map((s) => this.patch(s));
  }
  async getService(key: ServiceKeySpec): Promise<ServiceInfo> {
    return this.patch(await this.inner.getService(key));
  }
  addService(s: ServiceSpec): Promise<void> {
    return this.inner.addService(s);
  }
  editService(s: ServiceSpec): Promise<void> {
    return this.inner.editService(s);
  }
  delService(key: ServiceKeySpec): Promise<void> {
    return this.inner.delService(key);
  }
  async flush(): Promise<void> {
    await this.inner.flush();
    if (this.enabled) this.flushed = true;
  }
  addDest(svc: ServiceKeySpec, d: DestSpec): Promise<void> {
    return this.inner.addDest(svc, d);
  }
  editDest(svc: ServiceKeySpec, d: DestSpec): Promise<void> {
    return this.inner.editDest(svc, d);
  }
  delDest(svc: ServiceKeySpec, d: Pick<DestSpec, 'af' | 'addr' | 'port'>): Promise<void> {
    return this.inner.delDest(svc, d);
  }
  async zero(key?: ServiceKeySpec): Promise<void> {
    await this.inner.zero(key);
    if (key) this.zeroed.add(svcKey(key));
    else this.allZeroed = true;
  }
  setTimeouts(t: TimeoutsSpec): Promise<void> {
    return this.inner.setTimeouts(t);
  }
  applyTable(t: DesiredTable): Promise<ApplyReport> {
    return this.inner.applyTable(t);
  }
  getTimeouts(): Promise<TimeoutsSpec> {
    return this.inner.getTimeouts();
  }
  startDaemon(d: DaemonSpec): Promise<void> {
    return this.inner.startDaemon(d);
  }
  stopDaemon(state: 'master' | 'backup'): Promise<void> {
    return this.inner.stopDaemon(state);
  }
  getDaemons(): Promise<DaemonInfo[]> {
    return this.inner.getDaemons();
  }
  async getConnections(): Promise<ConnInfo[]> {
    if (this.enabled && !this.flushed) return this.snap.connections.map((c) => ({ ...c }));
    return this.inner.getConnections();
  }
}

/** A connection entry as /proc/net/ip_vs_conn shows it, for injected snapshots. */
export function conn(
  protocol: number,
  state: string,
  expiresSec: number,
  client: [string, number],
  virt: [string, number],
  dest: [string, number],
  extra: Partial<ConnInfo> = {},
): ConnInfo {
  const af = client[0].includes(':') ? 6 : 4;
  return {
    af,
    protocol,
    caddr: client[0],
    cport: client[1],
    vaddr: virt[0],
    vport: virt[1],
    daddr: dest[0],
    dport: dest[1],
    daf: dest[0].includes(':') ? 6 : 4,
    fwmark: 0,
    flags: 0,
    state,
    expiresMs: expiresSec * 1000 + 400,
    timeout: 60,
    peName: '',
    peData: '',
    ...extra,
  };
}
