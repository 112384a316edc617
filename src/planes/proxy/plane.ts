// The proxy data plane: tsvs's default, unprivileged and portable. It listens on the address
// and port of every TCP and UDP virtual service whose real servers are reached by masquerading
// (-m) or by proxy, and carries each client connection to the real server the core schedules
// ("fullnat": the real server sees the director's address, or the client's through the PROXY
// protocol). Every decision (scheduling, persistence, thresholds, states, timeouts, counters)
// is the core's; this plane only moves bytes and reports what happened.
//
//   const plane = new ProxyPlane(director, { logger });
//   await plane.start();          // listeners for the current table; follows every change
//   plane.unservedServices();     // services it cannot carry, with the reason
//   await plane.close();
//
// TCP goes through the native relay (native threads, epoll + splice) when the addon is built,
// else through the pure-JS relay; UDP through dgram sockets. See docs/planes.md.

import type { DataPlane } from '../../control/plane.js';
import type { IpAddr } from '../../core/addr.js';
import { FWD_DROUTE, FWD_LOCALNODE, FWD_MASQ, FWD_PROXY, FWD_TUNNEL, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../core/constants.js';
import type { Director } from '../../core/director.js';
import type { Service } from '../../core/service.js';
import { TcpCore } from './tcp-core.js';
import { JsTcpRelay } from './tcp-js.js';
import { loadNativeRelay, NativeTcpRelay, type NativeRelayOptions, nativeRelayLoadError } from './tcp-native.js';
import type { ListenerInfo, TcpRelay } from './types.js';
import { UdpRelay } from './udp.js';

/** The part of a pino logger the plane uses. */
export interface PlaneLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ProxyPlaneOptions {
  /** TCP relay: 'auto' (native when built, else JS; default), 'native' (fail if absent) or 'js'. */
  relay?: 'auto' | 'native' | 'js';
  /** Native relay tuning (threads, buffer size, splice). */
  native?: NativeRelayOptions;
  logger?: PlaneLogger;
  /** Retry listeners that failed (address not yet configured, port busy) this often, ms (default 5000; 0: never). */
  retryMs?: number;
  /**
   * When a real server is deleted, the kernel silently drops the client's further packets of
   * its connections (unless expire_nodest_conn) until their entries time out; the plane does
   * the same by no longer reading from those clients (default). true: keep relaying them.
   */
  keepNodestConns?: boolean;
  /**
   * Which services this plane may carry (default: all it can). vsd uses it to hand services to
   * another plane (e.g. masquerading services to the packet plane when that one runs); the
   * others are listed by unservedServices() with the reason "carried by another plane".
   */
  carries?: (svc: Service) => boolean;
}

export interface ServiceNote {
  key: string;
  reason: string;
}

interface ListenerState {
  info: ListenerInfo;
  state: 'opening' | 'open' | 'failed';
  error?: string;
  pending?: Promise<void>;
}

const METHOD_NAMES: Record<number, string> = {
  [FWD_MASQ]: 'masquerading',
  [FWD_LOCALNODE]: 'local',
  [FWD_TUNNEL]: 'tunneling',
  [FWD_DROUTE]: 'direct routing',
  [FWD_PROXY]: 'proxy',
};

/** Forwarding methods the proxy plane carries. */
function proxied(m: number): boolean {
  return m === FWD_MASQ || m === FWD_PROXY;
}

function isWildcard(a: IpAddr): boolean {
  return (a.w0 | a.w1 | a.w2 | a.w3) === 0;
}

function bindReason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'EADDRNOTAVAIL':
      return 'address not local to this host';
    case 'EADDRINUSE':
      return 'address and port already in use by another program';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)';
    default:
      return `cannot listen: ${e.message}`;
  }
}

export class ProxyPlane implements DataPlane {
  readonly name = 'proxy';
  readonly tcp: TcpRelay;
  readonly udp: UdpRelay;
  private readonly core: TcpCore;
  private readonly log: PlaneLogger | undefined;
  private readonly listeners = new Map<string, ListenerState>();
  /** Services not carried, by key: reasons of the last reconcile (method mismatch included). */
  private notServed = new Map<string, { reason: string; ours: boolean }>();
  private mixed = new Map<string, string>();
  private nextListenerId = 1;
  private unsubscribe: (() => void) | null = null;
  private unhook: (() => void) | null = null;
  private syncQueued = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly retryMs: number;
  private readonly keepNodest: boolean;
  private readonly carries: (svc: Service) => boolean;
  private readonly pausedIn = new Set<number>();
  private accepting = true;
  private started = false;
  private closed = false;
  /** Own TCP endpoints by port, to refuse a real server that is the virtual service itself. */
  private readonly ownTcp = new Map<number, ListenerInfo[]>();

  constructor(
    readonly director: Director,
    opts: ProxyPlaneOptions = {},
  ) {
    this.log = opts.logger;
    this.retryMs = opts.retryMs ?? 5000;
    this.keepNodest = opts.keepNodestConns ?? false;
    this.carries = opts.carries ?? (() => true);
    this.core = new TcpCore(director, (f, w0, w1, w2, w3, port) => this.isOwnEndpoint(f, w0, w1, w2, w3, port));
    const onError = (e: unknown) => this.log?.error({ err: e }, 'proxy plane error');
    const want = opts.relay ?? 'auto';
    if (want === 'js') {
      this.tcp = new JsTcpRelay(this.core, onError);
    } else if (want === 'native' || loadNativeRelay()) {
      this.tcp = new NativeTcpRelay(this.core, { ...opts.native, onError });
    } else {
      this.log?.info({ reason: nativeRelayLoadError() }, 'native proxy relay not available: using the JS relay');
      this.tcp = new JsTcpRelay(this.core, onError);
    }
    this.udp = new UdpRelay(director, onError);
  }

  /** Which TCP relay carries the connections. */
  get relayKind(): 'native' | 'js' {
    return this.tcp.kind;
  }

  /** Listen for the services in the table, and follow its changes from now on. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.unhook = this.director.addConnFreeListener((cp) => this.connFree(cp));
    this.unsubscribe = this.director.onChange(() => this.queueSync());
    if (this.retryMs > 0) {
      this.retryTimer = setInterval(() => {
        for (const l of this.listeners.values()) {
          if (l.state === 'failed') {
            void this.sync();
            return;
          }
        }
      }, this.retryMs);
      this.retryTimer.unref();
    }
    await this.sync();
  }

  /**
   * Reconcile the listeners with the service table now: open what is missing, close what is no
   * longer wanted (established connections continue), retry what failed. Resolves once every
   * listener operation started here has settled. Changes made through the director trigger
   * this by themselves (coalesced per tick).
   */
  sync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const want = new Map<string, { svc: Service; protocol: 6 | 17 }>();
    const notServed = new Map<string, { reason: string; ours: boolean }>();
    const mixed = new Map<string, string>();
    for (const svc of this.director.table.services()) {
      const methods = new Set<number>();
      for (const d of svc.dests) methods.add(d.fwdMethod);
      const names = (ms: number[]) => ms.sort((x, y) => x - y).map((m) => METHOD_NAMES[m] ?? `method ${m}`).join('/');
      const ours = methods.size === 0 || [...methods].some(proxied);
      let reason = '';
      if (ours && !this.carries(svc)) reason = 'carried by another plane';
      else if (!ours) reason = `only ${names([...methods])} real servers: the packet plane carries them`;
      else if (svc.fwmark) reason = 'firewall-mark service: the proxy plane listens on an address and port';
      else if (svc.protocol === IPPROTO_SCTP) reason = 'SCTP is not carried by the proxy plane';
      else if (svc.protocol !== IPPROTO_TCP && svc.protocol !== IPPROTO_UDP) reason = `protocol ${svc.protocol} is not carried by the proxy plane`;
      else if (svc.port === 0) reason = 'port 0 (every port) cannot be listened on';
      else if (isWildcard(svc.addr)) reason = 'wildcard virtual address (IPVS matches it literally)';
      if (reason) {
        notServed.set(svc.key, { reason, ours: ours && this.carries(svc) });
        continue;
      }
      if ([...methods].some((m) => !proxied(m))) {
        const other = names([...methods].filter((m) => !proxied(m)));
        mixed.set(svc.key, `mixed forwarding methods: the ${other} real servers are proxied too (the real server sees the director's address)`);
      }
      want.set(svc.key, { svc, protocol: svc.protocol as 6 | 17 });
    }
    this.notServed = notServed;
    this.mixed = mixed;
    const pending: Promise<void>[] = [];
    for (const [key, st] of this.listeners) {
      // (while draining, UDP sockets stay: replies leave through them)
      if (want.has(key) && (this.accepting || st.info.protocol === 17)) continue;
      this.listeners.delete(key);
      this.dropOwn(st.info);
      if (st.state !== 'failed') {
        const p = (st.pending ?? Promise.resolve()).then(() => (st.info.protocol === 6 ? this.tcp.unlisten(st.info.id) : this.udp.unlisten(st.info.id)));
        pending.push(p.catch(() => {}));
      }
    }
    if (this.accepting) {
      for (const [key, w] of want) {
        const cur = this.listeners.get(key);
        if (cur && cur.state !== 'failed') continue;
        pending.push(this.open(key, w.svc, w.protocol));
      }
    }
    this.checkNodest();
    return Promise.all(pending).then(() => {});
  }

  /** Services carried now (listening). */
  served(): string[] {
    const out: string[] = [];
    for (const [k, l] of this.listeners) if (l.state === 'open') out.push(k);
    return out;
  }

  /**
   * Services the plane would carry by their forwarding method (masquerading, proxy, or none
   * yet) but cannot, with the reason (DataPlane contract: services of other methods are not
   * listed here; unservedServices() lists everything).
   */
  unserved(): { key: string; reason?: string }[] {
    return this.unservedServices().filter((u) => this.notServed.get(u.key)?.ours !== false);
  }

  /** Every service the plane does not carry, with the reason (fwmark, port 0, SCTP, DR/TUN only, address not local, port busy...). */
  unservedServices(): ServiceNote[] {
    const out: ServiceNote[] = [];
    for (const [key, n] of this.notServed) out.push({ key, reason: n.reason });
    for (const [key, l] of this.listeners) if (l.state === 'failed') out.push({ key, reason: l.error ?? 'cannot listen' });
    if (!this.accepting) for (const svc of this.director.table.services()) if (!this.notServed.has(svc.key)) out.push({ key: svc.key, reason: 'the proxy plane stopped accepting (draining)' });
    return out;
  }

  /** Services carried with a caveat (mixed forwarding methods). */
  degradedServices(): ServiceNote[] {
    return [...this.mixed].map(([key, reason]) => ({ key, reason }));
  }

  /** Stop accepting new connections and flows; established ones continue (drain). */
  async stopAccepting(): Promise<void> {
    this.accepting = false;
    this.udp.stopAccepting();
    const p: Promise<void>[] = [];
    for (const [key, st] of this.listeners) {
      if (st.info.protocol !== 6) continue; // UDP sockets stay: replies leave through them
      this.listeners.delete(key);
      this.dropOwn(st.info);
      if (st.state !== 'failed') p.push((st.pending ?? Promise.resolve()).then(() => this.tcp.unlisten(st.info.id)).catch(() => {}));
    }
    await Promise.all(p);
  }

  /** Stop everything: listeners closed, connections reset, upstream sockets closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.unhook?.();
    if (this.retryTimer) clearInterval(this.retryTimer);
    await Promise.all([...this.listeners.values()].map((l) => l.pending?.catch(() => {})));
    this.listeners.clear();
    this.udp.close();
    await this.tcp.close();
  }

  status(): Record<string, unknown> {
    return {
      relay: this.tcp.kind,
      listening: this.served().length,
      tcp: this.tcp.status(),
      udp: this.udp.status(),
      unserved: this.unservedServices(),
      degraded: this.degradedServices(),
    };
  }

  // ---- internals --------------------------------------------------------------------------

  private queueSync(): void {
    if (this.syncQueued || this.closed) return;
    this.syncQueued = true;
    queueMicrotask(() => {
      this.syncQueued = false;
      this.sync().catch((e) => this.log?.error({ err: e }, 'proxy plane sync failed'));
    });
  }

  private open(key: string, svc: Service, protocol: 6 | 17): Promise<void> {
    const info: ListenerInfo = {
      id: this.nextListenerId++,
      key,
      protocol,
      family: svc.af,
      addr: svc.addr,
      host: svc.addr.toString(),
      port: svc.port,
    };
    const st: ListenerState = { info, state: 'opening' };
    this.listeners.set(key, st);
    const p = (protocol === 6 ? this.tcp.listen(info) : this.udp.listen(info)).then(
      () => {
        if (this.listeners.get(key) !== st) {
          // removed while opening
          if (protocol === 6) void this.tcp.unlisten(info.id);
          else void this.udp.unlisten(info.id);
          return;
        }
        st.state = 'open';
        if (protocol === 6) this.addOwn(info);
        this.log?.info({ service: key, relay: protocol === 6 ? this.tcp.kind : 'udp' }, 'proxy plane listening');
      },
      (e: NodeJS.ErrnoException) => {
        st.state = 'failed';
        st.error = bindReason(e);
        if (this.listeners.get(key) === st) this.log?.warn({ service: key, reason: st.error }, 'proxy plane cannot listen');
      },
    );
    st.pending = p;
    return p;
  }

  private addOwn(l: ListenerInfo): void {
    const list = this.ownTcp.get(l.port);
    if (list) list.push(l);
    else this.ownTcp.set(l.port, [l]);
  }

  private dropOwn(l: ListenerInfo): void {
    const list = this.ownTcp.get(l.port);
    if (!list) return;
    const i = list.indexOf(l);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.ownTcp.delete(l.port);
  }

  private isOwnEndpoint(family: number, w0: number, w1: number, w2: number, w3: number, port: number): boolean {
    const list = this.ownTcp.get(port);
    if (!list) return false;
    for (const l of list) {
      const a = l.addr;
      if (l.family === family && a.w0 === w0 && a.w1 === w1 && a.w2 === w2 && a.w3 === w3) return true;
    }
    return false;
  }

  private connFree(cp: number): void {
    const p = this.director.conns.protocol[cp];
    if (p === IPPROTO_TCP) this.tcp.abort(cp);
    else if (p === IPPROTO_UDP) this.udp.connFree(cp);
    this.pausedIn.delete(cp);
  }

  /**
   * Connections whose real server was deleted: the kernel drops the client's packets (its
   * replies still pass) until the entry expires, or expires it at once with
   * expire_nodest_conn (the core does that, and onConnFree resets the connection here).
   * A real server added back (revived from the trash) lets them flow again.
   */
  private checkNodest(): void {
    if (this.keepNodest) return;
    const d = this.director;
    this.tcp.forEachConn((cp) => {
      const dest = d.connDest(cp);
      const gone = dest !== undefined && !dest.available;
      if (gone && !this.pausedIn.has(cp)) {
        this.pausedIn.add(cp);
        this.tcp.setInputPaused(cp, true);
      } else if (!gone && this.pausedIn.has(cp)) {
        this.pausedIn.delete(cp);
        this.tcp.setInputPaused(cp, false);
      }
    });
  }
}

export { loadNativeRelay, nativeRelayLoadError };
