// HTTP_GET and SSL_GET: fetch one URL per attempt with keepalived's exact request, and judge the
// answer as keepalived does: data received, status code in the accepted set (default 200-299),
// MD5 of the body equal to the digest if one is given (the body as received after the header,
// cut at Content-Length — what genhash prints), and the regex matching (or not, with
// regexNoMatch). connect_timeout bounds the connection and every wait for data.
// HTTPS does not verify certificates unless asked (keepalived does not) and sends SNI only
// when configured (enable_sni).

import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { CheckerConfig, ResolvedChecker } from '../config.js';
import { connectTcp, Inflight, type Probe, type ProbeContext } from './probe.js';

type HttpOptions = Extract<CheckerConfig, { type: 'http' | 'https' }>;

/** Largest response header accepted; a body is hashed as it streams, never held whole. */
const MAX_HEADER_BYTES = 64 * 1024;
/** The part of a body kept for a regex. */
const MAX_REGEX_BYTES = 1024 * 1024;
/** A response that keeps trickling is cut after this many connect_timeouts. */
const OVERALL_TIMEOUTS = 10;

export interface HttpResponseSummary {
  status: number;
  contentLength: number | null;
  bodyBytes: number;
  md5: string;
  bodyStart: string;
}

/** The request keepalived sends (check_http.c, "GET %s HTTP/1.0\r\nUser-Agent: KeepAliveClient…"). */
export function buildRequest(path: string, host: string, protocol: HttpOptions['protocol']): string {
  const p = protocol ?? '1.0';
  const version = p === '1.1' ? '1.1' : '1.0';
  const close = p === '1.1' || p === '1.0C' || p === '1.0c';
  return `GET ${path} HTTP/${version}\r\nUser-Agent: KeepAliveClient\r\n${close ? 'Connection: close\r\n' : ''}Host: ${host}\r\n\r\n`;
}

/** Parse "200", "200-299" items into a predicate (keepalived's status_code list). */
export function statusMatcher(list: (number | string)[] | undefined): (code: number) => boolean {
  if (!list || list.length === 0) return (c) => c >= 200 && c <= 299;
  const ranges = list.map((s) => {
    if (typeof s === 'number') return [s, s] as const;
    const [a, b] = s.split('-').map((x) => Number(x.trim()));
    return [a!, b ?? a!] as const;
  });
  return (c) => ranges.some(([a, b]) => c >= a && c <= b);
}

function hostHeader(c: ResolvedChecker, url: HttpOptions['urls'][number]): string {
  if (url.virtualhost) return url.virtualhost;
  if (c.virtualhost) return c.virtualhost;
  return c.target.family === 6 ? `[${c.target.host}]:${c.target.port}` : `${c.target.host}:${c.target.port}`;
}

export function httpProbe(c: ResolvedChecker): Probe {
  const o = c.options as HttpOptions;
  const inflight = new Inflight();
  return {
    async run(ctx: ProbeContext) {
      const url = o.urls[ctx.urlIndex] ?? o.urls[0]!;
      const host = hostHeader(c, url);
      const tls =
        c.kind === 'https'
          ? {
              verify: o.verifyCertificate ?? false,
              ...(o.sni === true ? { servername: (url.virtualhost ?? c.virtualhost ?? '').replace(/:\d+$/, '') || undefined } : typeof o.sni === 'string' ? { servername: o.sni } : {}),
            }
          : undefined;
      let resp: HttpResponseSummary;
      try {
        const sock = await connectTcp({ ...c.target, bind: ctx.bind ?? c.bind, timeoutMs: c.timing.connectTimeout, ...(tls ? { tls: tls as { verify: boolean; servername?: string } } : {}) }, (s) => inflight.add(s));
        resp = await readResponse(sock, buildRequest(url.path, host, o.protocol), c.timing.connectTimeout, !!url.regex);
      } catch (e) {
        return { ok: false, detail: `${url.path}: ${(e as Error).message}` };
      }
      if (!statusMatcher(url.status)(resp.status)) return { ok: false, detail: `${url.path}: HTTP status code error (${resp.status})` };
      if (url.digest && url.digest.toLowerCase() !== resp.md5) return { ok: false, detail: `${url.path}: MD5 digest error (${resp.md5})` };
      if (url.regex) {
        const matched = new RegExp(url.regex).test(resp.bodyStart);
        if (matched === !!url.regexNoMatch) return { ok: false, detail: `${url.path}: regex match failed` };
      }
      return { ok: true, detail: `${url.path}: ${resp.status}${url.digest ? ' digest ok' : ''}` };
    },
    close: () => inflight.close(),
  };
}

/**
 * Send the request and read the response to its end (EOF or Content-Length), hashing the body.
 * Rejects on a timeout between two reads, on a malformed or empty answer.
 */
export function readResponse(sock: Socket, request: string, timeoutMs: number, keepBody: boolean): Promise<HttpResponseSummary> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let header: Buffer = Buffer.alloc(0);
    let headerDone = false;
    let status = 0;
    let contentLength: number | null = null;
    let bodyBytes = 0;
    let received = 0;
    const md5 = createHash('md5');
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let idle = setTimeout(() => fail(`Timeout WEB read (no data for ${timeoutMs} ms)`), timeoutMs);
    const overall = setTimeout(() => fail('Timeout WEB read (response too slow)'), timeoutMs * OVERALL_TIMEOUTS);
    const done = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(overall);
      sock.destroy();
      if (err) reject(err);
      else resolve({ status, contentLength, bodyBytes, md5: md5.digest('hex'), bodyStart: Buffer.concat(kept).toString('latin1') });
    };
    const fail = (why: string) => done(new Error(why));
    const body = (chunk: Buffer) => {
      let part = chunk;
      if (contentLength !== null && bodyBytes + part.length > contentLength) part = part.subarray(0, Math.max(0, contentLength - bodyBytes));
      if (part.length) {
        md5.update(part);
        bodyBytes += part.length;
        if (keepBody && keptBytes < MAX_REGEX_BYTES) {
          const k = part.subarray(0, MAX_REGEX_BYTES - keptBytes);
          kept.push(k);
          keptBytes += k.length;
        }
      }
      if (contentLength !== null && bodyBytes >= contentLength) done(null);
    };
    sock.on('data', (chunk: Buffer) => {
      if (settled) return;
      received += chunk.length;
      clearTimeout(idle);
      idle = setTimeout(() => fail(`Timeout WEB read (no data for ${timeoutMs} ms)`), timeoutMs);
      if (headerDone) {
        body(chunk);
        return;
      }
      header = Buffer.concat([header, chunk]);
      let end = header.indexOf('\r\n\r\n');
      let sep = 4;
      if (end < 0) {
        end = header.indexOf('\n\n');
        sep = 2;
      }
      if (end < 0) {
        if (header.length > MAX_HEADER_BYTES) fail('HTTP header too large');
        return;
      }
      headerDone = true;
      const text = header.subarray(0, end).toString('latin1');
      const m = /^HTTP\/\d+(?:\.\d+)?\s+(\d{3})/.exec(text);
      if (!m) {
        fail('not an HTTP response');
        return;
      }
      status = Number(m[1]);
      const cl = /^content-length:\s*(\d+)\s*$/im.exec(text);
      if (cl) contentLength = Number(cl[1]);
      const rest = header.subarray(end + sep);
      header = Buffer.alloc(0);
      if (contentLength === 0) done(null);
      else if (rest.length) body(rest);
    });
    sock.on('end', () => {
      if (received === 0) fail('Read, no data received');
      else if (!headerDone) fail('incomplete HTTP response header');
      else done(null);
    });
    sock.on('close', () => {
      if (!settled) {
        if (received === 0) fail('Read, no data received');
        else if (!headerDone) fail('incomplete HTTP response header');
        else done(null);
      }
    });
    sock.on('error', (e: Error) => fail(`read error: ${e.message}`));
    try {
      sock.write(request);
    } catch (e) {
      fail(`Timeout WEB write: ${(e as Error).message}`);
    }
  });
}
