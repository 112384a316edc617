// Real sockets on loopback for the proxy plane tests: a director with a running clock, the
// plane under test, small real servers that say who they are, and clients with bounded waits.
// Everything a test starts is closed by the harness at the end.

import dgram from 'node:dgram';
import net from 'node:net';
import '../../../src/core/schedulers/index.js';
import { monotonicClock } from '../../../src/core/clock.js';
import { FWD_MASQ } from '../../../src/core/constants.js';
import { Director } from '../../../src/core/director.js';
import type { DestSpec, ServiceKeySpec, ServiceSpec } from '../../../src/core/model.js';
import { ProxyPlane, type ProxyPlaneOptions } from '../../../src/planes/proxy/index.js';

/** 'native-shared': the native relay with one listening socket shared by its workers (no SO_REUSEPORT). */
export type RelayKind = 'js' | 'native' | 'native-shared';

/** A random loopback address for virtual services (127.x.y.z, away from 127.0.0.1). */
export function randomVip(): string {
  const r = () => 1 + Math.floor(Math.random() * 250);
  return `127.${100 + Math.floor(Math.random() * 100)}.${r()}.${r()}`;
}

export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait until cond() holds, polling; throws after ms. */
export async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

export class Harness {
  readonly director = new Director({ now: monotonicClock });
  readonly plane: ProxyPlane;
  private readonly ticker: NodeJS.Timeout;
  private readonly closers: (() => Promise<void> | void)[] = [];

  constructor(relay: RelayKind, opts: ProxyPlaneOptions = {}) {
    const kind = relay === 'native-shared' ? 'native' : relay;
    const native = relay === 'native-shared' ? { threads: 2, reusePort: false } : { threads: 2 };
    this.plane = new ProxyPlane(this.director, { relay: kind, native, retryMs: 0, ...opts });
    this.ticker = setInterval(() => this.director.advance(), 20);
  }

  async start(): Promise<void> {
    await this.plane.start();
  }

  /** Add a service (defaults: wrr, no flags) and return its key. */
  service(protocol: 'tcp' | 'udp', addr: string, port: number, spec: Partial<ServiceSpec> = {}): ServiceKeySpec {
    const af = addr.includes(':') ? 6 : 4;
    const key: ServiceKeySpec = { af, protocol: protocol === 'udp' ? 17 : 6, addr, port, fwmark: 0 };
    this.director.addService({ ...key, schedName: 'wrr', flags: 0, timeout: 0, netmask: af === 4 ? 0xffffffff : 128, ...spec });
    return key;
  }

  dest(key: ServiceKeySpec, addr: string, port: number, spec: Partial<DestSpec> = {}): void {
    this.director.addDest(key, { af: addr.includes(':') ? 6 : 4, addr, port, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0, ...spec });
  }

  /** Let the plane catch up with table changes (listeners opened/closed). */
  async synced(): Promise<void> {
    await this.plane.sync();
  }

  onClose(fn: () => Promise<void> | void): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    clearInterval(this.ticker);
    await this.plane.close();
    for (const f of this.closers.reverse()) await f();
  }

  /** A TCP real server that greets every connection with `name\n`, then echoes. */
  async idServer(name: string, host = '127.0.0.1', opts: { onConn?: (s: net.Socket) => void } = {}): Promise<IdServer> {
    const conns = new Set<net.Socket>();
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      conns.add(s);
      s.on('close', () => conns.delete(s));
      s.on('error', () => {});
      s.write(`${name}\n`);
      if (opts.onConn) opts.onConn(s);
      else {
        s.on('data', (d) => s.write(d));
        s.on('end', () => s.end());
      }
    });
    await new Promise<void>((r) => srv.listen(0, host, () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const st: IdServer = { name, host, port, srv, conns };
    this.onClose(
      () =>
        new Promise<void>((r) => {
          for (const s of conns) s.destroy();
          srv.close(() => r());
        }),
    );
    return st;
  }

  /** A UDP real server that answers every datagram with `name:payload`. */
  async udpServer(name: string, host = '127.0.0.1', onMsg?: (m: Buffer) => void): Promise<{ name: string; port: number; sock: dgram.Socket }> {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    sock.on('message', (m, r) => {
      onMsg?.(m);
      sock.send(`${name}:${m.toString('latin1')}`, r.port, r.address);
    });
    await new Promise<void>((r) => sock.bind(0, host, () => r()));
    this.onClose(() => new Promise<void>((r) => sock.close(() => r())));
    return { name, port: sock.address().port, sock };
  }

  /** Client sockets created through here are destroyed at close. */
  track<T extends net.Socket | dgram.Socket>(s: T): T {
    this.onClose(() => {
      if (s instanceof net.Socket) s.destroy();
      else
        try {
          s.close();
        } catch {
          // closed already
        }
    });
    return s;
  }
}

export interface IdServer {
  name: string;
  host: string;
  port: number;
  srv: net.Server;
  conns: Set<net.Socket>;
}

export interface Client {
  id: string;
  sock: net.Socket;
  /** Everything received after the greeting line. */
  rest: () => string;
  ended: Promise<void>;
  closed: Promise<{ hadError: boolean; error?: NodeJS.ErrnoException }>;
}

/** Connect through the proxy and read the server's greeting line. */
export function connectId(h: Harness, host: string, port: number, opts: { localAddress?: string; allowHalfOpen?: boolean } = {}): Promise<Client> {
  return withTimeout(
    new Promise<Client>((resolve, reject) => {
      const sock = h.track(net.connect({ host, port, allowHalfOpen: opts.allowHalfOpen ?? false, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }));
      let buf = '';
      let id: string | null = null;
      let error: NodeJS.ErrnoException | undefined;
      const ended = new Promise<void>((r) => sock.once('end', () => r()));
      const closed = new Promise<{ hadError: boolean; error?: NodeJS.ErrnoException }>((r) => sock.once('close', (hadError) => r(error ? { hadError, error } : { hadError })));
      sock.on('error', (e) => {
        error = e;
        if (id === null) reject(e);
      });
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        if (id === null) {
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            id = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            resolve({ id, sock, rest: () => buf, ended, closed });
          }
        }
      });
      sock.on('close', () => {
        if (id === null) reject(error ?? new Error('closed before the greeting'));
      });
    }),
    5000,
    `greeting from ${host}:${port}`,
  );
}

/** Connect, read the greeting, close; returns the server name. */
export async function fetchId(h: Harness, host: string, port: number, opts: { localAddress?: string } = {}): Promise<string> {
  const c = await connectId(h, host, port, opts);
  c.sock.end();
  await withTimeout(c.closed, 5000, 'close');
  return c.id;
}

/** Connect and expect the proxy to refuse (reset or close without a byte). */
export function expectRefused(host: string, port: number): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve) => {
      const s = net.connect({ host, port });
      let got = '';
      s.on('data', (d) => {
        got += d.toString();
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('close', () => resolve(got ? `data:${got}` : 'closed'));
    }),
    5000,
    'refusal',
  );
}

/** Send one datagram from sock to host:port and wait for the answer. */
export function udpAsk(sock: dgram.Socket, host: string, port: number, payload: string, ms = 2000): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve) => {
      const on = (m: Buffer) => {
        sock.off('message', on);
        resolve(m.toString('latin1'));
      };
      sock.on('message', on);
      sock.send(payload, port, host);
    }),
    ms,
    `UDP answer from ${host}:${port}`,
  );
}

/** Read what arrives on a socket for a while. */
export function collect(sock: net.Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const on = (d: Buffer) => {
      got += d.toString('latin1');
    };
    sock.on('data', on);
    setTimeout(() => {
      sock.off('data', on);
      resolve(got);
    }, ms);
  });
}
