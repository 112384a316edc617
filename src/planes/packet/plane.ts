// The packet data plane: vsd's DataPlane for services whose real servers are reached by NAT
// (-m), direct routing (-g) or tunneling (-i), carried frame by frame on the director's
// interfaces exactly as IPVS carries them. Linux, root (CAP_NET_ADMIN, CAP_NET_RAW).
//
//   const plane = new PacketPlane(director, { interfaces: ['eth0'] });
//   await plane.start();   // nft guard, routes, neighbours, rings; follows every table change
//   plane.served();        // service keys it carries
//   await plane.close();   // rings closed, guard removed
//
// With `virtualPaths` it also carries health checks via: virtual to the one real server each
// checks (virtual-paths.ts), through a veth pair of its own attached as one more port.
//
// Two modes (docs/planes.md): "single" runs everything in this thread, a batch per ring
// wakeup; "threads" runs worker threads that own fanout rings and the codec work and ask this
// thread, which owns the Director, about each chunk of packets through shared memory.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { AddrWords, PacketInfo } from '../../codec/index.js';
import { ETH_P_ARP } from '../../codec/index.js';
import type { DataPlane, ServiceCoverage } from '../../control/plane.js';
import { IpAddr } from '../../core/addr.js';
import { FWD_MASK } from '../../core/constants.js';
import type { Director } from '../../core/director.js';
import type { Service } from '../../core/service.js';
import { CoreServer } from './core-server.js';
import { C, newCounters, summarize } from './counters.js';
import { Engine, type EnginePort } from './engine.js';
import { type FramePort, frameIoAvailable, openFramePort } from './frame-io.js';
import { HostTools } from './host-tools.js';
import { NeighbourCache, NextHops } from './neighbours.js';
import { NftGuard } from './nft-guard.js';
import { HostRoutes } from './routes.js';
import { buildServedData, carries, type MarkRule, packetMethod, ServedIndex } from './served.js';
import { ThreadedEngines } from './threads.js';
import { VIRTUAL_PATHS_DEFAULTS, VirtualPaths, type VirtualPathsConfig } from './virtual-paths.js';
import { registerVirtualPathProvider, virtualPathProvider } from '../../health/via-virtual.js';

/** The part of a pino logger the plane uses. */
export interface PlaneLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PacketPlaneOptions {
  /** Interfaces to attach to (the director's client and server sides). */
  interfaces: string[];
  /** Run against this network namespace (a name under /run/netns): tests and benchmarks. */
  netns?: string;
  /** "single" (default): one thread. "threads": workers own the rings (PACKET_FANOUT). */
  mode?: 'single' | 'threads';
  /** Workers in threads mode (default: the CPU count). */
  threads?: number;
  /** Firewall-mark rules for fwmark services. */
  fwmarks?: MarkRule[];
  /** Answer ARP / neighbour solicitations for VIPs the host has not configured (default true). */
  answerArp?: boolean;
  /** Install the nftables guard (default true). */
  guard?: boolean;
  /** Re-read routes, addresses and the kernel's neighbours this often (ms, default 2000). */
  routeRefreshMs?: number;
  /** Receive ring block timeout (ms, default 1). */
  rxBlockTimeoutMs?: number;
  logger?: PlaneLogger;
  /** Already opened ports, one per interface, in order (tests with memory ports): no root needed. */
  ports?: FramePort[];
  /** Routes to use instead of reading the host's (tests); not refreshed. */
  routes?: HostRoutes;
  /**
   * Health checks `via: virtual` (virtual-paths.ts): the probe pair, its policy routing and the
   * probe sources; registered as the VirtualPathProvider while the plane runs. Off unless given
   * (vsd turns it on by default). Not with `netns` (the probes must start in this namespace);
   * with injected ports, the last port is the pair's (no host side).
   */
  virtualPaths?: Partial<VirtualPathsConfig> | false;
}

/** Bytes of headroom in front of each received frame: the largest tunnel header (IPv6 + GUE + option) and then some. */
export const RX_HEADROOM = 64;

export const PRIVILEGE_ERROR = 'the packet plane needs root (CAP_NET_ADMIN, CAP_NET_RAW)';

/** Whether this process has CAP_NET_ADMIN and CAP_NET_RAW (effective). */
export function hasPacketPrivileges(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return process.getuid?.() === 0;
    const caps = BigInt(`0x${m[1]}`);
    return (caps & (1n << 12n)) !== 0n && (caps & (1n << 13n)) !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}

export class PacketPlane implements DataPlane {
  readonly name = 'packet';
  private readonly o: PacketPlaneOptions;
  private readonly tools: HostTools;
  readonly routes: HostRoutes;
  private readonly guard: NftGuard;
  private readonly marks: MarkRule[];
  private ports: FramePort[] = [];
  private enginePorts: EnginePort[] = [];
  private engine: Engine | null = null;
  private threaded: ThreadedEngines | null = null;
  private coreServer: CoreServer | null = null;
  neighbours: NeighbourCache | null = null;
  private nexthops: NextHops | null = null;
  private readonly counters = newCounters(true);
  private index = new ServedIndex(buildServedData([], [], [], () => false));
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;
  private rebuildQueued = false;
  private refreshing = false;
  private started = false;
  private closed = false;
  private accepting = true;
  private readonly mode: 'single' | 'threads';
  /** The attached interfaces: the configured ones, then the probe pair's plane side. */
  private ifaces: string[] = [];
  private vpaths: VirtualPaths | null = null;

  constructor(
    private readonly director: Director,
    opts: PacketPlaneOptions,
  ) {
    this.o = opts;
    this.tools = new HostTools(opts.netns);
    this.routes = opts.routes ?? new HostRoutes(this.tools);
    this.guard = new NftGuard(this.tools);
    this.marks = opts.fwmarks ?? [];
    this.mode = opts.mode ?? 'single';
    if (opts.virtualPaths && !opts.netns) {
      this.vpaths = new VirtualPaths({
        director,
        config: { ...VIRTUAL_PATHS_DEFAULTS, ...opts.virtualPaths },
        tools: opts.ports ? null : this.tools,
        isLocal: (a) => this.routes.isLocalAddr(a),
      });
    }
  }

  /** The health-check paths (via: virtual), when on. */
  get virtualPaths(): VirtualPaths | null {
    return this.vpaths;
  }

  /** Whether this plane carries a service (vsd hands it no other plane then). */
  carries(svc: Service): boolean {
    return carries(svc, this.marks).ok;
  }

  async start(): Promise<void> {
    if (this.started) return;
    const injected = this.o.ports !== undefined;
    if (!injected) {
      if (!hasPacketPrivileges()) throw new Error(PRIVILEGE_ERROR);
      const fio = frameIoAvailable();
      if (!fio.ok) throw new Error(`the packet plane cannot run: ${fio.reason}`);
    }
    if (this.o.interfaces.length === 0) throw new Error('the packet plane needs at least one interface');
    if (!this.o.routes) this.routes.refreshSync();
    for (const name of this.o.interfaces) {
      if (!injected && !this.routes.interfaces.has(name)) throw new Error(`packet plane: no interface ${name}${this.o.netns ? ` in namespace ${this.o.netns}` : ''}`);
    }
    if (this.o.virtualPaths && this.o.netns) this.o.logger?.warn({ netns: this.o.netns }, 'health checks via: virtual need the packet plane in this process\'s network namespace: not provided');
    this.ifaces = [...this.o.interfaces];
    let data: ReturnType<PacketPlane['servedData']>;
    try {
      const vp = this.vpaths;
      if (vp) {
        if (injected && this.o.ports!.length !== this.o.interfaces.length + 1) throw new Error('virtual paths on injected ports: give the pair\'s port last');
        if (!injected) {
          const mtu = Math.max(...this.o.interfaces.map((n) => this.routes.interfaces.get(n)?.mtu || 1500));
          let r: { stalePid?: number };
          try {
            r = vp.setupHost(mtu);
          } catch (e) {
            throw new Error(`health checks via: virtual: ${(e as Error).message} (or turn them off: packet.virtualPaths: false)`);
          }
          if (r.stalePid !== undefined) this.o.logger?.warn({ pid: r.stalePid }, 'removed the probe pair, rules and table left by a previous packet plane');
          if (!this.o.routes) this.routes.refreshSync();
        }
        this.ifaces.push(vp.planeDev);
        vp.port = this.ifaces.length - 1;
      }
      data = this.servedData();
      if (this.o.guard !== false && !injected) {
        const r = this.guard.install(data);
        if (r.stalePid !== undefined) this.o.logger?.warn({ pid: r.stalePid }, 'removed the nftables guard left by a previous packet plane');
      }
      this.openPorts(injected);
      this.setup();
      // The workers start with the table as it is (a first probe may come at once).
      this.threaded?.setServed(data);
      await this.threaded?.start();
    } catch (e) {
      this.teardown();
      throw e;
    }
    this.started = true;
    this.applyServed(data);
    this.unsubscribe = this.director.onChange(() => this.queueRebuild());
    if (this.vpaths && !injected) registerVirtualPathProvider(this.vpaths);
    this.o.logger?.info({ interfaces: this.o.interfaces, mode: this.mode, netns: this.o.netns, ...(this.vpaths ? { virtualPaths: this.vpaths.planeDev } : {}) }, 'packet plane attached');
  }

  private openPorts(injected: boolean): void {
    if (injected) {
      this.ports = this.o.ports!;
    } else if (this.mode === 'single') {
      this.ports = this.ifaces.map((ifname) =>
        openFramePort({
          ifname,
          ...(this.o.netns ? { netns: this.o.netns } : {}),
          headroom: RX_HEADROOM,
          rxBlockTimeoutMs: this.o.rxBlockTimeoutMs ?? 1,
          txFrameCount: 4096,
          txFrameSize: txFrameSize(this.routes.interfaces.get(ifname)?.mtu ?? 1500),
        }),
      );
    } else {
      // Threads mode: the rings are the workers'; this thread only sends its own frames (ARP, ND).
      this.ports = this.ifaces.map((ifname) => openFramePort({ ifname, ...(this.o.netns ? { netns: this.o.netns } : {}), rx: false, txFrameCount: 256 }));
    }
    this.enginePorts = this.ports.map((port, index) => ({
      index,
      port,
      mac: new Uint8Array(port.mac),
      mtu: port.mtu,
      headroom: injected ? 0 : RX_HEADROOM,
      addr4: null,
      addr6: null,
    }));
    this.updatePortAddresses();
  }

  private setup(): void {
    const threads = this.mode === 'threads';
    this.nexthops = threads ? NextHops.shared() : new NextHops();
    const send = (port: number, frame: Uint8Array, len: number): void => {
      if (this.engine) this.engine.emit(port, frame, 0, len);
      else this.ports[port]?.sendFrame(frame.subarray(0, len));
      this.counters[C.ANSWERS]++;
    };
    this.neighbours = new NeighbourCache({
      nexthops: this.nexthops,
      ports: this.enginePorts.map((p) => ({ index: p.index, name: this.ifaces[p.index]!, mac: p.mac })),
      now: () => this.director.nowMs(),
      send,
      sourceFor: (port, target) => {
        const dev = this.ifaces[port]!;
        const r = this.routes.lookup(target.family, target.w0, target.w1, target.w2, target.w3);
        return this.routes.sourceFor(target.family, dev, r && r.dev === dev ? r : null, target);
      },
      onChange: () => this.engine?.servicePending(),
    });
    const vp = this.vpaths;
    this.coreServer = new CoreServer({
      director: this.director,
      routes: this.routes,
      neighbours: this.neighbours,
      portIndex: (dev) => this.ifaces.indexOf(dev),
      portMtu: (port) => this.enginePorts[port]?.mtu ?? 1500,
      ...(vp ? { probes: { port: () => vp.port, target: (f) => vp.pinnedTarget(f) } } : {}),
    });
    if (!this.o.ports) this.seedNeighbours();
    const control = (port: number, buf: Uint8Array, _off: number, _len: number, info: PacketInfo): void => this.controlFrame(port, buf, info);
    if (threads) {
      this.threaded = new ThreadedEngines({
        interfaces: this.ifaces,
        ...(this.o.netns ? { netns: this.o.netns } : {}),
        threads: this.o.threads ?? availableParallelism(),
        core: this.coreServer,
        nexthops: this.nexthops,
        ports: this.enginePorts.map((p) => ({ mac: p.mac, mtu: p.mtu, addr4: p.addr4, addr6: p.addr6 })),
        headroom: RX_HEADROOM,
        rxBlockTimeoutMs: this.o.rxBlockTimeoutMs ?? 1,
        pmtuDisc: this.director.sysctl.pmtu_disc !== 0,
        control,
        ...(this.o.logger ? { logger: this.o.logger } : {}),
      });
    } else {
      const engine = new Engine({
        ports: this.enginePorts,
        core: this.coreServer,
        nexthops: this.nexthops,
        counters: this.counters,
        control,
        pmtuDisc: () => this.director.sysctl.pmtu_disc !== 0,
        now: () => this.director.nowMs(),
      });
      this.engine = engine;
      for (const p of this.enginePorts) p.port.start(engine.batchHandler(p));
    }
    const every = (ms: number, f: () => void): void => {
      const t = setInterval(() => {
        try {
          f();
        } catch (e) {
          this.o.logger?.error({ err: (e as Error).message }, 'packet plane timer failed');
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(200, () => {
      this.neighbours?.tick();
      this.engine?.servicePending();
    });
    every(1000, () => {
      this.engine?.refreshRingStats();
      this.threaded?.refreshStats();
    });
    if (!this.o.routes) every(this.o.routeRefreshMs ?? 2000, () => void this.refreshHost());
  }

  /** ARP and ND frames: the neighbour cache learns and answers. */
  private controlFrame(port: number, buf: Uint8Array, info: PacketInfo): void {
    const n = this.neighbours;
    if (!n) return;
    if (info.etherType === ETH_P_ARP) n.handleArp(port, buf, info);
    else n.handleNd(port, buf, info);
  }

  private seedNeighbours(): void {
    try {
      this.neighbours?.seed(this.tools.ipJsonSync(['neigh', 'show']));
    } catch (e) {
      this.o.logger?.warn({ err: (e as Error).message }, 'cannot read the kernel neighbour table');
    }
  }

  /** Re-reads routes and addresses (and the kernel's neighbours); rebuilds what depends on them. */
  private async refreshHost(): Promise<void> {
    if (this.refreshing || this.closed) return;
    this.refreshing = true;
    try {
      const changed = await this.routes.refresh();
      const neigh = await this.tools.ipJson<{ dst: string; dev: string; lladdr?: string; state?: string[] }>(['neigh', 'show']).catch(() => []);
      if (this.closed) return;
      this.neighbours?.seed(neigh);
      if (changed) {
        this.updatePortAddresses();
        this.coreServer?.invalidate();
        this.queueRebuild();
      }
    } catch (e) {
      this.o.logger?.warn({ err: (e as Error).message }, 'cannot read routes');
    } finally {
      this.refreshing = false;
    }
  }

  private updatePortAddresses(): void {
    for (const p of this.enginePorts) {
      const f = this.routes.interfaces.get(this.ifaces[p.index]!);
      if (!f) continue;
      if (f.mtu) p.mtu = f.mtu;
      const v4 = f.addrs.find((a) => a.addr.family === 4);
      const v6 = f.addrs.find((a) => a.addr.family === 6 && a.scope !== 'link') ?? f.addrs.find((a) => a.addr.family === 6);
      p.addr4 = v4 ? words(v4.addr) : null;
      p.addr6 = v6 ? words(v6.addr) : null;
    }
  }

  private queueRebuild(): void {
    if (this.rebuildQueued || !this.started) return;
    this.rebuildQueued = true;
    setImmediate(() => {
      this.rebuildQueued = false;
      if (this.closed) return;
      this.applyServed(this.servedData());
    });
  }

  private servedData() {
    const d = buildServedData(this.director.table.services(), this.marks, this.routes.localAddresses(), (a) => this.routes.isLocalAddr(a));
    d.probe = this.vpaths?.served() ?? null;
    return d;
  }

  private applyServed(data: ReturnType<typeof buildServedData>): void {
    this.vpaths?.refresh();
    this.index = new ServedIndex(data);
    if (this.engine) this.engine.served = this.index;
    this.threaded?.setServed(data);
    this.coreServer?.invalidate();
    if (this.o.guard !== false && !this.o.ports) void this.guard.update(data);
    if (this.neighbours && this.o.answerArp !== false) {
      const owned = data.ownedVips.map((v) => new IpAddr(v.family, ...v.words));
      for (const a of this.neighbours.setAnswered(owned)) this.neighbours.announce(a);
    }
  }

  served(): string[] {
    if (!this.started) return [];
    const out: string[] = [];
    for (const s of this.director.table.services()) if (carries(s, this.marks).ok) out.push(s.key);
    return out;
  }

  unserved(): ServiceCoverage[] {
    const out: ServiceCoverage[] = [];
    for (const s of this.director.table.services()) {
      if (!s.dests.some((d) => packetMethod(d.connFlags & FWD_MASK))) continue;
      const c = carries(s, this.marks);
      if (!c.ok) out.push({ key: s.key, reason: c.reason });
      else if (!this.started) out.push({ key: s.key, reason: 'the packet plane is not running' });
    }
    return out;
  }

  /** Drain: packets of existing connections are still carried; packets that would open one are dropped. */
  async stopAccepting(): Promise<void> {
    this.accepting = false;
    this.coreServer?.stopAccepting();
    this.threaded?.stopAccepting();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.vpaths && virtualPathProvider() === this.vpaths) registerVirtualPathProvider(null);
    this.teardown();
    this.vpaths?.close();
    await this.guard.settle();
    if (!this.o.ports) this.guard.remove();
    this.o.logger?.info({}, 'packet plane detached');
  }

  private teardown(): void {
    if (!this.o.ports && this.o.guard !== false && !this.started) this.guard.remove();
    if (!this.started) this.vpaths?.teardownHost();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.threaded?.close();
    this.threaded = null;
    for (const p of this.ports) {
      try {
        p.stop();
        if (!this.o.ports) p.close();
      } catch {
        // already closed
      }
    }
    this.engine = null;
  }

  /** Counter sets of every engine (this thread's and the workers'). */
  private counterSets(): Float64Array[] {
    return [this.counters, ...(this.threaded?.counterSets() ?? [])];
  }

  status(): Record<string, unknown> {
    const s = summarize(this.counterSets());
    const neigh: Record<string, number> = {};
    for (const n of this.neighbours?.entries() ?? []) neigh[n.state] = (neigh[n.state] ?? 0) + 1;
    return {
      mode: this.mode,
      interfaces: this.o.interfaces,
      ...(this.o.netns ? { netns: this.o.netns } : {}),
      ...(this.threaded ? { workers: this.threaded.count } : {}),
      accepting: this.accepting,
      drops: s.drops,
      packets: s.packets,
      bytes: s.bytes,
      errors: s.errors,
      corePackets: s.corePackets,
      answers: s.answers,
      ignored: s.ignored,
      queued: s.queued,
      neighbours: neigh,
      guard: { installed: this.guard.rules !== '', ...(this.guard.lastError ? { error: this.guard.lastError } : {}) },
      ...(this.vpaths ? { virtualPaths: this.vpaths.status() } : {}),
    };
  }

  /** The guard's current ruleset (tests, diagnostics). */
  get guardRules(): string {
    return this.guard.rules;
  }

  /** Waits until the guard follows the latest table (tests). */
  async settle(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await this.guard.settle();
  }
}

function words(a: IpAddr): AddrWords {
  return { w0: a.w0, w1: a.w1, w2: a.w2, w3: a.w3 };
}

/** A transmit slot large enough for an MTU-sized frame plus a tunnel header and a VLAN tag. */
function txFrameSize(mtu: number): number {
  const need = mtu + 14 + 4 + RX_HEADROOM + 64;
  return Math.max(2048, Math.ceil(need / 16) * 16);
}
