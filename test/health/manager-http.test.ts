// HTTP real servers that answer 500, answer slowly, or flap, under HTTP_GET with keepalived's
// timing: down after retry+1 failed fetches delay_before_retry apart; back only after the failed
// URL passes and then the whole list passes again a delay_loop later.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Cleanup, scoped, HttpServer, startVsd, waitFor } from './helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const SLACK = 120;

function svc(vip: string, servers: HttpServer[], health: Record<string, unknown>, check: Record<string, unknown> = {}) {
  return {
    services: [
      {
        protocol: 'tcp',
        address: vip,
        health: { warmup: 0, ...health },
        realServers: servers.map((s) => ({ address: `127.0.0.1:${s.port}`, weight: 4, check: { inhibitOnFailure: true, checkers: [{ type: 'http', urls: [{ path: '/health' }], ...check }] } })),
      },
    ],
  };
}

test('HTTP 500: weight 0 after retry+1 failures; back after two good answers a delay_loop apart', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new HttpServer().start(), (s) => s.stop());
  const b = cleanup.add(await new HttpServer().start(), (s) => s.stop());
  const t = cleanup.add(await startVsd(svc('127.0.0.10:80', [a, b], { delayLoop: 0.2, retry: 1, delayBeforeRetry: 0.05, connectTimeout: 0.5 })), (x) => x.stop());
  const A = `127.0.0.1:${a.port}`;
  await waitFor(() => a.requests >= 2, 2000, 'checks running');
  const brokeAt = Date.now();
  const before = a.requests;
  a.status = 500;
  const downAt = await waitFor(() => t.table()[A] === 0, 2000, 'A at weight 0');
  // the first failing fetch within a delay_loop, the retry delay_before_retry later
  assert.ok(downAt - brokeAt <= 200 + 50 + SLACK, `${downAt - brokeAt} ms`);
  assert.equal(a.requests - before, 2, 'exactly retry+1 fetches answered 500');
  assert.ok(t.logged(/HTTP_GET on service \[127.0.0.1\]:tcp:\d+ failed after 1 retries \(\/health: HTTP status code error \(500\)\)/));
  assert.equal(t.table()[`127.0.0.1:${b.port}`], 4, 'the other server keeps its weight');

  // Fixed: the failed URL is retried every max(delay_before_retry, delay_loop); when it passes
  // the list is checked again from the start a delay_loop later, and only then is it up.
  const fixedAt = Date.now();
  const n0 = a.requests;
  a.status = 200;
  const upAt = await waitFor(() => t.table()[A] === 4, 2000, 'A back at weight 4');
  assert.equal(a.requests - n0, 2, 'two good fetches to come back');
  assert.ok(upAt - fixedAt >= 200 - 20, `not before a delay_loop (${upAt - fixedAt} ms)`);
  assert.ok(upAt - fixedAt <= 400 + SLACK, `within two delay_loops (${upAt - fixedAt} ms)`);
});

test('HTTP answering slowly: each fetch fails at connect_timeout; the server goes to weight 0', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new HttpServer().start(), (s) => s.stop());
  const t = cleanup.add(await startVsd(svc('127.0.0.11:80', [a], { delayLoop: 0.1, retry: 1, delayBeforeRetry: 0.05, connectTimeout: 0.15 })), (x) => x.stop());
  await waitFor(() => a.requests >= 1, 2000, 'checks running');
  const slowAt = Date.now();
  a.delayMs = 1000;
  const downAt = await waitFor(() => t.table()[`127.0.0.1:${a.port}`] === 0, 3000, 'slow server at weight 0');
  // two fetches, each cut at 150 ms, 50 ms apart, the first starting within 100 ms
  assert.ok(downAt - slowAt >= 150 + 50 + 150 - 20, `${downAt - slowAt} ms`);
  assert.ok(downAt - slowAt <= 100 + 150 + 50 + 150 + SLACK, `${downAt - slowAt} ms`);
  const st = t.health.annotateDest('tcp:127.0.0.11:80', { addr: '127.0.0.1', port: a.port } as never) as { health: { reason: string } };
  assert.match(st.health.reason, /Timeout WEB read/);
});

test('a flapping server that fails one fetch in two is never taken down (one success resets the count)', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new HttpServer().start(), (s) => s.stop());
  a.handler = (_req, res, n) => {
    res.writeHead(n % 2 ? 200 : 503);
    res.end();
  };
  const t = cleanup.add(await startVsd(svc('127.0.0.12:80', [a], { delayLoop: 0.05, retry: 1, delayBeforeRetry: 0.02, connectTimeout: 0.5 })), (x) => x.stop());
  await waitFor(() => a.requests >= 16, 3000, '16 fetches');
  assert.equal(t.table()[`127.0.0.1:${a.port}`], 4);
  assert.equal(t.logged(/Disabling service/), undefined);
});

test('a server flapping slower than the retry window goes down and up each time', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new HttpServer().start(), (s) => s.stop());
  const t = cleanup.add(await startVsd(svc('127.0.0.13:80', [a], { delayLoop: 0.05, retry: 0, delayBeforeRetry: 0.02, connectTimeout: 0.5 }, { fastRecovery: true })), (x) => x.stop());
  const A = `127.0.0.1:${a.port}`;
  for (let i = 0; i < 3; i++) {
    a.status = 500;
    await waitFor(() => t.table()[A] === 0, 2000, `down #${i + 1}`);
    a.status = 200;
    await waitFor(() => t.table()[A] === 4, 2000, `up #${i + 1}`);
  }
  const status = t.health.status() as { transitions: { up: number; down: number } };
  assert.deepEqual(status.transitions, { up: 3, down: 3 });
  assert.match(t.health.metricsText(), /tsvs_health_transitions_total\{to="down"\} 3/);
});
