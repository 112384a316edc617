// Small HTTP pieces shared by vsd's HTTP listeners (the JSON API, the metrics endpoint, the
// dashboard): listening, JSON replies and bodies, loopback checks, bearer tokens, the Host
// check that keeps a loopback listener out of reach of web pages on other origins (DNS
// rebinding), and token files.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { IpAddr } from '../core/addr.js';

/** 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const a = IpAddr.tryParse(host.replace(/^\[|\]$/g, ''));
  if (!a) return false;
  if (a.family === 4) return a.w0 >>> 24 === 127;
  if (a.w0 === 0 && a.w1 === 0 && a.w2 === 0 && a.w3 === 1) return true;
  return a.w0 === 0 && a.w1 === 0 && a.w2 === 0xffff && a.w3 >>> 24 === 127;
}

/**
 * A listener bound to loopback answers only requests whose Host names a loopback address or
 * localhost: a page elsewhere that rebinds its own name to 127.0.0.1 is refused.
 */
export function hostAllowed(req: IncomingMessage, boundLoopback: boolean): boolean {
  if (!boundLoopback) return true;
  const h = req.headers.host;
  if (!h) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(:\d+)?$/.exec(h);
  return !!m && isLoopback(m[1]!.toLowerCase());
}

export function bearerMatches(req: IncomingMessage, token: string): boolean {
  const auth = req.headers.authorization ?? '';
  const given = Buffer.from(auth.startsWith('Bearer ') ? auth.slice(7).trim() : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

export async function closeServer(server: Server | null): Promise<void> {
  if (!server) return;
  await new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
}

/** "host:port" for URLs and logs (IPv6 in brackets). */
export function hostPortText(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The token given, or read from its file, or generated and written to `generatedPath` (0600). */
export function resolveToken(opts: { token?: string; tokenFile?: string; generatedPath: string }): { token: string; generatedFile?: string } {
  if (opts.token) return { token: opts.token };
  if (opts.tokenFile) {
    const t = readFileSync(opts.tokenFile, 'utf8').trim();
    if (t.length < 16) throw new Error(`${opts.tokenFile}: a token must be at least 16 characters`);
    return { token: t };
  }
  const token = randomBytes(24).toString('base64url');
  mkdirSync(dirname(opts.generatedPath), { recursive: true, mode: 0o700 });
  writeFileSync(opts.generatedPath, `${token}\n`, { mode: 0o600 });
  return { token, generatedFile: opts.generatedPath };
}

/** A JSON reply; never cached, never sniffed. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

/** The request body as text, or null when it is larger than `max` bytes (the request is cut). */
export function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
