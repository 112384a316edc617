// The tunnel real-server agent behind `vsrs`: for real servers reached by IPVS tunneling (-i)
// whose kernel has no ipip/gre/fou module. It reads the director's tunnel packets (IPIP,
// IPv6-in-IPv4, GRE, GUE on --gue-port) from the interface with AF_PACKET, strips the outer
// headers (codec decapsulate, checksums verified) and writes the client's packet into a TUN
// device, so the local stack receives it as if it had arrived there: the server answers from
// the VIP straight to the client, as with the kernel's tunnel devices.
//
// It also keeps the server's own kernel quiet about those packets: without a module for them
// the kernel would answer each with ICMP protocol (or port) unreachable. An nftables table
// (`inet tsvs_rs`) drops them before the stack sees them; AF_PACKET has its copy already.

import { writeFileSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { decapsulate, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, PacketInfo, parseFrame, reasonName, rd16, rd32 } from '../../codec/index.js';
import { IpAddr } from '../../core/addr.js';
import { type FramePort, openFramePort, openTun, type RxBatch } from './frame-io.js';
import { HostTools } from './host-tools.js';
import { HostRoutes } from './routes.js';

export interface RealServerOptions {
  /** The interface the tunnel packets arrive on. */
  interface: string;
  /** TUN device name (default tsvs0). */
  tun?: string;
  /** GUE destination port (the real server's --tun-port); 0: no GUE. */
  guePort?: number;
  /** VIPs to configure on lo with ARP kept quiet (as a DR/TUN real server needs). */
  vips?: string[];
  /** Install the nftables guard (default true). */
  guard?: boolean;
  log?: (msg: string) => void;
}

export interface RealServerStats {
  frames: number;
  decapsulated: number;
  bytes: number;
  drops: Record<string, number>;
}

const TABLE = 'tsvs_rs';

export class RealServerAgent {
  private port: FramePort | null = null;
  private tunFd = -1;
  private readonly outer = new PacketInfo();
  private readonly inner = new PacketInfo();
  private readonly tools = new HostTools();
  private readonly routes = new HostRoutes(this.tools);
  private readonly local = new Set<number>();
  private readonly local6 = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private guarded = false;
  private macHi = 0;
  private macLo = 0;
  readonly stats: RealServerStats = { frames: 0, decapsulated: 0, bytes: 0, drops: {} };
  readonly tunName: string;

  constructor(private readonly o: RealServerOptions) {
    this.tunName = o.tun ?? 'tsvs0';
  }

  start(): void {
    const log = this.o.log ?? (() => {});
    this.refreshAddresses();
    const tun = openTun(this.tunName);
    this.tunFd = tun.fd;
    this.run('ip', ['link', 'set', 'dev', tun.name, 'up']);
    // The client's packet arrives on the TUN device, which has no IPv4 address, while the route
    // back to the client leaves by the interface: reverse-path filtering (strict or loose) drops
    // it. As for the kernel's tunl0 in LVS-TUN setups, it is turned off on the device and on
    // "all" (the effective value is the larger of the two).
    this.sysctl(`net/ipv4/conf/${tun.name}/rp_filter`, '0');
    const all = this.readSysctl('net/ipv4/conf/all/rp_filter');
    if (all !== '0' && all !== '') {
      this.sysctl('net/ipv4/conf/all/rp_filter', '0');
      log(`vsrs: net.ipv4.conf.all.rp_filter set from ${all} to 0 (tunnelled packets arrive on ${tun.name})`);
    }
    for (const vip of this.o.vips ?? []) this.addVip(vip);
    if (this.o.guard !== false) this.installGuard();
    const port = openFramePort({ ifname: this.o.interface, tx: false });
    this.port = port;
    this.macHi = (port.mac[0]! << 8) | port.mac[1]!;
    this.macLo = ((port.mac[2]! << 24) | (port.mac[3]! << 16) | (port.mac[4]! << 8) | port.mac[5]!) | 0;
    port.start((rx) => this.batch(rx));
    this.timer = setInterval(() => this.refreshAddresses(), 5000);
    this.timer.unref();
    log(`vsrs: decapsulating IPIP/GRE${this.o.guePort ? `/GUE:${this.o.guePort}` : ''} tunnel packets from ${this.o.interface} into ${tun.name}`);
  }

  private run(cmd: 'ip' | 'nft', args: string[], input?: string): void {
    const r = this.tools.runSync(cmd, args, input);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  }

  private sysctl(path: string, value: string): void {
    writeFileSync(`/proc/sys/${path}`, value);
  }

  private readSysctl(path: string): string {
    try {
      return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
    } catch {
      return '';
    }
  }

  private addVip(vip: string): void {
    const a = IpAddr.parse(vip);
    for (const k of ['all', 'lo']) {
      if (a.family === 4) {
        this.sysctl(`net/ipv4/conf/${k}/arp_ignore`, '1');
        this.sysctl(`net/ipv4/conf/${k}/arp_announce`, '2');
      }
    }
    const r = this.tools.runSync('ip', [a.family === 6 ? '-6' : '-4', 'addr', 'add', `${a}/${a.family === 6 ? 128 : 32}`, 'dev', 'lo']);
    if (r.status !== 0 && !/exists/i.test(r.stderr)) throw new Error(`cannot add ${vip} to lo: ${r.stderr.trim()}`);
  }

  private installGuard(): void {
    const gue = this.o.guePort ? `    udp dport ${this.o.guePort} fib daddr type local drop\n` : '';
    const rules = `table inet ${TABLE}\ndelete table inet ${TABLE}\ntable inet ${TABLE} {\n  comment "tsvs vsrs pid=${process.pid}"\n  chain pre {\n    type filter hook prerouting priority raw - 10; policy accept;\n    meta nfproto ipv4 ip protocol { 4, 41, 47 } fib daddr type local drop\n    meta nfproto ipv6 ip6 nexthdr { 4, 41, 47 } fib daddr type local drop\n${gue}  }\n}\n`;
    this.run('nft', ['-f', '-'], rules);
    this.guarded = true;
  }

  private refreshAddresses(): void {
    try {
      this.routes.refreshSync();
    } catch {
      return;
    }
    this.local.clear();
    this.local6.clear();
    for (const a of this.routes.localAddresses()) {
      if (a.family === 4) this.local.add(a.w0 >>> 0);
      else this.local6.add(a.toString());
    }
  }

  private drop(code: number | string): void {
    const k = typeof code === 'string' ? code : reasonName(code);
    this.stats.drops[k] = (this.stats.drops[k] ?? 0) + 1;
  }

  private batch(rx: RxBatch): void {
    const buf = rx.buffer;
    for (let i = 0; i < rx.count; i++) {
      const off = rx.offsets[i]!;
      const len = rx.lengths[i]!;
      this.stats.frames++;
      if ((buf[off]! & 1) === 0 && (rd16(buf, off) !== this.macHi || (rd32(buf, off + 2) | 0) !== this.macLo)) continue;
      const o = this.outer;
      if (parseFrame(buf, off, off + len, o) < 0 || o.ipVersion === 0 || o.l4off < 0) continue;
      const p = o.protocol;
      if (p !== IPPROTO_IPIP && p !== IPPROTO_IPV6 && p !== IPPROTO_GRE && !(p === IPPROTO_UDP && this.o.guePort && o.dport === this.o.guePort)) continue;
      if (o.ipVersion === 4 ? !this.local.has(o.daddr4) : !this.local6.has(IpAddr.fromBytes(buf.subarray(o.daddrOff, o.daddrOff + 16)).toString())) continue;
      const r = decapsulate(buf, o, this.inner, this.o.guePort ?? 0, true);
      if (r < 0) {
        this.drop(r);
        continue;
      }
      const n = this.inner.ipEnd - this.inner.l3off;
      try {
        writeSync(this.tunFd, buf, this.inner.l3off, n);
        this.stats.decapsulated++;
        this.stats.bytes += n;
      } catch (e) {
        this.drop((e as NodeJS.ErrnoException).code ?? 'tun_write');
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.port?.close();
    this.port = null;
    if (this.tunFd >= 0) closeSync(this.tunFd);
    this.tunFd = -1;
    if (this.guarded) this.tools.runSync('nft', ['delete', 'table', 'inet', TABLE]);
    this.guarded = false;
  }
}
