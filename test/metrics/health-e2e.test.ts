// With vsd's real health checker: a real server that refuses connections is found down, kept at
// weight 0 (inhibit_on_failure), and every view says so — the Prometheus metrics (up, state,
// configured vs effective weight), the /proc file's weight, and the dashboard's read model.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HealthManager } from '../../src/health/manager.js';
import { MetricsExtension, ProcExtension } from '../../src/metrics/extension.js';
import { WebExtension } from '../../src/web/extension.js';
import { parseExposition, sampleKey } from './expo.js';
import { parseIpVs } from './proc-parse.js';
import { startVsd } from './vsd-harness.js';

async function listening(): Promise<{ port: number; close(): Promise<void> }> {
  const s = createServer((c) => c.end());
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const a = s.address();
  return { port: typeof a === 'object' && a ? a.port : 0, close: () => new Promise((r) => s.close(() => r())) };
}

test('health state from the health checker reaches metrics, /proc and the dashboard', { timeout: 30_000 }, async () => {
  const up = await listening();
  const gone = await listening();
  const gonePort = gone.port;
  await gone.close();
  const metrics = new MetricsExtension({ listen: '127.0.0.1:0' });
  const web = new WebExtension({ listen: '127.0.0.1:0', token: 'health-e2e-token-0123456789' });
  const config = `
services:
  - protocol: tcp
    address: 127.0.0.1:1
    scheduler: wrr
    health: { delayLoop: 0.2, retry: 0, delayBeforeRetry: 0.1, connectTimeout: 0.5, warmup: 0, inhibitOnFailure: true }
    realServers:
      - { address: "127.0.0.1:${up.port}", weight: 3, check: { type: tcp } }
      - { address: "127.0.0.1:${gonePort}", weight: 2, check: { type: tcp } }
`;
  const r = await startVsd({ config, extensions: [new HealthManager(), metrics, web] });
  const procDir = join(r.dir, 'proc');
  const p = new ProcExtension({ dir: procDir, intervalMs: 100 });
  try {
    await p.start(r.vsd);
    const labels = (port: number) => ({ local_address: '127.0.0.1', local_mark: '', local_port: '1', proto: 'TCP', remote_address: '127.0.0.1', remote_port: String(port) });
    let e = parseExposition('');
    for (let i = 0; i < 100; i++) {
      e = parseExposition(await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text());
      if (e.samples.get(sampleKey('tsvs_backend_up', labels(gonePort))) === 0 && e.samples.get(sampleKey('tsvs_backend_up', labels(up.port))) === 1) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(e.samples.get(sampleKey('tsvs_backend_up', labels(up.port))), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_up', labels(gonePort))), 0);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_health_state', { ...labels(gonePort), state: 'down' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_configured_weight', labels(gonePort))), 2);
    assert.equal(e.samples.get(sampleKey('node_ipvs_backend_weight', labels(gonePort))), 0, 'inhibited: in the table at weight 0');
    assert.equal(e.samples.get(sampleKey('node_ipvs_backend_weight', labels(up.port))), 3);

    await p.refresh();
    const t = parseIpVs(readFileSync(join(procDir, 'net', 'ip_vs'), 'utf8'));
    assert.deepEqual(t.services[0]!.dests.map((d) => [d.port, d.weight]).sort(), [
      [up.port, 3],
      [gonePort, 0],
    ].sort());

    const ov = (await (await fetch(`http://127.0.0.1:${web.port}/web/v1/overview`)).json()) as { services: { dests: { port: number; health?: { state?: string }; weightReason?: string }[] }[] };
    const d = ov.services[0]!.dests.find((x) => x.port === gonePort)!;
    assert.equal(d.health?.state, 'down');
    assert.equal(typeof d.weightReason, 'string');
  } finally {
    await p.stop();
    await r.stop();
    await up.close();
  }
});
