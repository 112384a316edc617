// The connection-sync daemons (spec ipvs-kernel.md §10.1, §11.2; ipvsadm-keepalived.md §1.10):
// at most one master and one backup, over UDP multicast (default 224.0.0.81:8848, TTL 1; IPv6
// groups too). The kernel runs sync_ports threads per role, thread i on port + i; here each is
// one socket in this process. start() validates synchronously and fails with the errno the
// kernel gives (EINVAL, ENODEV, EEXIST; stop: ESRCH); sockets then come up asynchronously.

import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { IpAddr } from '../core/addr.js';
import type { Director } from '../core/director.js';
import { fail } from '../core/errors.js';
import type { SyncApplyResult } from '../core/sync.js';
import type { DaemonInfo, DaemonSpec } from '../control/ipvs-api.js';
import type { SyncControl } from '../control/local-api.js';
import { realTimers, SyncMaster, type SyncTimers } from './master.js';
import { decodeMessage, type SyncWireErrorCode } from './wire.js';

export const SYNC_DEFAULT_GROUP = '224.0.0.81';
export const SYNC_DEFAULT_GROUP6 = 'ff02::51';
export const SYNC_DEFAULT_PORT = 8848;
export const SYNC_DEFAULT_TTL = 1;
/** IPVS_SYNC_PORTS_MAX: sync_ports is clamped to this many threads. */
export const SYNC_PORTS_MAX = 64;
/** IFNAMSIZ - 1: longer names are cut (strlcpy into the kernel's 16-byte field). */
const IFNAME_MAX = 15;

/** What the daemon needs to know about an interface; null when it does not exist. */
export interface InterfaceInfo {
  mtu: number;
  /** Primary IPv4 address (the master binds to it; the backup joins the group on it). */
  ipv4?: string;
}

export type InterfaceProbe = (name: string) => InterfaceInfo | null;

/** The machine's interfaces: /sys/class/net lists them all, addressed or not. */
export const systemInterfaces: InterfaceProbe = (name) => {
  if (!name || name.includes('/') || name === '.' || name === '..') return null;
  let mtu = 0;
  try {
    mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
  } catch {
    // not Linux, or no such interface: fall back to what Node knows
  }
  const addrs = networkInterfaces()[name];
  if (!mtu && !addrs) return null;
  const v4 = addrs?.find((a) => a.family === 'IPv4');
  return { mtu: mtu || 1500, ...(v4 ? { ipv4: v4.address } : {}) };
};

/** The smallest logger both pino and tests satisfy. */
export interface SyncLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silentLogger: SyncLogger = { info() {}, warn() {}, error() {} };

export interface SyncDaemonsOptions {
  /** The director (or how to get it: vsd builds it after this object). */
  director: Director | (() => Director);
  logger?: SyncLogger;
  timers?: SyncTimers;
  interfaces?: InterfaceProbe;
}

/** Effective configuration of a running daemon (what the kernel keeps in mcfg/bcfg). */
interface DaemonConfig {
  state: 'master' | 'backup';
  ifname: string;
  syncid: number;
  maxlen: number;
  af: 4 | 6;
  group: string;
  port: number;
  ttl: number;
  iface: InterfaceInfo;
}

export interface BackupCounters {
  messages: number;
  /** Messages the syncid filter ignored. */
  ignored: number;
  /** Messages refused whole (short, size mismatch). */
  refused: number;
  records: Record<SyncApplyResult, number>;
  skipped: number;
  lost: number;
  errors: Partial<Record<SyncWireErrorCode, number>>;
}

interface Running {
  cfg: DaemonConfig;
  sockets: Socket[];
  ready: Promise<void>;
  master?: SyncMaster;
  counters?: BackupCounters;
}

export class SyncDaemons implements SyncControl {
  private master: Running | null = null;
  private backup: Running | null = null;
  /** threads_mask + 1, fixed while any daemon runs. */
  private threads = 0;
  private readonly log: SyncLogger;
  private readonly timers: SyncTimers;
  private readonly probe: InterfaceProbe;
  private readonly getDirector: () => Director;

  constructor(opts: SyncDaemonsOptions) {
    const d = opts.director;
    this.getDirector = typeof d === 'function' ? d : () => d;
    this.log = opts.logger ?? silentLogger;
    this.timers = opts.timers ?? realTimers;
    this.probe = opts.interfaces ?? systemInterfaces;
  }

  get director(): Director {
    return this.getDirector();
  }

  start(spec: DaemonSpec): void {
    const cfg = this.validate(spec);
    if (cfg.state === 'master' ? this.master : this.backup) fail('EEXIST', 'Daemon has already run');
    if (!this.master && !this.backup) this.threads = Math.min(Math.max(this.director.sysctl.sync_ports, 1), SYNC_PORTS_MAX);
    const r = cfg.state === 'master' ? this.startMaster(cfg) : this.startBackup(cfg);
    if (cfg.state === 'master') this.master = r;
    else this.backup = r;
    // While a daemon runs, the table refuses real servers of another family than their service.
    this.director.table.syncRunning = true;
    this.log.info({ state: cfg.state, mcastIfn: cfg.ifname, syncid: cfg.syncid, maxlen: cfg.maxlen, group: cfg.group, port: cfg.port, ttl: cfg.ttl, threads: this.threads }, 'sync daemon started');
    r.ready.catch((e: Error) => {
      // The kernel would have refused the start; here the socket failed after it: undo it.
      this.log.error({ state: cfg.state, err: e.message }, 'sync daemon socket failed: stopped');
      if ((cfg.state === 'master' ? this.master : this.backup) === r) this.stop(cfg.state);
    });
  }

  stop(state: 'master' | 'backup'): void {
    if (state !== 'master' && state !== 'backup') fail('EINVAL', 'Invalid argument');
    const r = state === 'master' ? this.master : this.backup;
    if (!r) fail('ESRCH', 'No daemon is running');
    if (state === 'master') this.master = null;
    else this.backup = null;
    this.director.table.syncRunning = !!(this.master || this.backup);
    r.master?.detach();
    for (const s of r.sockets) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
    this.log.info({ state }, 'sync daemon stopped');
  }

  list(): DaemonInfo[] {
    const out: DaemonInfo[] = [];
    for (const r of [this.master, this.backup]) {
      if (!r) continue;
      const c = r.cfg;
      out.push({ state: c.state, mcastIfn: c.ifname, syncid: c.syncid, syncMaxlen: c.maxlen, mcastGroup: c.group, mcastPort: c.port, mcastTtl: c.ttl });
    }
    return out;
  }

  /** Resolves when the role's sockets are bound (and joined); rejects when they failed. */
  ready(state: 'master' | 'backup'): Promise<void> {
    const r = state === 'master' ? this.master : this.backup;
    return r ? r.ready : Promise.reject(new Error(`no ${state} sync daemon`));
  }

  logError(e: Error): void {
    this.log.error({ err: e.message }, 'sync daemon configuration failed');
  }

  /** Stop whatever runs (vsd shutdown). */
  stopAll(): void {
    if (this.master) this.stop('master');
    if (this.backup) this.stop('backup');
  }

  status(): Record<string, unknown> {
    return {
      daemons: this.list(),
      ...(this.master?.master ? { master: { ...this.master.master.counters, threads: this.master.master.threads.map((t) => t.pending) } } : {}),
      ...(this.backup?.counters ? { backup: this.backup.counters } : {}),
    };
  }

  /** The kernel's checks and defaults, in its order (ip_vs_genl_new_daemon, start_sync_thread). */
  private validate(spec: DaemonSpec): DaemonConfig {
    const state = spec.state;
    const int = (v: unknown, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
    if (typeof spec.mcastIfn !== 'string' || spec.mcastIfn === '') fail('EINVAL', 'Invalid argument');
    if (!int(spec.syncid, 0xffffffff)) fail('EINVAL', 'Invalid argument');
    if (spec.syncMaxlen !== undefined && !int(spec.syncMaxlen, 0xffff)) fail('EINVAL', 'Invalid argument');
    if (spec.mcastPort !== undefined && !int(spec.mcastPort, 0xffff)) fail('EINVAL', 'Invalid argument');
    if (spec.mcastTtl !== undefined && !int(spec.mcastTtl, 0xff)) fail('EINVAL', 'Invalid argument');
    let af: 4 | 6 = 4;
    let group = SYNC_DEFAULT_GROUP;
    if (spec.mcastGroup !== undefined && spec.mcastGroup !== '') {
      const g = IpAddr.tryParse(spec.mcastGroup);
      if (!g || !isMulticast(g)) fail('EINVAL', 'Invalid argument');
      af = g.family;
      group = g.toString();
    }
    // The sync protocol has no room for a real server of another family than its service.
    for (const svc of this.director.table.services()) {
      if (svc.dests.some((d) => d.af !== svc.af)) fail('EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...');
    }
    const ifname = spec.mcastIfn.slice(0, IFNAME_MAX);
    const iface = this.probe(ifname);
    if (!iface) fail('ENODEV', `Unknown mcast interface: ${ifname}`);
    const hlen = af === 6 ? 48 : 28;
    const backup = state === 'backup';
    const mtu = backup ? Math.min(Math.max(iface.mtu, 1500), 65535) : 1500;
    const minLen = backup ? 1024 : 1;
    const maxlen = spec.syncMaxlen ? Math.min(Math.max(spec.syncMaxlen, minLen), 65535 - hlen) : mtu - hlen;
    if (state !== 'master' && state !== 'backup') fail('EINVAL', 'Invalid argument');
    return {
      state,
      ifname,
      syncid: spec.syncid,
      maxlen,
      af,
      group,
      port: spec.mcastPort || SYNC_DEFAULT_PORT,
      ttl: spec.mcastTtl || SYNC_DEFAULT_TTL,
      iface,
    };
  }

  private startMaster(cfg: DaemonConfig): Running {
    const d = this.director;
    const sockets: Socket[] = [];
    const bound: Promise<void>[] = [];
    for (let i = 0; i < this.threads; i++) {
      const s = createSocket({ type: cfg.af === 6 ? 'udp6' : 'udp4' });
      sockets.push(s);
      bound.push(this.setupMasterSocket(s, cfg, cfg.port + i));
    }
    let up = false;
    const ready = Promise.all(bound).then(() => {
      up = true;
    });
    const master = new SyncMaster(d, { syncid: cfg.syncid, maxlen: cfg.maxlen, threads: this.threads }, this.timers, (i, msg) => {
      // Until the socket is connected the message is lost, as a kernel send would fail.
      if (!up) return;
      sockets[i]!.send(msg, (err) => {
        if (err) this.log.warn({ err: err.message }, 'sync message not sent');
      });
    });
    master.attach();
    return { cfg, sockets, ready, master };
  }

  /** make_send_sock: interface, loop off, TTL, bound to the interface address, connected. */
  private setupMasterSocket(s: Socket, cfg: DaemonConfig, port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      const bindAddr = cfg.af === 6 ? '::' : (cfg.iface.ipv4 ?? '0.0.0.0');
      if (cfg.af === 4 && !cfg.iface.ipv4) this.log.warn({ mcastIfn: cfg.ifname }, 'the multicast interface has no IPv4 address');
      s.bind(0, bindAddr, () => {
        try {
          s.setMulticastInterface(cfg.af === 6 ? `::%${cfg.ifname}` : bindAddr);
          s.setMulticastLoopback(false);
          s.setMulticastTTL(cfg.ttl);
          const size = this.director.sysctl.sync_sock_size;
          if (size > 0) s.setSendBufferSize(size);
        } catch (e) {
          reject(e);
          return;
        }
        s.connect(port, cfg.af === 6 ? `${cfg.group}%${cfg.ifname}` : cfg.group, () => {
          s.removeListener('error', reject);
          s.on('error', (e) => this.log.warn({ err: e.message }, 'sync master socket error'));
          resolve();
        });
      });
    });
  }

  private startBackup(cfg: DaemonConfig): Running {
    const counters: BackupCounters = { messages: 0, ignored: 0, refused: 0, records: { created: 0, updated: 0, stale: 0, replaced: 0 }, skipped: 0, lost: 0, errors: {} };
    const sockets: Socket[] = [];
    const bound: Promise<void>[] = [];
    for (let i = 0; i < this.threads; i++) {
      const s = createSocket({ type: cfg.af === 6 ? 'udp6' : 'udp4', reuseAddr: true });
      sockets.push(s);
      s.on('message', (msg) => this.receive(msg, cfg, counters));
      bound.push(this.setupBackupSocket(s, cfg, cfg.port + i));
    }
    return { cfg, sockets, ready: Promise.all(bound).then(() => {}), counters };
  }

  /** make_receive_sock: bound to group:port, member of the group on the interface. */
  private setupBackupSocket(s: Socket, cfg: DaemonConfig, port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      // An IPv6 group with the interface as scope also ties the socket to that interface.
      s.bind(port, cfg.af === 6 ? `${cfg.group}%${cfg.ifname}` : cfg.group, () => {
        try {
          s.addMembership(cfg.group, cfg.af === 6 ? `::%${cfg.ifname}` : cfg.iface.ipv4);
          const size = this.director.sysctl.sync_sock_size;
          if (size > 0) s.setRecvBufferSize(size);
        } catch (e) {
          reject(e);
          return;
        }
        s.removeListener('error', reject);
        s.on('error', (e) => this.log.warn({ err: e.message }, 'sync backup socket error'));
        resolve();
      });
    });
  }

  /** sync_thread_backup: one datagram, read into a sync_maxlen buffer, then applied. */
  private receive(msg: Buffer, cfg: DaemonConfig, counters: BackupCounters): void {
    if (this.backup?.cfg !== cfg) return;
    counters.messages++;
    // A longer datagram is cut to the buffer, and then fails the size check.
    const res = decodeMessage(msg.length > cfg.maxlen ? msg.subarray(0, cfg.maxlen) : msg, { syncid: cfg.syncid });
    if (res.ignored) {
      counters.ignored++;
      return;
    }
    if (res.version === null) counters.refused++;
    counters.skipped += res.skipped;
    counters.lost += res.lost;
    for (const e of res.errors) counters.errors[e.code] = (counters.errors[e.code] ?? 0) + 1;
    const d = this.director;
    for (const rec of res.records) {
      try {
        counters.records[d.applySyncRecord(rec)]++;
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'sync record not applied');
      }
    }
  }
}

function isMulticast(a: IpAddr): boolean {
  return a.family === 4 ? a.w0 >>> 28 === 0xe : a.w0 >>> 24 === 0xff;
}
