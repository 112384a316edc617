// The dashboard's HTTP side without a browser: assets shipped in the package, the read model,
// the control API forwarded to vsd's socket (with vsadm's errors), the access rules on loopback
// and elsewhere (token, Host check), connection search and the rate history, config errors.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/control/config.js';
import type { VsdExtension } from '../../src/control/daemon.js';
import { closeServer, listen } from '../../src/control/http-util.js';
import { VsdSource } from '../../src/metrics/source.js';
import { webSettings } from '../../src/web/config.js';
import { searchConns } from '../../src/web/conn-search.js';
import { WebExtension } from '../../src/web/extension.js';
import { RateHistory } from '../../src/web/history.js';
import { WebServer } from '../../src/web/server.js';
import { playTcp, type RunningVsd, startVsd, TABLE_YAML } from '../metrics/vsd-harness.js';

const TOKEN = 'server-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const annotator: VsdExtension = {
  name: 'annotator',
  async start() {},
  async stop() {},
  annotateDest: (_k, d) => (d.addr === '10.0.1.1' ? { health: 'up', configuredWeight: 3 } : undefined),
};

function rawGet(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const q = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    q.on('error', reject);
    q.end();
  });
}

describe('dashboard server on loopback', { timeout: 60_000 }, () => {
  let r: RunningVsd;
  let web: WebExtension;
  let base: string;

  before(async () => {
    web = new WebExtension({ token: TOKEN });
    r = await startVsd({ config: `${TABLE_YAML}\nweb: { listen: "127.0.0.1:0" }\n`, extensions: [annotator, web] });
    base = `http://127.0.0.1:${web.port}`;
    playTcp(r, 3, 2);
    r.estimate(2);
  });

  after(async () => {
    await r.stop();
  });

  test('the page and its assets come from the package, with a strict CSP', async () => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'; script-src 'self'/);
    const html = await page.text();
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      assert.ok(!/^[a-z]+:/i.test(m[1]!), `no external asset: ${m[1]}`);
      assert.equal((await fetch(`${base}/${m[1]}`)).status, 200, m[1]);
    }
    const uplot = join(dirname(createRequire(import.meta.url).resolve('uplot')), 'uPlot.iife.min.js');
    assert.equal(await (await fetch(`${base}/assets/vendor/uPlot.iife.min.js`)).text(), readFileSync(uplot, 'utf8'));
    assert.equal((await fetch(`${base}/assets/../../package.json`)).status, 404);
  });

  test('read model on loopback needs no token: services with annotations and keys, totals', async () => {
    const ov = (await (await fetch(`${base}/web/v1/overview`)).json()) as {
      services: { key: string; dests: { addr: string; health?: string; configuredWeight?: number }[] }[];
      totals: { stats: { conns: number } };
      auth: { loopback: boolean; tokenValid: boolean };
    };
    assert.deepEqual(
      ov.services.map((s) => s.key),
      ['tcp:10.0.0.1:80', 'udp:[2001:db8::53]:53', 'fwm4:7'],
    );
    const d = ov.services[0]!.dests.find((x) => x.addr === '10.0.1.1')!;
    assert.equal(d.health, 'up');
    assert.equal(d.configuredWeight, 3);
    assert.equal(ov.totals.stats.conns, 5);
    assert.deepEqual(ov.auth, { loopback: true, tokenValid: false });
  });

  test('the control API always needs the token, and forwards vsadm’s operations and errors', async () => {
    const call = (body: unknown, headers: Record<string, string> = auth) => fetch(`${base}/api/v1/call`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    assert.equal((await call({ id: 1, op: 'getInfo', args: [] }, {})).status, 401);
    assert.equal((await fetch(`${base}/api/v1/services`)).status, 401);
    const ok = await call({ id: 4, op: 'getInfo', args: [] });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { id: 4, ok: true, result: { version: '1.2.1', connTabSize: 4096, numServices: 3 } });
    const svc = { af: 4, protocol: 6, addr: '10.0.0.1', port: 80, fwmark: 0 };
    const missing = await call({ id: 5, op: 'editDest', args: [svc, { af: 4, addr: '10.9.9.9', port: 1, connFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0 }] });
    assert.equal(missing.status, 400);
    const body = (await missing.json()) as { ok: boolean; error: { errno: string; message: string } };
    assert.equal(body.ok, false);
    assert.equal(body.error.errno, 'ENOENT');
    const unknown = await call({ id: 6, op: 'rmrf', args: [] });
    assert.equal(unknown.status, 400);
    assert.equal((await fetch(`${base}/api/v1/call`, { method: 'POST', headers: auth, body: '{' })).status, 400);
    const services = (await (await fetch(`${base}/api/v1/services`, { headers: auth })).json()) as { ok: boolean; result: unknown[] };
    assert.equal(services.ok, true);
    assert.equal(services.result.length, 3);
    const edited = await call({ id: 7, op: 'editDest', args: [svc, { af: 4, addr: '10.0.1.1', port: 8080, connFlags: 0, weight: 11, uThreshold: 0, lThreshold: 0 }] });
    assert.equal(edited.status, 200);
    assert.equal(r.vsd.director.serviceInfos()[0]!.dests.find((x) => x.addr === '10.0.1.1')!.weight, 11);
  });

  test('a loopback listener refuses other Host names (DNS rebinding)', async () => {
    assert.equal(await rawGet(web.port, '/web/v1/overview', 'evil.example'), 403);
    assert.equal(await rawGet(web.port, '/', `attacker.example:${web.port}`), 403);
    assert.equal(await rawGet(web.port, '/', `localhost:${web.port}`), 200);
    assert.equal(await rawGet(web.port, '/', `[::1]:${web.port}`), 200);
  });

  test('connection search: words in any column, limit, "more"', async () => {
    const all = (await (await fetch(`${base}/web/v1/conns?q=`)).json()) as { total: number; matches: unknown[]; more: boolean };
    assert.equal(all.total, 5);
    assert.equal(all.matches.length, 5);
    const tw = (await (await fetch(`${base}/web/v1/conns?q=${encodeURIComponent('TIME_WAIT 10.0.1')}`)).json()) as { matches: { state: string }[] };
    assert.equal(tw.matches.length, 2);
    assert.ok(tw.matches.every((m) => m.state === 'TIME_WAIT'));
    const lim = (await (await fetch(`${base}/web/v1/conns?limit=2`)).json()) as { matches: unknown[]; more: boolean };
    assert.equal(lim.matches.length, 2);
    assert.equal(lim.more, true);
    const none = await searchConns(r.vsd.director, 'no-such-thing', 10, 2);
    assert.deepEqual([none.matches.length, none.scanned, none.more], [0, 5, false]);
  });

  test('rate history: totals and per service, aligned with the sample times', async () => {
    const h = new RateHistory(r.vsd.director, 3);
    for (let i = 0; i < 5; i++) h.sample(1_000_000 + i * 2000);
    const j = h.toJSON();
    assert.deepEqual(j.t, [1004, 1006, 1008]);
    assert.equal(j.totals.inpps.length, 3);
    assert.deepEqual(Object.keys(j.services).sort(), ['fwm4:7', 'tcp:10.0.0.1:80', 'udp:[2001:db8::53]:53']);
    assert.equal(j.services['tcp:10.0.0.1:80']!.inbps[2], r.vsd.director.serviceInfos()[0]!.rates.inbps);
    const served = (await (await fetch(`${base}/web/v1/history`)).json()) as { t: number[] };
    assert.ok(served.t.length >= 1);
  });
});

test('bound beyond loopback: the read model needs the token too (assets do not)', { timeout: 30_000 }, async () => {
  const r = await startVsd({ config: TABLE_YAML, extensions: [] });
  let server: Server | null = null;
  try {
    const source = new VsdSource(r.vsd);
    const web = new WebServer({ source, token: TOKEN, boundLoopback: false, history: new RateHistory(r.vsd.director) });
    server = createServer(web.handle);
    const port = await listen(server, '127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/`)).status, 200);
    assert.equal((await fetch(`${base}/web/v1/overview`)).status, 401);
    assert.equal((await fetch(`${base}/web/v1/conns`)).status, 401);
    assert.equal((await fetch(`${base}/web/v1/overview`, { headers: { authorization: 'Bearer not-the-token-at-all' } })).status, 401);
    const ov = await fetch(`${base}/web/v1/overview`, { headers: auth });
    assert.equal(ov.status, 200);
    assert.deepEqual(((await ov.json()) as { auth: unknown }).auth, { loopback: false, tokenValid: true });
    // any Host is fine there: the token is the guard
    assert.equal(await rawGet(port, '/', 'director.example.net'), 200);
    source.close();
  } finally {
    await closeServer(server);
    await r.stop();
  }
});

test('a reload that moves or removes the web section follows it', { timeout: 30_000 }, async () => {
  const web = new WebExtension({ token: TOKEN });
  const r = await startVsd({ config: `${TABLE_YAML}\nweb: { listen: "127.0.0.1:0" }\n`, extensions: [web] });
  try {
    const first = web.port;
    assert.equal((await fetch(`http://127.0.0.1:${first}/`)).status, 200);
    web.configure(parseConfig(`${TABLE_YAML}\nweb: { listen: "[::1]:0" }\n`));
    await web.settled();
    assert.match(String(web.status().url), /^http:\/\/\[::1\]:\d+\/$/);
    await assert.rejects(fetch(`http://127.0.0.1:${first}/`));
    web.configure(parseConfig(TABLE_YAML));
    await web.settled();
    assert.deepEqual(web.status(), { enabled: false });
  } finally {
    await r.stop();
  }
});

test('web config: defaults, errors with file and line', () => {
  assert.equal(webSettings(parseConfig('services: []\n')), null);
  assert.deepEqual(webSettings(parseConfig('web: {}\n')), { host: '127.0.0.1', port: 9502 });
  assert.deepEqual(webSettings(parseConfig('web: { listen: "[::1]:8443", tokenFile: /etc/tsvs/web-token }\n')), { host: '::1', port: 8443, tokenFile: '/etc/tsvs/web-token' });
  assert.throws(() => webSettings(parseConfig('services: []\nweb:\n  listen: 9502\n', 'vsd.yaml')), { message: /^vsd\.yaml:3:\d+: web\.listen: / });
  assert.throws(() => webSettings(parseConfig('web:\n  token: short\n', 'vsd.yaml')), { message: /^vsd\.yaml:2:\d+: web\.token: / });
  assert.throws(() => webSettings(parseConfig('web:\n  token: "0123456789abcdef0"\n  tokenFile: /x\n', 'vsd.yaml')), { message: /web\.tokenFile: give token or tokenFile, not both/ });
});
