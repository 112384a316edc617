// The native TCP relay (native/relay.cc): worker threads accept, connect and move the bytes
// (epoll, recv/send, splice); this side only takes the decisions, in batches. See relay.cc for
// the record layouts, which this file mirrors.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIR_INPUT, DIR_OUTPUT } from '../../core/proto/tcp.js';
import type { TcpCore } from './tcp-core.js';
import type { ListenerInfo, TcpRelay } from './types.js';

const REC = 8;
const CREC = 12;
const EV_ACCEPT = 1;
const EV_CONNECT_FAIL = 3;
const EV_FIN_IN = 5;
const EV_FIN_OUT = 6;
const EV_RST_IN = 7;
const EV_RST_OUT = 8;
const EVF_CLOSED = 0x100;
const EVF_CONNECTED = 0x200;
const CMD_CONNECT = 1;
const CMD_REFUSE = 2;
const CMD_ABORT = 3;
const CMD_PAUSE_IN = 4;

interface NativeRelay {
  listen(id: number, family: number, w0: number, w1: number, w2: number, w3: number, port: number, backlog: number): number;
  unlisten(id: number): void;
  drain(buf: Float64Array): number;
  submit(buf: Float64Array, count: number): void;
  stats(): Record<string, number>;
  close(): void;
}

interface NativeModule {
  Relay: new (opts: { threads: number; bufSize?: number; splice?: boolean; pipeSize?: number; reusePort?: boolean }, onEvents: () => void) => NativeRelay;
}

export interface NativeRelayOptions {
  /** Worker threads (default: the number of CPUs minus one for the director's thread, 1 to 8). */
  threads?: number;
  /** Per-thread relay buffer in bytes (default 64 KiB). */
  bufSize?: number;
  /** Move bulk transfers with splice(2) (default true). */
  splice?: boolean;
  /** Pipe size for splice, bytes (default 256 KiB; 0: the system default, 64 KiB). */
  pipeSize?: number;
  /**
   * One listening socket per worker with SO_REUSEPORT (the kernel spreads new connections, no
   * shared accept queue) instead of one shared socket (default: true with more than one worker).
   * Note that SO_REUSEPORT lets another process of the same user bind the same address and port.
   */
  reusePort?: boolean;
  /** listen(2) backlog (default 4096, capped by net.core.somaxconn). */
  backlog?: number;
  onError?: (e: unknown) => void;
}

let cached: NativeModule | null | undefined;
let loadError = '';

/** The addon, or null when it is not built (or not loadable here). */
export function loadNativeRelay(): NativeModule | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.platform !== 'linux') {
    loadError = `not available on ${process.platform}`;
    return null;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  // From src/planes/proxy (tsx) or dist/planes/proxy (built): the addon lives under src/.
  const candidates = [join(here, 'native', 'build', 'Release', 'tsvs_proxy.node'), join(here, '..', '..', '..', 'src', 'planes', 'proxy', 'native', 'build', 'Release', 'tsvs_proxy.node')];
  const require = createRequire(import.meta.url);
  for (const p of candidates) {
    if (!existsSync(p)) continue;
    try {
      cached = require(p) as NativeModule;
      return cached;
    } catch (e) {
      loadError = `cannot load ${p}: ${(e as Error).message}`;
    }
  }
  if (!loadError) loadError = 'not built (run node src/planes/proxy/native/build.mjs)';
  return null;
}

/** Why loadNativeRelay() returned null. */
export function nativeRelayLoadError(): string {
  return loadError;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v as number, k]));

export function errnoError(errno: number, syscall: string, what: string): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const e = new Error(`${syscall} ${code} ${what}`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = -errno;
  e.syscall = syscall;
  return e;
}

export class NativeTcpRelay implements TcpRelay {
  readonly kind = 'native' as const;
  private readonly relay: NativeRelay;
  private readonly ev = new Float64Array(REC * 1024);
  private cmd = new Float64Array(CREC * 256);
  private ncmd = 0;
  /** nid of the native connection carrying entry cp, -1 for none. */
  private nidOf = new Float64Array(0);
  private live = 0;
  private readonly listeners = new Map<number, ListenerInfo>();
  private inHandler = false;
  private flushQueued = false;
  private closed = false;
  readonly threads: number;
  private readonly backlog: number;
  private readonly onError: (e: unknown) => void;

  constructor(
    private readonly core: TcpCore,
    opts: NativeRelayOptions = {},
  ) {
    const mod = loadNativeRelay();
    if (!mod) throw new Error(`native proxy relay unavailable: ${loadError}`);
    // One core stays with the director's (JavaScript) thread, which takes every decision.
    this.threads = Math.max(1, Math.min(16, opts.threads ?? Math.min(8, availableParallelism() - 1)));
    this.backlog = opts.backlog ?? 4096;
    this.onError = opts.onError ?? ((e) => queueMicrotask(() => { throw e; }));
    const o: { threads: number; bufSize?: number; splice?: boolean; pipeSize?: number; reusePort?: boolean } = { threads: this.threads };
    if (opts.reusePort !== undefined) o.reusePort = opts.reusePort;
    if (opts.bufSize !== undefined) o.bufSize = opts.bufSize;
    if (opts.splice !== undefined) o.splice = opts.splice;
    if (opts.pipeSize !== undefined) o.pipeSize = opts.pipeSize;
    this.relay = new mod.Relay(o, () => this.onEvents());
    this.grow(core.director.conns.capacity);
  }

  get size(): number {
    return this.live;
  }

  async listen(l: ListenerInfo): Promise<void> {
    const a = l.addr;
    const r = this.relay.listen(l.id, l.family, a.w0, a.w1, a.w2, a.w3, l.port, this.backlog);
    if (r < 0) throw errnoError(-r, 'listen', `${l.host}:${l.port}`);
    this.listeners.set(l.id, l);
  }

  async unlisten(id: number): Promise<void> {
    if (!this.listeners.delete(id)) return;
    this.relay.unlisten(id);
  }

  abort(cp: number): void {
    if (cp >= this.nidOf.length) return;
    const nid = this.nidOf[cp]!;
    if (nid < 0) return;
    this.nidOf[cp] = -1;
    this.live--;
    this.push(CMD_ABORT, nid, cp, 0);
    this.scheduleFlush();
  }

  setInputPaused(cp: number, paused: boolean): void {
    if (cp >= this.nidOf.length) return;
    const nid = this.nidOf[cp]!;
    if (nid < 0) return;
    this.push(CMD_PAUSE_IN, nid, cp, paused ? 1 : 0);
    this.scheduleFlush();
  }

  forEachConn(fn: (cp: number) => void): void {
    const n = this.nidOf;
    for (let i = 0; i < n.length; i++) if (n[i]! >= 0) fn(i);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.relay.close();
    this.listeners.clear();
    this.nidOf.fill(-1);
    this.live = 0;
  }

  status(): Record<string, unknown> {
    return { relay: 'native', threads: this.threads, connections: this.live, ...this.relay.stats() };
  }

  private grow(cap: number): void {
    const n = new Float64Array(Math.max(cap, 16)).fill(-1);
    n.set(this.nidOf);
    this.nidOf = n;
  }

  private push(op: number, nid: number, cp: number, arg: number): number {
    if ((this.ncmd + 1) * CREC > this.cmd.length) {
      if (this.inHandler) {
        const n = new Float64Array(this.cmd.length * 2);
        n.set(this.cmd);
        this.cmd = n;
      } else {
        this.flush();
      }
    }
    const o = this.ncmd++ * CREC;
    const c = this.cmd;
    c[o] = op;
    c[o + 1] = nid;
    c[o + 2] = cp;
    c[o + 10] = arg;
    return o;
  }

  private scheduleFlush(): void {
    if (this.inHandler || this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.ncmd === 0 || this.closed) {
      this.ncmd = 0;
      return;
    }
    this.relay.submit(this.cmd, this.ncmd);
    this.ncmd = 0;
  }

  /** Called (through the thread-safe function) when the queue went from empty to not empty. */
  private onEvents(): void {
    if (this.closed) return;
    this.inHandler = true;
    try {
      const buf = this.ev;
      const cap = buf.length / REC;
      for (;;) {
        const n = this.relay.drain(buf);
        for (let k = 0; k < n; k++) {
          try {
            this.handle(buf, k * REC);
          } catch (e) {
            // never leave a native connection waiting for a decision
            if ((buf[k * REC]! & 0xff) === EV_ACCEPT) this.push(CMD_REFUSE, buf[k * REC + 1]!, -1, 0);
            this.onError(e);
          }
        }
        if (n < cap) break;
      }
    } catch (e) {
      this.onError(e);
    } finally {
      this.inHandler = false;
      this.flush();
    }
  }

  private handle(b: Float64Array, o: number): void {
    const t = b[o]!;
    const type = t & 0xff;
    const nid = b[o + 1]!;
    const core = this.core;
    if (type === EV_ACCEPT) {
      const l = this.listeners.get(b[o + 2]!);
      const cp = l ? core.open(l, b[o + 4]!, b[o + 5]!, b[o + 6]!, b[o + 7]!, b[o + 3]!) : -1;
      if (cp < 0) {
        this.push(CMD_REFUSE, nid, -1, 0);
        return;
      }
      if (cp >= this.nidOf.length) this.grow(Math.max(core.director.conns.capacity, cp + 1));
      const old = this.nidOf[cp]!;
      if (old >= 0) {
        // The entry was still bound to an older connection from the same client port.
        this.push(CMD_ABORT, old, cp, 0);
        this.live--;
      }
      this.nidOf[cp] = nid;
      this.live++;
      const c = core.director.conns;
      const p = this.push(CMD_CONNECT, nid, cp, 0);
      const cmd = this.cmd;
      const w = cp * 4;
      cmd[p + 3] = c.daf[cp]!;
      cmd[p + 4] = c.dport[cp]!;
      cmd[p + 5] = c.daddr[w]!;
      cmd[p + 6] = c.daddr[w + 1]!;
      cmd[p + 7] = c.daddr[w + 2]!;
      cmd[p + 8] = c.daddr[w + 3]!;
      cmd[p + 9] = core.proxyVersion(cp);
      return;
    }
    const cp = b[o + 2]!;
    if (cp < 0 || cp >= this.nidOf.length || this.nidOf[cp] !== nid) return; // entry gone meanwhile
    if (t & EVF_CONNECTED) core.connected(cp);
    const inB = b[o + 3]!;
    const outB = b[o + 5]!;
    if (inB > 0 || outB > 0) core.bytes(cp, inB, b[o + 4]!, outB, b[o + 6]!);
    switch (type) {
      case EV_CONNECT_FAIL:
        core.connectFailed(cp, b[o + 7]!);
        break;
      case EV_FIN_IN:
        core.fin(cp, DIR_INPUT);
        break;
      case EV_FIN_OUT:
        core.fin(cp, DIR_OUTPUT);
        break;
      case EV_RST_IN:
        core.reset(cp, DIR_INPUT);
        break;
      case EV_RST_OUT:
        core.reset(cp, DIR_OUTPUT);
        break;
    }
    if (t & EVF_CLOSED && this.nidOf[cp] === nid) {
      this.nidOf[cp] = -1;
      this.live--;
    }
  }
}
