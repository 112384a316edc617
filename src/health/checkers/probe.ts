// What every checker is: a probe run once per attempt, that always settles (every wait has a
// timeout, every read a size bound) and never throws into vsd, whatever the server does.

import { createSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface CheckOutcome {
  ok: boolean;
  /** Why (failure reason or what succeeded), for logs and `vsadm -L --json`. */
  detail: string;
  /** MISC: the script's exit code (dynamic weight). */
  exitCode?: number;
}

export interface ProbeContext {
  /** HTTP: which URL this attempt fetches. */
  urlIndex: number;
  /** Overrides the configured source (a pinned path for via: virtual). */
  bind?: { address?: string; port?: number };
}

export interface Probe {
  run(ctx: ProbeContext): Promise<CheckOutcome>;
  /** Abort whatever is in flight (stop or reload): sockets closed, children killed. */
  close(): void;
}

export interface ConnectTarget {
  host: string;
  port: number;
  family: 4 | 6;
  bind?: { address?: string; port?: number } | undefined;
  timeoutMs: number;
  tls?: { servername?: string; verify: boolean };
}

/**
 * A TCP (or TLS) connection within the timeout. Resolves with the socket once connected (and
 * the TLS handshake done); rejects with a readable reason otherwise.
 */
export function connectTcp(t: ConnectTarget, track: (s: Socket) => void): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const opts = {
      host: t.host,
      port: t.port,
      family: t.family,
      ...(t.bind?.address ? { localAddress: t.bind.address } : {}),
      ...(t.bind?.port ? { localPort: t.bind.port } : {}),
    };
    const sock: Socket = t.tls
      ? tlsConnect({
          ...opts,
          rejectUnauthorized: t.tls.verify,
          ...(t.tls.servername ? { servername: t.tls.servername } : {}),
        })
      : netConnect(opts);
    track(sock);
    const timer = setTimeout(() => fail(`connection timeout after ${t.timeoutMs} ms`), t.timeoutMs);
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(why));
    };
    sock.once('error', (e: NodeJS.ErrnoException) => fail(e.code ? `${e.code}${e.message.includes(e.code) ? '' : `: ${e.message}`}` : e.message));
    sock.once(t.tls ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeAllListeners('error');
      sock.on('error', () => {});
      resolve(sock);
    });
  });
}

/** A set of sockets/timers to tear down on close(). */
export class Inflight {
  private readonly sockets = new Set<{ destroy(): void }>();
  closed = false;
  add<T extends { destroy(): void; once(ev: 'close', cb: () => void): unknown }>(s: T): T {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    if (this.closed) s.destroy();
    return s;
  }
  close(): void {
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

/** "Ab12f 3 456" → AB 12 0F 03 45 06, with x/X nibbles as wildcards (keepalived's hex format). */
export function parseHexPattern(text: string): { bytes: Buffer; mask: Buffer } {
  const bytes: number[] = [];
  const mask: number[] = [];
  for (const group of text.trim().split(/\s+/)) {
    if (!group) continue;
    for (let i = 0; i < group.length; i += 2) {
      const pair = group.slice(i, i + 2);
      const nib = (c: string) => (c === 'x' || c === 'X' ? { v: 0, m: 0 } : { v: Number.parseInt(c, 16), m: 0xf });
      if (pair.length === 1) {
        // a lone digit is a whole byte: its (implicit zero) high nibble counts too
        const n = nib(pair);
        bytes.push(n.v);
        mask.push(0xf0 | n.m);
      } else {
        const hi = nib(pair[0]!);
        const lo = nib(pair[1]!);
        bytes.push((hi.v << 4) | lo.v);
        mask.push((hi.m << 4) | lo.m);
      }
    }
  }
  return { bytes: Buffer.from(bytes), mask: Buffer.from(mask) };
}

/** Node's error text for a failed socket operation, short. */
export function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.message ?? String(e);
}

export interface DatagramExchange {
  target: { host: string; port: number; family: 4 | 6 };
  bind: { address?: string; port?: number } | undefined;
  timeoutMs: number;
  /** The datagram to send (built lazily: an error building it fails the attempt). */
  payload: () => Buffer;
  /** The outcome when nothing decisive came back in time. */
  onTimeout: CheckOutcome;
  /** How a socket error reads; how a failed send reads. */
  onError: (code: string) => CheckOutcome;
  onSendError: (code: string) => CheckOutcome;
  /** A datagram arrived: an outcome ends the attempt, undefined keeps waiting. */
  onMessage: (msg: Buffer) => CheckOutcome | undefined;
  /** Where to register the abort of this attempt (the probe's close() runs them). */
  inflight: Set<() => void>;
}

/**
 * One UDP exchange (UDP_CHECK, DNS_CHECK): a connected socket, one datagram out, replies judged
 * until one settles the attempt or the timeout does. Always settles; the socket always closes.
 */
export function exchangeDatagram(x: DatagramExchange): Promise<CheckOutcome> {
  return new Promise<CheckOutcome>((resolve) => {
    const sock = createSocket({ type: x.target.family === 6 ? 'udp6' : 'udp4' });
    let done = false;
    const finish = (r: CheckOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      x.inflight.delete(abort);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const abort = () => finish({ ok: false, detail: 'aborted' });
    x.inflight.add(abort);
    const timer = setTimeout(() => finish(x.onTimeout), x.timeoutMs);
    sock.on('error', (e: NodeJS.ErrnoException) => finish(x.onError(e.code ?? e.message)));
    sock.on('message', (msg) => {
      const r = x.onMessage(msg);
      if (r) finish(r);
    });
    let payload: Buffer;
    try {
      payload = x.payload();
    } catch (e) {
      finish({ ok: false, detail: (e as Error).message });
      return;
    }
    const go = () =>
      sock.connect(x.target.port, x.target.host, () => {
        sock.send(payload, (e) => {
          if (e) finish(x.onSendError((e as NodeJS.ErrnoException).code ?? e.message));
        });
      });
    try {
      if (x.bind) sock.bind({ ...(x.bind.address ? { address: x.bind.address } : {}), port: x.bind.port ?? 0 }, go);
      else go();
    } catch (e) {
      finish({ ok: false, detail: (e as Error).message });
    }
  });
}
