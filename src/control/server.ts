// vsd's control endpoints: the unix socket (JSON lines, mode 0600, what vsadm uses) and the
// optional HTTP JSON API (loopback by default, every request needs the bearer token). Both
// hand requests to one dispatcher; a bad request gets an error reply and changes nothing.

import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { IpvsError } from '../core/errors.js';
import { bearerMatches, hostAllowed, isLoopback, readBody, sendJson } from './http-util.js';
import { isOperation, MAX_REQUEST_BYTES, type Reply, type Request } from './protocol.js';
import { checkArgs } from './validate.js';

/** Carries out one validated operation. */
export type Dispatch = (op: string, args: unknown[]) => Promise<unknown>;

export interface ControlLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export async function handleRequest(dispatch: Dispatch, req: unknown): Promise<Reply> {
  const id = typeof (req as Request | null)?.id === 'number' ? (req as Request).id : 0;
  try {
    if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new IpvsError('EINVAL', 'a request is a JSON object {"id","op","args"}');
    const op = (req as Request).op;
    if (typeof op !== 'string' || !isOperation(op)) throw new IpvsError('EINVAL', `unknown operation ${JSON.stringify(op)}`);
    const args = checkArgs(op, (req as Request).args);
    const result = await dispatch(op, args);
    return { id, ok: true, result: result ?? null };
  } catch (e) {
    if (e instanceof IpvsError) return { id, ok: false, error: { errno: e.errno, message: e.message } };
    return { id, ok: false, error: { errno: 'EINVAL', message: (e as Error).message ?? String(e) } };
  }
}

export class ControlServer {
  private unixServer: Server | null = null;
  private httpServer: HttpServer | null = null;
  private socketPath = '';
  private readonly clients = new Set<Socket>();

  constructor(
    private readonly dispatch: Dispatch,
    private readonly log: ControlLogger,
  ) {}

  /** Listen on a unix socket (mode 0600). Fails if another daemon answers on it. */
  async listenUnix(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (existsSync(path)) {
      if (await socketAnswers(path)) throw new Error(`another vsd is already running on ${path}`);
      unlinkSync(path); // stale socket of a daemon that died
    }
    const server = createServer((sock) => this.serveConnection(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const old = process.umask(0o177);
      server.listen(path, () => {
        process.umask(old);
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
    server.on('error', (e) => this.log.error({ err: e }, 'control socket error'));
    this.unixServer = server;
    this.socketPath = path;
  }

  private serveConnection(sock: Socket): void {
    this.clients.add(sock);
    sock.setEncoding('utf8');
    let buf = '';
    let queue = Promise.resolve();
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ id: 0, ok: false, error: { errno: 'EINVAL', message: 'request too large' } })}\n`);
        buf = '';
        return;
      }
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (!line.trim()) continue;
        // Requests of one connection are answered in order.
        queue = queue.then(async () => {
          let req: unknown;
          let reply: Reply;
          try {
            req = JSON.parse(line);
            reply = await handleRequest(this.dispatch, req);
          } catch {
            reply = { id: 0, ok: false, error: { errno: 'EINVAL', message: 'malformed JSON request' } };
          }
          if (!sock.destroyed) sock.write(`${JSON.stringify(reply)}\n`);
        });
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => this.clients.delete(sock));
  }

  /** Listen for the HTTP JSON API. Every request must carry `Authorization: Bearer <token>`. */
  async listenHttp(host: string, port: number, token: string): Promise<{ port: number }> {
    const loopback = isLoopback(host);
    const server = createHttpServer((req, res) => {
      this.serveHttp(req, res, token, loopback).catch((e) => {
        this.log.error({ err: e }, 'http api error');
        if (!res.headersSent) sendJson(res, 500, { ok: false, error: { errno: 'EINVAL', message: 'internal error' } });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.httpServer = server;
    const addr = server.address();
    return { port: typeof addr === 'object' && addr ? addr.port : port };
  }

  private async serveHttp(req: IncomingMessage, res: ServerResponse, token: string, loopback: boolean): Promise<void> {
    if (!hostAllowed(req, loopback)) {
      sendJson(res, 421, { ok: false, error: { errno: 'EPERM', message: 'this API answers only to a loopback Host' } });
      return;
    }
    if (!bearerMatches(req, token)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      sendJson(res, 401, { ok: false, error: { errno: 'EPERM', message: 'missing or wrong bearer token' } });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://vsd');
    const shortcuts: Record<string, string> = {
      '/api/v1/services': 'getServices',
      '/api/v1/connections': 'getConnections',
      '/api/v1/timeouts': 'getTimeouts',
      '/api/v1/info': 'getInfo',
      '/api/v1/status': 'status',
      '/api/v1/daemons': 'getDaemons',
      '/api/v1/sysctl': 'getSysctls',
    };
    if (req.method === 'GET' && shortcuts[url.pathname]) {
      const reply = await handleRequest(this.dispatch, { id: 0, op: shortcuts[url.pathname], args: [] });
      sendJson(res, reply.ok ? 200 : 400, reply);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/call') {
      const body = await readBody(req, MAX_REQUEST_BYTES);
      if (body === null) {
        sendJson(res, 413, { ok: false, error: { errno: 'EINVAL', message: 'request too large' } });
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        sendJson(res, 400, { ok: false, error: { errno: 'EINVAL', message: 'malformed JSON body' } });
        return;
      }
      const reply = await handleRequest(this.dispatch, parsed);
      sendJson(res, reply.ok ? 200 : 400, reply);
      return;
    }
    sendJson(res, 404, { ok: false, error: { errno: 'ENOENT', message: `no such endpoint ${req.method} ${url.pathname}` } });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await Promise.all([
      this.unixServer ? new Promise<void>((r) => this.unixServer!.close(() => r())) : null,
      this.httpServer ? new Promise<void>((r) => this.httpServer!.close(() => r())) : null,
    ]);
    this.httpServer?.closeAllConnections();
    if (this.socketPath && existsSync(this.socketPath)) {
      try {
        unlinkSync(this.socketPath);
      } catch {}
    }
  }
}

/** True when something accepts connections on the unix socket. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
