// The portable TCP relay: Node's net module, used where the native relay is not built
// (other systems, a failed build) or when asked for. Plain 'data' handlers with manual
// backpressure (pause the reader while the writer's buffer is over its mark, resume on
// 'drain'): no streams pipeline, no per-chunk closures. Half-close with allowHalfOpen on both
// sockets; resets propagated with resetAndDestroy(); counters flushed to the core at most once a
// second per connection.

import net from 'node:net';
import { IpAddr } from '../../core/addr.js';
import type { Flow } from '../../core/flow.js';
import { DIR_INPUT, DIR_OUTPUT } from '../../core/proto/tcp.js';
import { setFlowSourceText, wordsToText } from './addr-text.js';
import { proxyHeader } from './proxy-protocol.js';
import { ECONNREFUSED, type TcpCore } from './tcp-core.js';
import type { ListenerInfo, TcpRelay } from './types.js';

const errnoOf: Record<string, number> = { ECONNREFUSED, ETIMEDOUT: 110, EHOSTUNREACH: 113, ENETUNREACH: 101 };

class Conn {
  s: net.Socket | null = null;
  inB = 0;
  inSegs = 0;
  outB = 0;
  outSegs = 0;
  dirty = false;
  connected = false;
  /** The entry was released (closed or aborted): no more calls into the core. */
  gone = false;
  pausedIn = false;
  upBlocked = false;
  closedSockets = 0;

  constructor(
    readonly cp: number,
    readonly c: net.Socket,
  ) {}
}

export class JsTcpRelay implements TcpRelay {
  readonly kind = 'js' as const;
  private readonly servers = new Map<number, net.Server>();
  private conns: (Conn | undefined)[] = [];
  private live = 0;
  private readonly dirty: Conn[] = [];
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly core: TcpCore,
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    this.timer = setInterval(() => this.flushDirty(), 1000);
    this.timer.unref();
  }

  get size(): number {
    return this.live;
  }

  listen(l: ListenerInfo): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (c) => this.accept(l, c));
      const onErr = (e: Error) => {
        srv.close();
        reject(e);
      };
      srv.once('error', onErr);
      srv.listen({ host: l.host, port: l.port, exclusive: true, backlog: 4096, ipv6Only: l.family === 6 }, () => {
        srv.off('error', onErr);
        srv.on('error', (e) => this.onError(e));
        this.servers.set(l.id, srv);
        resolve();
      });
    });
  }

  unlisten(id: number): Promise<void> {
    const srv = this.servers.get(id);
    if (!srv) return Promise.resolve();
    this.servers.delete(id);
    // server.close() stops accepting at once; its callback waits for connections to end,
    // which established ones must be allowed to do: do not wait for it.
    srv.close();
    return Promise.resolve();
  }

  abort(cp: number): void {
    const k = this.conns[cp];
    if (!k) return;
    this.release(k);
    this.kill(k);
  }

  /** Reset both sides (a socket still connecting is just dropped: resetAndDestroy would wait for it). */
  private kill(k: Conn): void {
    k.c.resetAndDestroy();
    if (k.s) {
      if (k.connected) k.s.resetAndDestroy();
      else k.s.destroy();
    }
  }

  setInputPaused(cp: number, paused: boolean): void {
    const k = this.conns[cp];
    if (!k) return;
    k.pausedIn = paused;
    if (paused) k.c.pause();
    else if (k.connected && !k.upBlocked) k.c.resume();
  }

  forEachConn(fn: (cp: number) => void): void {
    for (let i = 0; i < this.conns.length; i++) if (this.conns[i]) fn(i);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const srv of this.servers.values()) srv.close();
    this.servers.clear();
    for (const k of this.conns) {
      if (!k) continue;
      this.release(k);
      this.kill(k);
    }
  }

  status(): Record<string, unknown> {
    return { relay: 'js', connections: this.live, listeners: this.servers.size };
  }

  private release(k: Conn): void {
    if (k.gone) return;
    k.gone = true;
    if (this.conns[k.cp] === k) this.conns[k.cp] = undefined;
    this.live--;
  }

  private flushBytes(k: Conn): void {
    if (k.gone) return;
    if (k.inB || k.outB) this.core.bytes(k.cp, k.inB, k.inSegs, k.outB, k.outSegs);
    k.inB = k.inSegs = k.outB = k.outSegs = 0;
  }

  private markDirty(k: Conn): void {
    if (!k.dirty) {
      k.dirty = true;
      this.dirty.push(k);
    }
  }

  private flushDirty(): void {
    const list = this.dirty.splice(0);
    for (const k of list) {
      k.dirty = false;
      this.flushBytes(k);
    }
  }

  private accept(l: ListenerInfo, c: net.Socket): void {
    const addr = c.remoteAddress;
    const port = c.remotePort;
    if (this.closed || addr === undefined || port === undefined) {
      c.destroy();
      return;
    }
    c.on('error', () => {}); // replaced below once the entry exists
    const cp = this.core.openFlow(l, (f: Flow) => setFlowSourceText(f, l.family, addr, port));
    if (cp < 0) {
      c.resetAndDestroy();
      return;
    }
    const old = this.conns[cp];
    if (old) this.abort(cp);
    const k = new Conn(cp, c);
    this.conns[cp] = k;
    this.live++;
    const d = this.core.director.conns;
    const w = cp * 4;
    const family = d.daf[cp]!;
    const host = wordsToText(family, d.daddr[w]!, d.daddr[w + 1]!, d.daddr[w + 2]!, d.daddr[w + 3]!);
    const ppv = this.core.proxyVersion(cp);
    const header = ppv ? proxyHeader(ppv, 'stream', IpAddr.parse(addr.startsWith('::ffff:') && l.family === 4 ? addr.slice(7) : addr), port, l.addr, l.port) : null;
    const s = net.connect({ host, port: d.dport[cp]!, family, noDelay: true, allowHalfOpen: true });
    k.s = s;
    c.removeAllListeners('error');

    s.on('connect', () => {
      if (k.gone) return;
      k.connected = true;
      this.core.connected(cp);
      if (header) s.write(header);
      if (!k.pausedIn) c.resume();
    });
    c.on('data', (b: Buffer) => {
      k.inB += b.length;
      k.inSegs++;
      this.markDirty(k);
      if (!s.write(b)) {
        k.upBlocked = true;
        c.pause();
      }
    });
    s.on('drain', () => {
      k.upBlocked = false;
      if (!k.pausedIn) c.resume();
    });
    s.on('data', (b: Buffer) => {
      k.outB += b.length;
      k.outSegs++;
      this.markDirty(k);
      if (!c.write(b)) s.pause();
    });
    c.on('drain', () => s.resume());
    c.on('end', () => {
      if (!k.gone) {
        this.flushBytes(k);
        this.core.fin(cp, DIR_INPUT);
      }
      s.end();
    });
    s.on('end', () => {
      if (!k.gone) {
        this.flushBytes(k);
        this.core.fin(cp, DIR_OUTPUT);
      }
      c.end();
    });
    c.on('error', () => {
      // client reset (or failed): reset the real server side
      if (!k.gone) {
        this.flushBytes(k);
        this.core.reset(cp, DIR_INPUT);
        this.release(k);
      }
      s.resetAndDestroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (!k.gone) {
        this.flushBytes(k);
        if (!k.connected) this.core.connectFailed(cp, errnoOf[e.code ?? ''] ?? 0);
        else this.core.reset(cp, DIR_OUTPUT);
        this.release(k);
      }
      if (!c.destroyed) c.resetAndDestroy();
    });
    const onClose = () => {
      if (++k.closedSockets === 2 && !k.gone) {
        this.flushBytes(k);
        this.release(k);
      }
    };
    c.on('close', onClose);
    s.on('close', onClose);
  }
}
