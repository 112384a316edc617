// The dashboard's HTTP side: the page and its assets (shipped in the package: src/web/assets and
// uPlot from node_modules, nothing from the network), a read model for the page (/web/v1/*),
// and the control API (/api/v1/*), which it forwards to vsd's control socket as vsadm's requests
// go: the page's edits are ordinary control API calls with the bearer token.
//
//   GET  /                       the page
//   GET  /assets/…               its script, styles and uPlot
//   GET  /web/v1/overview        services (with health annotations), totals, table figures
//   GET  /web/v1/history         recent rates for the charts
//   GET  /web/v1/conns?q=&limit= connection-table search
//   POST /api/v1/call            {id, op, args} → the control API (token always required)
//   GET  /api/v1/services …      the HTTP API's read shortcuts (token always required)

import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isOperation, MAX_REQUEST_BYTES } from '../control/protocol.js';
import { IpvsError } from '../core/errors.js';
import { bearerMatches, hostAllowed, readBody, sendJson } from '../control/http-util.js';
import { serviceKeyOf } from '../metrics/labels.js';
import type { VsdSource } from '../metrics/source.js';
import { VERSION } from '../version.js';
import { searchConns } from './conn-search.js';
import type { RateHistory } from './history.js';

export interface WebServerOptions {
  source: VsdSource;
  token: string;
  /** Bound to a loopback address: reads are open (changes still need the token). */
  boundLoopback: boolean;
  history: RateHistory;
  log?: { error(obj: object, msg?: string): void };
}

interface Asset {
  body: Buffer;
  type: string;
}

/** Where the page's files are: next to this module (src/ in development, dist/ when copied there), else src/web/assets. */
export function assetsDir(): string {
  const here = fileURLToPath(new URL('./assets/', import.meta.url));
  if (existsSync(join(here, 'index.html'))) return here;
  return fileURLToPath(new URL('../../src/web/assets/', import.meta.url));
}

function uplotDir(): string {
  return dirname(createRequire(import.meta.url).resolve('uplot'));
}

function loadAssets(): Map<string, Asset> {
  const dir = assetsDir();
  const vendor = uplotDir();
  const files: [string, string, string][] = [
    ['/', join(dir, 'index.html'), 'text/html; charset=utf-8'],
    ['/assets/app.js', join(dir, 'app.js'), 'text/javascript; charset=utf-8'],
    ['/assets/app.css', join(dir, 'app.css'), 'text/css; charset=utf-8'],
    ['/assets/vendor/uPlot.iife.min.js', join(vendor, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    ['/assets/vendor/uPlot.min.css', join(vendor, 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  const out = new Map<string, Asset>();
  for (const [path, file, type] of files) out.set(path, { body: readFileSync(file), type });
  out.set('/index.html', out.get('/')!);
  return out;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** The control API's read shortcuts, as the HTTP API has them. */
const SHORTCUTS: Record<string, string> = {
  '/api/v1/services': 'getServices',
  '/api/v1/connections': 'getConnections',
  '/api/v1/timeouts': 'getTimeouts',
  '/api/v1/info': 'getInfo',
  '/api/v1/status': 'status',
  '/api/v1/daemons': 'getDaemons',
  '/api/v1/sysctl': 'getSysctls',
};

export class WebServer {
  private readonly assets = loadAssets();

  constructor(private readonly opts: WebServerOptions) {}

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res).catch((e) => {
      this.opts.log?.error({ err: e }, 'dashboard request failed');
      if (!res.headersSent) sendJson(res, 500, { ok: false, error: { errno: 'EINVAL', message: 'internal error' } });
      else res.end();
    });
  };

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req, this.opts.boundLoopback)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://vsd');
    const path = url.pathname;
    const asset = this.assets.get(path);
    if (asset && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const authed = bearerMatches(req, this.opts.token);
    if (path.startsWith('/api/')) {
      if (!authed) return unauthorized(res);
      if (req.method === 'POST' && path === '/api/v1/call') return this.call(req, res);
      const op = SHORTCUTS[path];
      if (req.method === 'GET' && op) return this.reply(res, 0, op, []);
      return sendJson(res, 404, { ok: false, error: { errno: 'ENOENT', message: `no such endpoint ${req.method} ${path}` } });
    }
    if (path.startsWith('/web/v1/')) {
      if (!authed && !this.opts.boundLoopback) return unauthorized(res);
      if (req.method !== 'GET') return sendJson(res, 405, { ok: false, error: { errno: 'EINVAL', message: 'GET only' } });
      if (path === '/web/v1/overview') return sendJson(res, 200, await this.overview(authed));
      if (path === '/web/v1/history') return sendJson(res, 200, this.opts.history.toJSON());
      if (path === '/web/v1/conns') {
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 200) || 200, 1), 5000);
        return sendJson(res, 200, await searchConns(this.opts.source.director, url.searchParams.get('q') ?? '', limit));
      }
    }
    sendJson(res, 404, { ok: false, error: { errno: 'ENOENT', message: `no such endpoint ${req.method} ${path}` } });
  }

  private async overview(authed: boolean): Promise<unknown> {
    const src = this.opts.source;
    const d = src.director;
    const services = (await src.services()).map((s) => ({ ...s, key: serviceKeyOf(s) }));
    return {
      time: Date.now(),
      version: VERSION,
      info: d.info(),
      totals: { stats: d.totalStats.counters(), rates: d.totalStats.rates() },
      table: { entries: d.conns.count, capacity: d.conns.capacity, bytes: d.conns.byteSize },
      services,
      auth: { loopback: this.opts.boundLoopback, tokenValid: authed },
    };
  }

  private async call(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, MAX_REQUEST_BYTES);
    if (body === null) return sendJson(res, 413, { ok: false, error: { errno: 'EINVAL', message: 'request too large' } });
    let parsed: { id?: unknown; op?: unknown; args?: unknown };
    try {
      parsed = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { ok: false, error: { errno: 'EINVAL', message: 'malformed JSON body' } });
    }
    const id = typeof parsed?.id === 'number' ? parsed.id : 0;
    if (typeof parsed?.op !== 'string' || !isOperation(parsed.op)) return sendJson(res, 400, { id, ok: false, error: { errno: 'EINVAL', message: `unknown operation ${JSON.stringify(parsed?.op)}` } });
    if (parsed.args !== undefined && !Array.isArray(parsed.args)) return sendJson(res, 400, { id, ok: false, error: { errno: 'EINVAL', message: 'args must be an array' } });
    return this.reply(res, id, parsed.op, (parsed.args as unknown[] | undefined) ?? []);
  }

  /** Forward one operation to vsd's control socket; its checks and errors are vsadm's. */
  private async reply(res: ServerResponse, id: number, op: string, args: unknown[]): Promise<void> {
    try {
      const result = await this.opts.source.call(op, ...args);
      sendJson(res, 200, { id, ok: true, result: result ?? null });
    } catch (e) {
      const errno = e instanceof IpvsError ? e.errno : 'EINVAL';
      sendJson(res, 400, { id, ok: false, error: { errno, message: (e as Error).message } });
    }
  }
}

function unauthorized(res: ServerResponse): void {
  res.setHeader('www-authenticate', 'Bearer');
  sendJson(res, 401, { ok: false, error: { errno: 'EPERM', message: 'missing or wrong bearer token' } });
}

