// End to end: a vsd carrying real HTTP connections through the proxy data plane to two local
// real servers, seen through every view at once — Prometheus, the /proc-format files and the
// dashboard's read model must all count the same connections.

import assert from 'node:assert/strict';
import { createServer, get, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MetricsExtension, ProcExtension } from '../../src/metrics/extension.js';
import { ProxyPlane } from '../../src/planes/proxy/index.js';
import { WebExtension } from '../../src/web/extension.js';
import { family, parseExposition, sampleKey } from './expo.js';
import { parseIpVs, parseIpVsStats } from './proc-parse.js';
import { startVsd } from './vsd-harness.js';

async function httpServer(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return { server, port: typeof a === 'object' && a ? a.port : 0 };
}

async function freePort(): Promise<number> {
  const { server, port } = await httpServer('x');
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function fetchOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // a new connection per request (agent: false), as a scheduling test wants
    const q = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    q.on('error', reject);
    q.on('timeout', () => q.destroy(new Error('timeout')));
  });
}

test('real connections through the proxy plane: metrics, /proc files and dashboard agree', { timeout: 60_000 }, async () => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const vport = await freePort();
  const metrics = new MetricsExtension({ listen: '127.0.0.1:0' });
  const proc = new ProcExtension({ intervalMs: 60_000 });
  const web = new WebExtension({ listen: '127.0.0.1:0', token: 'e2e-token-0123456789abcdef' });
  const config = `
services:
  - protocol: tcp
    address: 127.0.0.1:${vport}
    scheduler: rr
    realServers:
      - { address: 127.0.0.1:${a.port} }
      - { address: 127.0.0.1:${b.port} }
`;
  const r = await startVsd({ config, extensions: [metrics, proc, web], planes: (d, log) => [new ProxyPlane(d, { logger: log, relay: 'js' })] });
  const procDir = join(r.dir, 'proc');
  const p2 = new ProcExtension({ dir: procDir, intervalMs: 60_000 });
  try {
    await p2.start(r.vsd);
    const answers: string[] = [];
    for (let i = 0; i < 10; i++) {
      for (let k = 0; k < 50; k++) {
        try {
          answers.push(await fetchOnce(vport));
          break;
        } catch (e) {
          // the plane opens its listener right after start
          if (k === 49) throw e;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
    }
    // rr: the two real servers in turn
    assert.equal(answers.length, 10);
    assert.ok(answers.every((x, i) => i === 0 || x !== answers[i - 1]), answers.join(''));
    r.estimate(2);

    const e = parseExposition(await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text());
    assert.equal(e.samples.get('node_ipvs_connections_total'), 10);
    assert.ok(e.samples.get('node_ipvs_incoming_packets_total')! > 0);
    const svc = { local_address: '127.0.0.1', local_mark: '', local_port: String(vport), proto: 'TCP' };
    assert.equal(e.samples.get(sampleKey('tsvs_service_connections_total', svc)), 10);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_connections_total', { ...svc, remote_address: '127.0.0.1', remote_port: String(a.port) })), 5);
    assert.equal(e.samples.get(sampleKey('tsvs_service_served', svc)), 1);
    assert.ok([...family(e, 'tsvs_plane_status_value').keys()].some((k) => k.includes('plane="proxy"')), 'the proxy plane reports numbers');

    await p2.refresh();
    const st = parseIpVsStats(readFileSync(join(procDir, 'net', 'ip_vs_stats'), 'utf8'));
    assert.equal(st.conns, 10);
    const t = parseIpVs(readFileSync(join(procDir, 'net', 'ip_vs'), 'utf8'));
    assert.equal(t.services[0]!.port, vport);
    assert.deepEqual(t.services[0]!.dests.map((d) => d.port).sort(), [a.port, b.port].sort());

    const ov = (await (await fetch(`http://127.0.0.1:${web.port}/web/v1/overview`)).json()) as { services: { stats: { conns: number }; servedBy: string[] }[] };
    assert.equal(ov.services[0]!.stats.conns, 10);
    assert.deepEqual(ov.services[0]!.servedBy, ['proxy']);
  } finally {
    await p2.stop();
    await r.stop();
    a.server.close();
    b.server.close();
  }
});
