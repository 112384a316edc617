// Network-namespace topologies for tests and benchmarks (root only).
//
// Everything lives in namespaces this module creates (named tsvs-<tag>-<pid>-<n>-<role>), wired
// with veth pairs created directly inside them (never in the machine's own namespace), with
// addresses only from 198.18.0.0/15 and 2001:2::/48 (checked: anything else throws). Processes
// started in a namespace are tracked by pid. destroy() kills them and deletes the namespaces,
// which takes every veth, bridge, address, route and nftables table in them along; the same
// happens on process exit and on SIGINT/SIGTERM, and namespaces left by a dead pid (a test
// killed with SIGKILL) are removed by the next topology created.
//
//   const topo = await Topology.create('frameio');
//   const a = topo.namespace('a'); const b = topo.namespace('b');
//   topo.veth(a, 'a0', b, 'b0');
//   topo.addr(a, 'a0', '198.18.0.1/24'); ...
//   ... t.after(() => topo.destroy());
//
// Presets: createLvsTopology({ arms: 'one' | 'two', servers: 3 }): client, director, real servers.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Who may run this

/** Why root-only network tests cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces, veth, AF_PACKET); run as root to include it';
  if (!commandExists('ip')) return "needs iproute2's ip command (apt-get install iproute2)";
  return undefined;
}

export function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------------------------
// Addresses: only the benchmarking ranges, never anything a real network uses.

const V4_BASE = (198 << 24) | (18 << 16); // 198.18.0.0/15
const V6_PREFIX = [0x2001, 0x0002, 0x0000]; // 2001:2::/48

function v4Number(a: string): number {
  return a.split('.').reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

function v6Groups(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => Number.parseInt(g, 16));
}

/** True for an address inside 198.18.0.0/15 or 2001:2::/48 (prefix length, if any, ignored). */
export function isTestAddress(addr: string): boolean {
  const ip = addr.split('/')[0]!;
  const fam = isIP(ip);
  if (fam === 4) return (v4Number(ip) & 0xfffe0000) >>> 0 === V4_BASE >>> 0;
  if (fam === 6) {
    const g = v6Groups(ip);
    return g[0] === V6_PREFIX[0] && g[1] === V6_PREFIX[1] && g[2] === V6_PREFIX[2];
  }
  return false;
}

function assertTestAddress(addr: string, what: string): void {
  if (!isTestAddress(addr)) throw new Error(`${what} ${addr} is outside 198.18.0.0/15 and 2001:2::/48: refused`);
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { input?: string; check?: boolean; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
  if (opts.check !== false && res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${res.status}): ${res.stderr.trim() || res.stdout.trim()}`);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Namespaces and processes

const PREFIX = 'tsvs-';
const live = new Set<Topology>();
let seq = 0;
let exitHooked = false;

/** A namespace of a topology. `name` is what `ip netns`, the frame I/O `netns` option and nft use. */
export class Netns {
  constructor(
    readonly topo: Topology,
    readonly name: string,
    readonly role: string,
  ) {}

  /** Runs a command inside the namespace and waits for it (throws on a non-zero exit unless check: false). */
  run(cmd: string, args: string[] = [], opts: { input?: string; check?: boolean; timeoutMs?: number } = {}): RunResult {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Starts a tracked process inside the namespace (killed by pid on destroy). */
  spawn(cmd: string, args: string[] = [], opts: { stdin?: boolean } = {}): NsProcess {
    return this.topo.spawn(this, cmd, args, opts);
  }

  ip(...args: string[]): string {
    return run('ip', ['-n', this.name, ...args]).stdout;
  }

  sysctl(key: string, value: string | number): void {
    this.run('sysctl', ['-qw', `${key}=${value}`]);
  }

  /** Loads an nftables ruleset (nft -f syntax) into this namespace. */
  nft(ruleset: string): void {
    this.run('nft', ['-f', '-'], { input: ruleset });
  }

  mac(ifname: string): string {
    const j = JSON.parse(this.ip('-j', 'link', 'show', 'dev', ifname)) as Array<{ address: string }>;
    return j[0]!.address;
  }

  linkStats(ifname: string): LinkStats {
    const j = JSON.parse(this.ip('-j', '-s', 'link', 'show', 'dev', ifname)) as Array<{
      stats64: { rx: { packets: number; bytes: number; dropped: number }; tx: { packets: number; bytes: number; dropped: number } };
    }>;
    const s = j[0]!.stats64;
    return { rxPackets: s.rx.packets, rxBytes: s.rx.bytes, rxDropped: s.rx.dropped, txPackets: s.tx.packets, txBytes: s.tx.bytes, txDropped: s.tx.dropped };
  }
}

export interface LinkStats {
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
}

/** A process started in a namespace; output is collected (bounded) for assertions. */
export class NsProcess {
  readonly pid: number;
  stdout = '';
  stderr = '';
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;
  private readonly lineWaiters: Array<{ test: (s: string) => boolean; resolve: () => void }> = [];

  constructor(readonly child: ChildProcess) {
    if (child.pid === undefined) throw new Error('process did not start');
    this.pid = child.pid;
    const cap = 1 << 20;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (this.stdout.length < cap) this.stdout += d;
      for (const w of [...this.lineWaiters]) {
        if (w.test(this.stdout)) {
          this.lineWaiters.splice(this.lineWaiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < cap) this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
      });
      child.once('error', () => resolve(null));
    });
  }

  get running(): boolean {
    return this.exitCode === null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when stdout satisfies test, rejects after timeoutMs or when the process exits first. */
  waitForOutput(test: (stdout: string) => boolean, timeoutMs: number): Promise<void> {
    if (test(this.stdout)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters.splice(this.lineWaiters.indexOf(entry), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for output; stdout: ${this.stdout.slice(-500)} stderr: ${this.stderr.slice(-500)}`));
      }, timeoutMs);
      const entry = {
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.lineWaiters.push(entry);
      void this.exited.then(() => {
        if (test(this.stdout)) return;
        clearTimeout(timer);
        reject(new Error(`process exited (${this.exitCode}) before the expected output; stderr: ${this.stderr.slice(-500)}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL after graceMs; by pid, only this process. */
  async stop(graceMs = 1000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  signal(sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }
}

function sanitize(tag: string): string {
  return (
    tag
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '')
      .slice(0, 12) || 't'
  );
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes tsvs-* namespaces whose creating process is gone (left by a test killed hard). */
export function cleanupStaleNamespaces(): string[] {
  if (!existsSync('/run/netns')) return [];
  const removed: string[] = [];
  for (const name of readdirSync('/run/netns')) {
    const m = /^tsvs-[a-z0-9]+-(\d+)-\d+-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    run('ip', ['netns', 'del', name], { check: false });
    removed.push(name);
  }
  return removed;
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const t of live) t.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // Only when nobody else handles the signal: then clean up and die of it as before.
    if (process.listenerCount(sig) > 0) continue;
    const onSignal = (): void => {
      for (const t of live) t.destroySync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

export class Topology {
  readonly namespaces: Netns[] = [];
  private readonly procs = new Set<NsProcess>();
  private destroyed = false;
  private bridgePorts = 0;
  readonly id: string;

  private constructor(tag: string) {
    this.id = `${PREFIX}${sanitize(tag)}-${process.pid}-${seq++}`;
  }

  /** A new empty topology; throws when netnsSkipReason() says this machine cannot. */
  static create(tag: string): Topology {
    const why = netnsSkipReason();
    if (why) throw new Error(`network namespaces unavailable: ${why}`);
    cleanupStaleNamespaces();
    hookExit();
    const t = new Topology(tag);
    live.add(t);
    return t;
  }

  /** Creates a namespace with lo up. Role: a short [a-z0-9] label (client, dir, rs1, ...). */
  namespace(role: string): Netns {
    const name = `${this.id}-${sanitize(role)}`;
    run('ip', ['netns', 'add', name]);
    const ns = new Netns(this, name, role);
    this.namespaces.push(ns);
    ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /**
   * A veth pair between two namespaces (created inside them, so the machine's own namespace
   * never sees it), both ends up. Offloads are off by default: frames then carry complete
   * checksums and no GSO super-frames, which is what a frame-level plane must see.
   */
  veth(a: Netns, aIf: string, b: Netns, bIf: string, opts: { mtu?: number; offloads?: boolean; macA?: string; macB?: string } = {}): void {
    const args = ['link', 'add', aIf];
    if (opts.macA) args.push('address', opts.macA);
    args.push('type', 'veth', 'peer', 'name', bIf);
    if (opts.macB) args.push('address', opts.macB);
    args.push('netns', b.name);
    a.ip(...args);
    for (const [ns, ifname] of [
      [a, aIf],
      [b, bIf],
    ] as const) {
      if (opts.mtu) ns.ip('link', 'set', ifname, 'mtu', String(opts.mtu));
      if (!opts.offloads) setOffloads(ns, ifname, false);
      ns.ip('link', 'set', ifname, 'up');
    }
  }

  /** A bridge inside ns. */
  bridge(ns: Netns, name: string): void {
    ns.ip('link', 'add', name, 'type', 'bridge');
    // No STP delay and no multicast snooping surprises: forward at once.
    ns.ip('link', 'set', name, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0', 'mcast_snooping', '0');
    ns.ip('link', 'set', name, 'up');
  }

  /** Connects ns:ifname to a bridge in bridgeNs through a new veth pair. */
  bridgePort(bridgeNs: Netns, bridgeName: string, ns: Netns, ifname: string, opts: { offloads?: boolean } = {}): void {
    const port = `p${this.bridgePorts++}`;
    this.veth(bridgeNs, port, ns, ifname, opts);
    bridgeNs.ip('link', 'set', port, 'master', bridgeName);
  }

  /** Adds an address (CIDR) from the test ranges. IPv6 skips duplicate address detection. */
  addr(ns: Netns, ifname: string, cidr: string): void {
    assertTestAddress(cidr, 'address');
    const v6 = cidr.includes(':');
    ns.ip(...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', ifname, ...(v6 ? ['nodad'] : []));
  }

  /** Adds a route; dst is 'default' or a prefix from the test ranges, via an address from them. */
  route(ns: Netns, dst: string, via: string, dev?: string): void {
    if (dst !== 'default') assertTestAddress(dst, 'route destination');
    assertTestAddress(via, 'gateway');
    const v6 = via.includes(':');
    ns.ip(...(v6 ? ['-6'] : ['-4']), 'route', 'add', dst, 'via', via, ...(dev ? ['dev', dev] : []));
  }

  /** Routing on (IPv4 and IPv6), reverse-path filtering off, no redirects (one-arm NAT sends back out the same port). */
  router(ns: Netns): void {
    ns.sysctl('net.ipv4.ip_forward', 1);
    ns.sysctl('net.ipv6.conf.all.forwarding', 1);
    for (const k of ['all', 'default']) {
      ns.sysctl(`net.ipv4.conf.${k}.rp_filter`, 0);
      ns.sysctl(`net.ipv4.conf.${k}.send_redirects`, 0);
    }
  }

  /**
   * A DR real server: the VIPs on lo, and no ARP for them on the wire (arp_ignore=1: answer only
   * for addresses of the receiving interface; arp_announce=2: never source ARP from the VIP).
   */
  drRealServer(ns: Netns, vips: string[]): void {
    for (const k of ['all', 'default', 'lo']) {
      ns.sysctl(`net.ipv4.conf.${k}.arp_ignore`, 1);
      ns.sysctl(`net.ipv4.conf.${k}.arp_announce`, 2);
      ns.sysctl(`net.ipv4.conf.${k}.rp_filter`, 0);
    }
    for (const vip of vips) this.addr(ns, 'lo', vip.includes('/') ? vip : `${vip}/${vip.includes(':') ? 128 : 32}`);
  }

  spawn(ns: Netns, cmd: string, args: string[], opts: { stdin?: boolean } = {}): NsProcess {
    if (this.destroyed) throw new Error('topology destroyed');
    // ip netns exec enters the namespace and execs the command: the pid is the command's.
    const child = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const p = new NsProcess(child);
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Stops every tracked process, then deletes the namespaces (and all that is in them). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all([...this.procs].map((p) => p.stop(500)));
    this.destroySync();
  }

  /** The same, synchronously (exit handlers): SIGKILL by pid, then delete. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.procs) p.signal('SIGKILL');
    this.procs.clear();
    for (const ns of this.namespaces.reverse()) run('ip', ['netns', 'del', ns.name], { check: false });
    live.delete(this);
  }
}

let haveEthtool: boolean | undefined;

function setOffloads(ns: Netns, ifname: string, on: boolean): void {
  haveEthtool ??= commandExists('ethtool');
  // Loud, not silent: with offloads on, frames carry partial checksums and forwarded ones are dropped.
  if (!haveEthtool) throw new Error('ethtool is needed to turn veth offloads off (apt-get install ethtool), or pass offloads: true');
  const v = on ? 'on' : 'off';
  // tx covers checksum offload (and with it TSO); gso/gro keep super-frames away.
  ns.run('ethtool', ['-K', ifname, 'tx', v, 'tso', v, 'gso', v, 'gro', v], { check: false });
}

// ---------------------------------------------------------------------------------------------
// LVS presets

export interface Host {
  ns: Netns;
  /** The interface facing the network (client, real servers). */
  ifname: string;
  v4: string;
  v6: string;
  mac: string;
}

export interface Director {
  ns: Netns;
  /** Interface toward the clients, and toward the real servers (the same one on one arm). */
  clientIf: string;
  serverIf: string;
  clientV4: string;
  clientV6: string;
  serverV4: string;
  serverV6: string;
  clientMac: string;
  serverMac: string;
}

export interface LvsTopology {
  topo: Topology;
  arms: 'one' | 'two';
  client: Host;
  director: Director;
  servers: Host[];
  /** Where a service's virtual address goes (on the client-facing network; not configured anywhere). */
  vip4: string;
  vip6: string;
  /** Namespace holding the bridge(s), when there is one. */
  switchNs?: Netns;
  destroy(): Promise<void>;
}

export interface LvsTopologyOptions {
  /** 'one': everything on one LAN (198.18.0.0/24, 2001:2::/64). 'two': client net 198.18.1.0/24 and
   * 2001:2:0:1::/64, server net 198.18.2.0/24 and 2001:2:0:2::/64, the director routes between them. */
  arms?: 'one' | 'two';
  /** Real servers (default 3). On two arms, one server is wired straight to the director (no bridge). */
  servers?: number;
  /** Real servers' default route via the director (NAT needs it; default true). */
  serversViaDirector?: boolean;
  /** Make the real servers DR-ready: the VIPs on lo, ARP quiet (default false). */
  dr?: boolean;
  /** Director forwards (ip_forward etc.; default true). */
  forwarding?: boolean;
  offloads?: boolean;
}

/** client | director | real servers, on one arm or two. */
export function createLvsTopology(tag: string, opts: LvsTopologyOptions = {}): LvsTopology {
  const arms = opts.arms ?? 'one';
  const nServers = opts.servers ?? 3;
  if (nServers < 0 || nServers > 50) throw new RangeError('servers: 0..50');
  const topo = Topology.create(tag);
  try {
    return build(topo, arms, nServers, opts);
  } catch (e) {
    topo.destroySync();
    throw e;
  }
}

function build(topo: Topology, arms: 'one' | 'two', nServers: number, opts: LvsTopologyOptions): LvsTopology {
  const veth = { offloads: opts.offloads ?? false };
  const clientNs = topo.namespace('client');
  const dirNs = topo.namespace('dir');
  const serverNs = Array.from({ length: nServers }, (_, i) => topo.namespace(`rs${i + 1}`));
  const hosts: Array<{ ns: Netns; v4: string; v6: string }> = [];
  let switchNs: Netns | undefined;
  let dir: Omit<Director, 'clientMac' | 'serverMac'>;
  let vip4: string;
  let vip6: string;
  const sv = (i: number, net: string, net6: string): { v4: string; v6: string } => ({ v4: `${net}.${21 + i}`, v6: `${net6}::${21 + i}` });

  if (arms === 'one') {
    switchNs = topo.namespace('sw');
    topo.bridge(switchNs, 'br0');
    topo.bridgePort(switchNs, 'br0', clientNs, 'eth0', veth);
    topo.bridgePort(switchNs, 'br0', dirNs, 'eth0', veth);
    for (const ns of serverNs) topo.bridgePort(switchNs!, 'br0', ns, 'eth0', veth);
    dir = { ns: dirNs, clientIf: 'eth0', serverIf: 'eth0', clientV4: '198.18.0.1', clientV6: '2001:2::1', serverV4: '198.18.0.1', serverV6: '2001:2::1' };
    topo.addr(dirNs, 'eth0', '198.18.0.1/24');
    topo.addr(dirNs, 'eth0', '2001:2::1/64');
    hosts.push({ ns: clientNs, v4: '198.18.0.10', v6: '2001:2::10' });
    serverNs.forEach((ns, i) => {
      hosts.push({ ns, ...sv(i, '198.18.0', '2001:2') });
    });
    for (const h of hosts) {
      topo.addr(h.ns, 'eth0', `${h.v4}/24`);
      topo.addr(h.ns, 'eth0', `${h.v6}/64`);
    }
    vip4 = '198.18.0.100';
    vip6 = '2001:2::100';
  } else {
    topo.veth(clientNs, 'eth0', dirNs, 'eth0', veth);
    if (nServers === 1) topo.veth(dirNs, 'eth1', serverNs[0]!, 'eth0', veth);
    else if (nServers > 1) {
      switchNs = topo.namespace('sw');
      topo.bridge(switchNs, 'br0');
      topo.bridgePort(switchNs, 'br0', dirNs, 'eth1', veth);
      for (const ns of serverNs) topo.bridgePort(switchNs!, 'br0', ns, 'eth0', veth);
    }
    dir = { ns: dirNs, clientIf: 'eth0', serverIf: 'eth1', clientV4: '198.18.1.1', clientV6: '2001:2:0:1::1', serverV4: '198.18.2.1', serverV6: '2001:2:0:2::1' };
    topo.addr(dirNs, 'eth0', '198.18.1.1/24');
    topo.addr(dirNs, 'eth0', '2001:2:0:1::1/64');
    if (nServers > 0) {
      topo.addr(dirNs, 'eth1', '198.18.2.1/24');
      topo.addr(dirNs, 'eth1', '2001:2:0:2::1/64');
    }
    hosts.push({ ns: clientNs, v4: '198.18.1.10', v6: '2001:2:0:1::10' });
    serverNs.forEach((ns, i) => {
      hosts.push({ ns, ...sv(i, '198.18.2', '2001:2:0:2') });
    });
    hosts.forEach((h, i) => {
      topo.addr(h.ns, 'eth0', `${h.v4}/24`);
      topo.addr(h.ns, 'eth0', `${h.v6}/64`);
      if (i === 0) {
        topo.route(h.ns, 'default', dir.clientV4);
        topo.route(h.ns, 'default', dir.clientV6);
      }
    });
    vip4 = '198.18.1.100';
    vip6 = '2001:2:0:1::100';
  }
  if (opts.serversViaDirector ?? true) {
    for (const ns of serverNs) {
      topo.route(ns, 'default', dir.serverV4);
      topo.route(ns, 'default', dir.serverV6);
    }
  }
  if (opts.forwarding ?? true) topo.router(dirNs);
  if (opts.dr) for (const ns of serverNs) topo.drRealServer(ns, [vip4, vip6]);

  const host = (h: { ns: Netns; v4: string; v6: string }): Host => ({ ...h, ifname: 'eth0', mac: h.ns.mac('eth0') });
  const [clientHost, ...serverHosts] = hosts.map(host);
  return {
    topo,
    arms,
    client: clientHost!,
    director: { ...dir, clientMac: dirNs.mac(dir.clientIf), serverMac: nServers > 0 || arms === 'one' ? dirNs.mac(dir.serverIf) : '' },
    servers: serverHosts,
    vip4,
    vip6,
    ...(switchNs ? { switchNs } : {}),
    destroy: () => topo.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------
// Small UDP peers (node itself, run inside a namespace): a sender and a sink.

const UDP_SEND = `
const [host, port, count, sport, nports, payload] = process.argv.slice(1);
const dgram = require('node:dgram');
const fam = host.includes(':') ? 'udp6' : 'udp4';
const socks = [];
for (let i = 0; i < Number(nports); i++) {
  const s = dgram.createSocket(fam);
  s.bind(Number(sport) ? Number(sport) + i : 0);
  socks.push(s);
}
let sent = 0;
const n = Number(count);
const next = () => {
  if (sent >= n) { socks.forEach((s) => s.close()); return; }
  const s = socks[sent % socks.length];
  sent++;
  s.send(payload + ':' + sent, Number(port), host, next);
};
next();
`;

/** Sends count datagrams "payload:i" to host:port from inside ns (spread over nports source ports). */
export async function udpSend(ns: Netns, host: string, port: number, count: number, opts: { payload?: string; sport?: number; nports?: number } = {}): Promise<void> {
  assertTestAddress(host, 'destination');
  if (count > 1_000_000) throw new RangeError('udpSend: at most 1e6 datagrams');
  const p = ns.spawn(process.execPath, ['-e', UDP_SEND, host, String(port), String(count), String(opts.sport ?? 0), String(opts.nports ?? 1), opts.payload ?? 'tsvs']);
  const code = await Promise.race([p.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref())]);
  if (code === 'timeout') {
    await p.stop();
    throw new Error('udpSend timed out');
  }
  if (code !== 0) throw new Error(`udpSend failed (${code}): ${p.stderr}`);
}

const UDP_SINK = `
const [addr, port, max] = process.argv.slice(1);
const s = require('node:dgram').createSocket(addr.includes(':') ? 'udp6' : 'udp4');
let n = 0;
s.on('message', (m, r) => { n++; if (n <= Number(max)) process.stdout.write(r.address + ' ' + r.port + ' ' + m.toString('hex') + '\\n'); });
s.bind(Number(port), addr, () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => { process.stdout.write('count ' + n + '\\n', () => process.exit(0)); });
`;

export interface UdpSink {
  proc: NsProcess;
  /** Datagrams received so far: source address, port, payload. */
  received(): Array<{ from: string; port: number; payload: Buffer }>;
  waitFor(n: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** A UDP socket bound in ns that reports every datagram (the first `max`) on stdout. */
export async function udpSink(ns: Netns, addr: string, port: number, max = 10_000): Promise<UdpSink> {
  const proc = ns.spawn(process.execPath, ['-e', UDP_SINK, addr, String(port), String(max)]);
  await proc.waitForOutput((s) => s.startsWith('ready\n'), 10_000);
  const received = () =>
    proc.stdout
      .split('\n')
      .filter((l) => l && l !== 'ready' && !l.startsWith('count '))
      .map((l) => {
        const [from, p, hex] = l.split(' ');
        return { from: from!, port: Number(p), payload: Buffer.from(hex ?? '', 'hex') };
      });
  return {
    proc,
    received,
    waitFor: (n, timeoutMs) => proc.waitForOutput(() => received().length >= n, timeoutMs),
    stop: () => proc.stop(),
  };
}
