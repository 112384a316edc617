// Each checker against real servers on 127.0.0.1 that answer well, badly, slowly or not at all:
// what passes, what fails and why, and that nothing hangs or throws.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/control/config.js';
import { buildQuery, parseReply } from '../../src/health/checkers/dns.js';
import { buildRequest, statusMatcher } from '../../src/health/checkers/http.js';
import { createProbe } from '../../src/health/checkers/index.js';
import { judgeExit, splitCommand } from '../../src/health/checkers/misc.js';
import { parseHexPattern } from '../../src/health/checkers/probe.js';
import { replyMatches } from '../../src/health/checkers/udp.js';
import { type ResolvedChecker, resolveHealth } from '../../src/health/config.js';
import { Cleanup, scoped, HttpServer, TcpServer } from './helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const tmp = mkdtempSync(join(tmpdir(), 'tsvs-checkers-'));
cleanup.add(tmp, (d) => rmSync(d, { recursive: true, force: true }));

/** The resolved checker for one check of a real server at 127.0.0.1:port. */
function checker(check: Record<string, unknown>, port: number, extra: Record<string, unknown> = {}): ResolvedChecker {
  const cfg = parseConfig(
    JSON.stringify({ services: [{ protocol: 'tcp', address: '127.0.0.9:80', realServers: [{ address: `127.0.0.1:${port}`, check: { connectTimeout: 0.3, ...extra, checkers: [check] } }] }] }),
    't.yaml',
  );
  return resolveHealth(cfg).services[0]!.realServers[0]!.checkers[0]!;
}

async function runOnce(c: ResolvedChecker, urlIndex = 0) {
  const p = createProbe(c);
  try {
    return await p.run({ urlIndex });
  } finally {
    p.close();
  }
}

async function closedPort(): Promise<number> {
  const s = await new TcpServer().start();
  await s.stop();
  return s.port;
}

// ---- TCP -------------------------------------------------------------------------------------

test('TCP_CHECK: up when the server accepts, down when the port is closed', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new TcpServer().start(), (x) => x.stop());
  assert.deepEqual(await runOnce(checker({ type: 'tcp' }, s.port)), { ok: true, detail: 'connected' });
  const r = await runOnce(checker({ type: 'tcp' }, await closedPort()));
  assert.equal(r.ok, false);
  assert.match(r.detail, /ECONNREFUSED/);
});

test('TCP_CHECK: connect_port and connect_ip override the target', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new TcpServer().start(), (x) => x.stop());
  const r = await runOnce(checker({ type: 'tcp', connectPort: s.port, connectIp: '127.0.0.1' }, await closedPort()));
  assert.equal(r.ok, true);
});

// ---- HTTP ------------------------------------------------------------------------------------

test('HTTP_GET: keepalived request format and Host selection', async (ctx) => {
  const cleanup = scoped(ctx);
  assert.equal(buildRequest('/x', 'h:80', undefined), 'GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: h:80\r\n\r\n');
  assert.equal(buildRequest('/x', 'h', '1.1'), 'GET /x HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: h\r\n\r\n');
  assert.equal(buildRequest('/', 'h', '1.0C'), 'GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: h\r\n\r\n');
  const s = cleanup.add(await new HttpServer().start(), (x) => x.stop());
  await runOnce(checker({ type: 'http', urls: [{ path: '/a' }] }, s.port));
  await runOnce(checker({ type: 'http', virtualhost: 'www.example.com', urls: [{ path: '/a' }] }, s.port));
  await runOnce(checker({ type: 'http', virtualhost: 'www.example.com', urls: [{ path: '/a', virtualhost: 'per-url.example' }] }, s.port));
  await runOnce(checker({ type: 'http', urls: [{ path: '/a' }] }, s.port, { virtualhost: 'rs.example' }));
  assert.deepEqual(s.hosts, [`127.0.0.1:${s.port}`, 'www.example.com', 'per-url.example', 'rs.example']);
});

test('HTTP_GET: status codes (default 200-299, lists and ranges)', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new HttpServer().start(), (x) => x.stop());
  const c = checker({ type: 'http', urls: [{ path: '/' }] }, s.port);
  assert.equal((await runOnce(c)).ok, true);
  s.status = 500;
  const r = await runOnce(c);
  assert.equal(r.ok, false);
  assert.match(r.detail, /HTTP status code error \(500\)/);
  assert.equal((await runOnce(checker({ type: 'http', urls: [{ path: '/', status: [200, '500-503'] }] }, s.port))).ok, true);
  s.status = 301;
  assert.equal((await runOnce(c)).ok, false);
  const m = statusMatcher([200, '300-302']);
  assert.deepEqual([199, 200, 201, 300, 302, 303].map(m), [false, true, false, true, true, false]);
});

test('HTTP_GET: the digest is the MD5 of the body, cut at Content-Length', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new HttpServer().start(), (x) => x.stop());
  s.body = 'hello world\n';
  const md5 = createHash('md5').update(s.body).digest('hex');
  assert.equal((await runOnce(checker({ type: 'http', urls: [{ path: '/', digest: md5 }] }, s.port))).ok, true);
  s.body = 'changed\n';
  const r = await runOnce(checker({ type: 'http', urls: [{ path: '/', digest: md5 }] }, s.port));
  assert.equal(r.ok, false);
  assert.match(r.detail, /MD5 digest error/);
  // bytes after Content-Length are not part of the body
  s.handler = (_req, res) => {
    res.socket!.end('HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello EXTRA');
  };
  const five = createHash('md5').update('hello').digest('hex');
  assert.equal((await runOnce(checker({ type: 'http', urls: [{ path: '/', digest: five }] }, s.port))).ok, true);
});

test('HTTP_GET: regex and regex_no_match', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new HttpServer().start(), (x) => x.stop());
  s.body = '<html>status: healthy</html>';
  assert.equal((await runOnce(checker({ type: 'http', urls: [{ path: '/', regex: 'status: (healthy|ok)' }] }, s.port))).ok, true);
  assert.equal((await runOnce(checker({ type: 'http', urls: [{ path: '/', regex: 'maintenance', regexNoMatch: true }] }, s.port))).ok, true);
  assert.equal((await runOnce(checker({ type: 'http', urls: [{ path: '/', regex: 'healthy', regexNoMatch: true }] }, s.port))).ok, false);
});

test('HTTP_GET: a slow answer fails at connect_timeout; garbage and silence fail; nothing hangs', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new HttpServer().start(), (x) => x.stop());
  s.delayMs = 1000;
  const t0 = Date.now();
  const r = await runOnce(checker({ type: 'http', urls: [{ path: '/' }] }, s.port, { connectTimeout: 0.2 }));
  assert.equal(r.ok, false);
  assert.match(r.detail, /Timeout WEB read/);
  assert.ok(Date.now() - t0 < 600, 'failed at the timeout, not after the answer');
  const junk = cleanup.add(await new TcpServer((c) => c.end('SSH-2.0-OpenSSH\r\n\r\n')).start(), (x) => x.stop());
  assert.match((await runOnce(checker({ type: 'http', urls: [{ path: '/' }] }, junk.port))).detail, /not an HTTP response/);
  const mute = cleanup.add(await new TcpServer((c) => c.end()).start(), (x) => x.stop());
  assert.match((await runOnce(checker({ type: 'http', urls: [{ path: '/' }] }, mute.port))).detail, /no data received/);
  // a server that never stops sending headers is cut off
  const flood = cleanup.add(
    await new TcpServer((c) => {
      const chunk = Buffer.alloc(16384, 'a');
      const pump = () => {
        while (c.writable && c.write(chunk));
      };
      c.on('drain', pump);
      pump();
    }).start(),
    (x) => x.stop(),
  );
  assert.match((await runOnce(checker({ type: 'http', urls: [{ path: '/' }] }, flood.port))).detail, /header too large/);
});

test('HTTP_GET: each attempt fetches the URL the state machine asks for', async (ctx) => {
  const cleanup = scoped(ctx);
  const s = cleanup.add(await new HttpServer().start(), (x) => x.stop());
  const paths: string[] = [];
  s.handler = (req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(req.url === '/b' ? 503 : 200);
    res.end();
  };
  const c = checker({ type: 'http', urls: [{ path: '/a' }, { path: '/b' }] }, s.port);
  assert.equal((await runOnce(c, 0)).ok, true);
  assert.equal((await runOnce(c, 1)).ok, false);
  assert.deepEqual(paths, ['/a', '/b']);
});

const certDir = mkdtempSync(join(tmpdir(), 'tsvs-cert-'));
cleanup.add(certDir, (d) => rmSync(d, { recursive: true, force: true }));
const haveOpenssl =
  spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(certDir, 'k.pem'), '-out', join(certDir, 'c.pem'), '-days', '1', '-subj', '/CN=rs.example'], {
    stdio: 'ignore',
  }).status === 0;

test('SSL_GET: HTTPS without certificate verification (as keepalived), SNI when asked', { skip: haveOpenssl ? false : 'openssl is needed to make a test certificate' }, async (ctx) => {
  const cleanup = scoped(ctx);
  const snis: (string | false)[] = [];
  const server = createTlsServer({ key: readFileSync(join(certDir, 'k.pem')), cert: readFileSync(join(certDir, 'c.pem')) }, (sock) => {
    snis.push((sock as unknown as { servername: string | false }).servername);
    sock.on('data', () => sock.end('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.add(server, (s) => s.close());
  const port = (server.address() as { port: number }).port;
  const md5 = createHash('md5').update('ok').digest('hex');
  assert.deepEqual(await runOnce(checker({ type: 'https', urls: [{ path: '/', digest: md5 }] }, port)), { ok: true, detail: '/: 200 digest ok' });
  assert.equal((await runOnce(checker({ type: 'https', sni: 'rs.example', urls: [{ path: '/' }] }, port))).ok, true);
  assert.deepEqual(snis, [false, 'rs.example']);
  const v = await runOnce(checker({ type: 'https', verifyCertificate: true, urls: [{ path: '/' }] }, port));
  assert.equal(v.ok, false, 'a self-signed certificate fails when verification is asked for');
});

// ---- UDP -------------------------------------------------------------------------------------

test('UDP_CHECK: silence passes, an ICMP port unreachable fails; require_reply with a pattern', async (ctx) => {
  const cleanup = scoped(ctx);
  const srv = createSocket('udp4');
  let reply: Buffer | null = null;
  srv.on('message', (_m, r) => {
    if (reply) srv.send(reply, r.port, r.address);
  });
  await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
  cleanup.add(srv, (s) => s.close());
  const port = srv.address().port;
  assert.deepEqual(await runOnce(checker({ type: 'udp', payload: '01 02' }, port, { connectTimeout: 0.1 })), { ok: true, detail: 'no ICMP error' });
  const refused = await runOnce(checker({ type: 'udp' }, await closedPort(), { connectTimeout: 0.3 }));
  assert.equal(refused.ok, false);
  assert.match(refused.detail, /ECONNREFUSED/);
  assert.equal((await runOnce(checker({ type: 'udp', requireReply: true }, port, { connectTimeout: 0.1 }))).ok, false);
  reply = Buffer.from([0xab, 0x12, 0x0f, 0x99]);
  assert.equal((await runOnce(checker({ type: 'udp', requireReply: 'Ab12f' }, port))).ok, true);
  assert.equal((await runOnce(checker({ type: 'udp', requireReply: 'AB 1x 0f 9' }, port))).ok, false); // 09 != 99
  assert.equal((await runOnce(checker({ type: 'udp', requireReply: 'AB 1x 0f x9' }, port))).ok, true);
  assert.equal((await runOnce(checker({ type: 'udp', requireReply: true, maxReplyLength: 3 }, port))).ok, false);
  // keepalived's free-format hex: "Ab12f 3 456" = AB 12 0F 03 45 06
  assert.deepEqual([...parseHexPattern('Ab12f 3 456').bytes], [0xab, 0x12, 0x0f, 0x03, 0x45, 0x06]);
  assert.equal(replyMatches(Buffer.from([1, 2]), parseHexPattern('01 02 03')), true); // compared over the shorter
});

// ---- DNS -------------------------------------------------------------------------------------

test('DNS_CHECK: query built by hand; same ID, QR and RCODE 0 pass; expected answers', async (ctx) => {
  const cleanup = scoped(ctx);
  const q = buildQuery(0x1234, 'www.example.com', 1);
  assert.deepEqual([...q.subarray(0, 12)], [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  assert.equal(q.subarray(12).toString('latin1'), '\x03www\x07example\x03com\x00\x00\x01\x00\x01');
  assert.deepEqual([...buildQuery(1, '.', 6).subarray(12)], [0, 0, 6, 0, 1]);

  let rcode = 0;
  let wrongId = false;
  const srv = createSocket('udp4');
  srv.on('message', (m, r) => {
    // answer: the question echoed, one A record (compressed name) 192.0.2.7
    const id = wrongId ? m.readUInt16BE(0) ^ 1 : m.readUInt16BE(0);
    const question = m.subarray(12);
    const head = Buffer.alloc(12);
    head.writeUInt16BE(id, 0);
    head.writeUInt16BE(0x8180 | rcode, 2);
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(1, 6);
    const ans = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    srv.send(Buffer.concat([head, question, ans]), r.port, r.address);
  });
  await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
  cleanup.add(srv, (s) => s.close());
  const port = srv.address().port;
  assert.equal((await runOnce(checker({ type: 'dns' }, port))).ok, true);
  assert.equal((await runOnce(checker({ type: 'dns', query: 'A', name: 'www.example.com', expect: ['192.0.2.7'] }, port))).ok, true);
  const miss = await runOnce(checker({ type: 'dns', query: 'A', name: 'www.example.com', expect: ['192.0.2.8'] }, port));
  assert.equal(miss.ok, false);
  assert.match(miss.detail, /lacks 192.0.2.8 \(got 192.0.2.7\)/);
  rcode = 2;
  assert.match((await runOnce(checker({ type: 'dns' }, port))).detail, /rcode = 2/);
  rcode = 0;
  wrongId = true;
  assert.match((await runOnce(checker({ type: 'dns' }, port, { connectTimeout: 0.15 }))).detail, /read timeout/);
  const r = parseReply(Buffer.from([0, 1, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual(r, { id: 1, qr: true, rcode: 0, answers: [] });
  assert.throws(() => parseReply(Buffer.from([0, 1, 0x81])));
});

// ---- SMTP ------------------------------------------------------------------------------------

test('SMTP_CHECK: 220 greeting, HELO answered 250, QUIT answered; bad or silent servers fail', async (ctx) => {
  const cleanup = scoped(ctx);
  const seen: string[] = [];
  const good = cleanup.add(
    await new TcpServer((c) => {
      c.write('220-mail.example ESMTP\r\n220 ready\r\n');
      c.on('data', (d) => {
        const line = d.toString();
        seen.push(line);
        if (line.startsWith('HELO')) c.write('250 hello\r\n');
        else if (line.startsWith('QUIT')) c.end('221 bye\r\n');
      });
    }).start(),
    (x) => x.stop(),
  );
  assert.equal((await runOnce(checker({ type: 'smtp' }, good.port))).ok, true);
  assert.deepEqual(seen, ['HELO smtpchecker.keepalived.org\r\n', 'QUIT\r\n']);
  const bad = cleanup.add(await new TcpServer((c) => c.end('554 go away\r\n')).start(), (x) => x.stop());
  assert.match((await runOnce(checker({ type: 'smtp' }, bad.port))).detail, /Bad greeting banner/);
  const mute = cleanup.add(await new TcpServer(() => {}).start(), (x) => x.stop());
  assert.match((await runOnce(checker({ type: 'smtp' }, mute.port, { connectTimeout: 0.15 }))).detail, /Read timeout/);
});

// ---- MISC ------------------------------------------------------------------------------------

test('MISC_CHECK: exit status decides; misc_dynamic weights; timeouts kill the process group', async () => {
  assert.deepEqual(splitCommand(`/bin/check "a b" 'c d' e\\ f`), ['/bin/check', 'a b', 'c d', 'e f']);
  assert.deepEqual(judgeExit(0, null, false), { ok: true, detail: 'exited with status 0', exitCode: 0 });
  assert.equal(judgeExit(5, null, false).ok, false);
  assert.deepEqual(judgeExit(12, null, true), { ok: true, detail: 'exited with status 12 (weight 10)', exitCode: 12 });
  assert.equal(judgeExit(1, null, true).ok, false);
  assert.equal(judgeExit(null, 'SIGSEGV', true).ok, false);

  const script = join(tmp, 'check.sh');
  writeFileSync(script, '#!/bin/sh\nexit "$1"\n');
  chmodSync(script, 0o755);
  assert.equal((await runOnce(checker({ type: 'misc', command: `${script} 0` }, 80))).ok, true);
  const d = await runOnce(checker({ type: 'misc', command: [script, '7'], dynamic: true }, 80));
  assert.deepEqual(d, { ok: true, detail: 'exited with status 7 (weight 5)', exitCode: 7 });
  assert.equal((await runOnce(checker({ type: 'misc', command: `${script} 1`, dynamic: true }, 80))).ok, false);
  assert.match((await runOnce(checker({ type: 'misc', command: '/nonexistent/check' }, 80))).detail, /cannot run/);

  // a script that ignores SIGTERM and leaves a child behind: both are gone after SIGKILL
  const stubborn = join(tmp, 'stubborn.sh');
  const pidFile = join(tmp, 'child.pid');
  writeFileSync(stubborn, `#!/bin/sh\ntrap '' TERM\nsleep 30 &\necho $! > ${pidFile}\nwait\n`);
  chmodSync(stubborn, 0o755);
  const t0 = Date.now();
  const r = await runOnce(checker({ type: 'misc', command: stubborn, timeout: 0.2 }, 80));
  assert.equal(r.ok, false);
  assert.match(r.detail, /timed out after 200 ms/);
  assert.ok(Date.now() - t0 >= 200 && Date.now() - t0 < 4000);
  const childPid = Number(readFileSync(pidFile, 'utf8'));
  // gone, or a zombie waiting for a reaper (this container's init may not reap)
  const running = () => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${childPid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  let alive = true;
  for (let i = 0; i < 50 && alive; i++) {
    alive = running();
    if (alive) await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(alive, false, 'the script’s own children are killed with it');
});
