// A client of vsd's control socket: IpvsApi over JSON lines, plus the daemon's own operations.
// vsadm uses it; so can any program that wants to drive a director.

import { createConnection, type Socket } from 'node:net';
import type { ApplyReport, DesiredTable } from '../core/apply.js';
import { type Errno, IpvsError } from '../core/errors.js';
import type { ConnInfo, DestSpec, InfoSnapshot, ServiceInfo, ServiceKeySpec, ServiceSpec, TimeoutsSpec } from '../core/model.js';
import type { DaemonInfo, DaemonSpec, IpvsApi } from './ipvs-api.js';
import { defaultSocketPath, type Reply } from './protocol.js';

/** vsd is not running (or not reachable): what ipvsadm calls "Can't initialize ipvs". */
export class DaemonUnavailable extends Error {
  constructor(
    readonly socketPath: string,
    readonly code: string,
  ) {
    super(`cannot reach vsd on ${socketPath}: ${code}`);
    this.name = 'DaemonUnavailable';
  }
}

export class ControlClient implements IpvsApi {
  private nextId = 1;
  private buf = '';
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly sock: Socket,
    readonly socketPath: string,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('close', () => {
      for (const p of this.pending.values()) p.reject(new DaemonUnavailable(socketPath, 'connection closed'));
      this.pending.clear();
    });
    sock.on('error', () => {});
  }

  static connect(path = defaultSocketPath()): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      sock.once('connect', () => {
        sock.removeAllListeners('error');
        resolve(new ControlClient(sock, path));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => reject(new DaemonUnavailable(path, e.code ?? e.message)));
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      nl = this.buf.indexOf('\n');
      let reply: Reply;
      try {
        reply = JSON.parse(line);
      } catch {
        continue;
      }
      const p = this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new IpvsError(reply.error.errno as Errno, reply.error.message));
    }
  }

  /** Send one request and wait for its reply. */
  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  close(): void {
    this.sock.end();
    this.sock.unref();
  }

  getInfo = () => this.call<InfoSnapshot>('getInfo');
  getServices = () => this.call<ServiceInfo[]>('getServices');
  getService = (k: ServiceKeySpec) => this.call<ServiceInfo>('getService', k);
  addService = (s: ServiceSpec) => this.call<void>('addService', s);
  editService = (s: ServiceSpec) => this.call<void>('editService', s);
  delService = (k: ServiceKeySpec) => this.call<void>('delService', k);
  flush = () => this.call<void>('flush');
  addDest = (k: ServiceKeySpec, d: DestSpec) => this.call<void>('addDest', k, d);
  editDest = (k: ServiceKeySpec, d: DestSpec) => this.call<void>('editDest', k, d);
  delDest = (k: ServiceKeySpec, d: Pick<DestSpec, 'af' | 'addr' | 'port'>) => this.call<void>('delDest', k, d);
  zero = (k?: ServiceKeySpec) => (k ? this.call<void>('zero', k) : this.call<void>('zero'));
  setTimeouts = (t: TimeoutsSpec) => this.call<void>('setTimeouts', t);
  getTimeouts = () => this.call<TimeoutsSpec>('getTimeouts');
  startDaemon = (d: DaemonSpec) => this.call<void>('startDaemon', d);
  stopDaemon = (s: 'master' | 'backup') => this.call<void>('stopDaemon', s);
  getDaemons = () => this.call<DaemonInfo[]>('getDaemons');
  getConnections = () => this.call<ConnInfo[]>('getConnections');
  applyTable = (t: DesiredTable) => this.call<ApplyReport>('applyTable', t);
  status = () => this.call<Record<string, unknown>>('status');
  reload = () => this.call<ApplyReport>('reload');
  getSysctls = () => this.call<Record<string, unknown>>('getSysctls');
  setSysctl = (name: string, value: number | number[]) => this.call<void>('setSysctl', name, value);
}

/** Connect to the running vsd (vsadm's entry point). Throws DaemonUnavailable. */
export function connectApi(path?: string): Promise<ControlClient> {
  return ControlClient.connect(path);
}
