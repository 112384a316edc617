// Shapes shared by the proxy plane and its relays.

import type { IpAddr } from '../../core/addr.js';

/** One listening socket: a virtual service's address and port, for one protocol. */
export interface ListenerInfo {
  /** Plane-wide unique id (never reused while the plane lives). */
  readonly id: number;
  /** Service key (Service.key) it listens for. */
  readonly key: string;
  readonly protocol: 6 | 17;
  readonly family: 4 | 6;
  readonly addr: IpAddr;
  /** Address text as Node's socket calls take it. */
  readonly host: string;
  readonly port: number;
}

/** What the plane needs from a TCP relay implementation (native or pure JS). */
export interface TcpRelay {
  readonly kind: 'native' | 'js';
  /** Listen on l; rejects with a Node-style error (code EADDRINUSE, EADDRNOTAVAIL, EACCES...). */
  listen(l: ListenerInfo): Promise<void>;
  /** Stop listening on l; its established connections continue. */
  unlisten(id: number): Promise<void>;
  /** Reset both sides of the connection carried for entry cp (its entry is gone). */
  abort(cp: number): void;
  /** Stop (true) or resume (false) reading from the client of entry cp. */
  setInputPaused(cp: number, paused: boolean): void;
  /** Entries with a connection in flight. */
  forEachConn(fn: (cp: number) => void): void;
  /** Connections in flight. */
  readonly size: number;
  /** Reset every connection and stop listening. */
  close(): Promise<void>;
  status(): Record<string, unknown>;
}
