// The Prometheus endpoint of a running vsd with traffic: node_exporter's metric names, types,
// HELP texts and label rules (spec ipvsadm-keepalived.md §5) with values equal to the
// director's, tsvs's own metrics against the estimator and the connection table, health
// annotations and plane counters, access rules, and — when Debian's prometheus-node-exporter is
// installed — node_exporter itself reading our /proc-format files must report the same series.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/control/config.js';
import type { VsdExtension } from '../../src/control/daemon.js';
import type { DataPlane } from '../../src/control/plane.js';
import { IpAddr } from '../../src/core/addr.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../src/core/constants.js';
import { Flow } from '../../src/core/flow.js';
import { TCP_SYN } from '../../src/core/proto/tcp.js';
import { metricsSettings } from '../../src/metrics/config.js';
import { destHealth } from '../../src/metrics/health.js';
import { MetricsExtension, ProcExtension } from '../../src/metrics/extension.js';
import { goIpString, parseBackendLabels } from '../../src/metrics/labels.js';
import { PromExporter } from '../../src/metrics/prometheus.js';
import { Client } from '../helpers/director.js';
import { type Exposition, family, parseExposition, sampleKey } from './expo.js';
import { playTcp, pump, type RunningVsd, startVsd, TABLE_YAML } from './vsd-harness.js';

const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';

async function scrape(port: number, init: RequestInit = {}): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

const NODE_HELP: Record<string, [string, string]> = {
  node_ipvs_connections_total: ['counter', 'The total number of connections made.'],
  node_ipvs_incoming_packets_total: ['counter', 'The total number of incoming packets.'],
  node_ipvs_outgoing_packets_total: ['counter', 'The total number of outgoing packets.'],
  node_ipvs_incoming_bytes_total: ['counter', 'The total amount of incoming data.'],
  node_ipvs_outgoing_bytes_total: ['counter', 'The total amount of outgoing data.'],
  node_ipvs_backend_connections_active: ['gauge', 'The current active connections by local and remote address.'],
  node_ipvs_backend_connections_inactive: ['gauge', 'The current inactive connections by local and remote address.'],
  node_ipvs_backend_weight: ['gauge', 'The current backend weight by local and remote address.'],
};

const healthFake: VsdExtension = {
  name: 'health-fake',
  async start() {},
  async stop() {},
  annotateDest(_key, d) {
    if (d.addr === '10.0.1.2') return { health: 'down', configuredWeight: 5, weightReason: 'inhibit_on_failure' };
    if (d.addr === '10.0.1.1') return { health: { state: 'alive', up: true } };
    return undefined;
  },
};

const fakePlane: DataPlane = {
  name: 'fake',
  async start() {},
  served: () => ['tcp:10.0.0.1:80'],
  unserved: () => [],
  async stopAccepting() {},
  async close() {},
  status: () => ({ drops: { no_dest: 3, overload: 1 }, packets: { rx: 10, tx: 9 }, bytes: { rx: 1000 }, errors: { send: 2 }, tcp: { connections: 2, closing: true }, relay: 'js' }),
};

describe('Prometheus endpoint of a running vsd', { timeout: 60_000 }, () => {
  let r: RunningVsd;
  let metrics: MetricsExtension;
  let e: Exposition;

  before(async () => {
    metrics = new MetricsExtension();
    r = await startVsd({ config: `${TABLE_YAML}\nmetrics: { listen: "127.0.0.1:0" }\n`, extensions: [healthFake, metrics], planes: () => [fakePlane] });
    const d = r.vsd.director;
    const open = playTcp(r, 5, 3);
    pump(open.slice(0, 5), 4);
    for (let i = 0; i < 4; i++) new Client(d, `[2001:db8:9::${i + 1}]:5000`, '[2001:db8::53]:53', IPPROTO_UDP).datagram();
    const f = new Flow();
    f.protocol = IPPROTO_TCP;
    f.setSource(IpAddr.parse('192.0.2.77'), 41000).setDest(IpAddr.parse('10.9.9.9'), 443);
    f.mark = 7;
    assert.ok(d.inPacket(f, TCP_SYN, 60) >= 0);
    r.estimate(3);
    e = parseExposition((await scrape(metrics.port)).text);
  });

  after(async () => {
    await r.stop();
  });

  test('node_exporter families: exact names, types and HELP', () => {
    for (const [name, [type, help]] of Object.entries(NODE_HELP)) {
      assert.equal(e.types.get(name), type, name);
      assert.equal(e.help.get(name), help, name);
    }
  });

  test('node_ipvs totals equal the director counters (what ip_vs_stats shows)', () => {
    const t = r.vsd.director.totalStats.counters();
    assert.ok(t.conns >= 13 && t.inpkts > 0 && t.outpkts > 0);
    assert.equal(e.samples.get('node_ipvs_connections_total'), t.conns);
    assert.equal(e.samples.get('node_ipvs_incoming_packets_total'), t.inpkts);
    assert.equal(e.samples.get('node_ipvs_outgoing_packets_total'), t.outpkts);
    assert.equal(e.samples.get('node_ipvs_incoming_bytes_total'), t.inbytes);
    assert.equal(e.samples.get('node_ipvs_outgoing_bytes_total'), t.outbytes);
  });

  test('node_ipvs_backend_*: one series per real server, node_exporter label values', () => {
    const want = new Map<string, number>();
    const tcp = { local_address: '10.0.0.1', local_port: '80', proto: 'TCP', local_mark: '' };
    want.set(sampleKey('node_ipvs_backend_weight', { ...tcp, remote_address: '10.0.1.1', remote_port: '8080' }), 3);
    want.set(sampleKey('node_ipvs_backend_weight', { ...tcp, remote_address: '10.0.1.2', remote_port: '8080' }), 1);
    const udp6 = { local_address: '2001:db8::53', local_port: '53', proto: 'UDP', local_mark: '' };
    want.set(sampleKey('node_ipvs_backend_weight', { ...udp6, remote_address: '2001:db8::1:53', remote_port: '5353' }), 2);
    // fwmark: no address, port 0, the mark as the kernel prints it (%08X)
    want.set(sampleKey('node_ipvs_backend_weight', { local_address: '', local_port: '0', proto: 'FWM', local_mark: '00000007', remote_address: '10.0.2.1', remote_port: '0' }), 4);
    assert.deepEqual(family(e, 'node_ipvs_backend_weight'), want);

    for (const s of r.vsd.director.serviceInfos()) {
      for (const d of s.dests) {
        const labels = {
          local_address: s.fwmark ? '' : s.addr,
          local_port: String(s.fwmark ? 0 : s.port),
          proto: s.fwmark ? 'FWM' : s.protocol === IPPROTO_UDP ? 'UDP' : 'TCP',
          local_mark: s.fwmark ? s.fwmark.toString(16).toUpperCase().padStart(8, '0') : '',
          remote_address: d.addr,
          remote_port: String(d.port),
        };
        assert.equal(e.samples.get(sampleKey('node_ipvs_backend_connections_active', labels)), d.activeConns, `${d.addr} active`);
        assert.equal(e.samples.get(sampleKey('node_ipvs_backend_connections_inactive', labels)), d.inactConns, `${d.addr} inactive`);
      }
    }
    const active = [...family(e, 'node_ipvs_backend_connections_active').values()].reduce((a, b) => a + b, 0);
    const inactive = [...family(e, 'node_ipvs_backend_connections_inactive').values()].reduce((a, b) => a + b, 0);
    assert.equal(active, 5 + 1); // five open TCP connections, one fwmark SYN
    assert.equal(inactive, 3 + 4); // three in TIME_WAIT, four UDP entries
  });

  test('labels print in node_exporter order (alphabetical)', async () => {
    const { text } = await scrape(metrics.port);
    assert.match(text, /^node_ipvs_backend_weight\{local_address="10\.0\.0\.1",local_mark="",local_port="80",proto="TCP",remote_address="10\.0\.1\.1",remote_port="8080"\} 3$/m);
  });

  test('tsvs rates equal the estimator (what vsadm -L --rate prints)', () => {
    const d = r.vsd.director;
    const tr = d.totalStats.rates();
    assert.ok(tr.inpps > 0 && tr.inbps > 0);
    assert.equal(e.samples.get('tsvs_connections_per_second'), tr.cps);
    assert.equal(e.samples.get('tsvs_incoming_packets_per_second'), tr.inpps);
    assert.equal(e.samples.get('tsvs_outgoing_bytes_per_second'), tr.outbps);
    for (const s of d.serviceInfos()) {
      const sl = { local_address: s.fwmark ? '' : s.addr, local_port: String(s.fwmark ? 0 : s.port), proto: s.fwmark ? 'FWM' : s.protocol === IPPROTO_UDP ? 'UDP' : 'TCP', local_mark: s.fwmark ? '00000007' : '' };
      assert.equal(e.samples.get(sampleKey('tsvs_service_incoming_packets_per_second', sl)), s.rates.inpps);
      assert.equal(e.samples.get(sampleKey('tsvs_service_incoming_bytes_total', sl)), s.stats.inbytes);
      assert.equal(e.samples.get(sampleKey('tsvs_service_connections_total', sl)), s.stats.conns);
      for (const dd of s.dests) {
        const bl = { ...sl, remote_address: dd.addr, remote_port: String(dd.port) };
        assert.equal(e.samples.get(sampleKey('tsvs_backend_incoming_bytes_per_second', bl)), dd.rates.inbps);
        assert.equal(e.samples.get(sampleKey('tsvs_backend_outgoing_packets_total', bl)), dd.stats.outpkts);
        assert.equal(e.samples.get(sampleKey('tsvs_backend_connections_persistent', bl)), dd.persistConns);
      }
    }
    assert.equal(e.types.get('tsvs_backend_incoming_bytes_total'), 'counter');
    assert.equal(e.types.get('tsvs_service_connections_per_second'), 'gauge');
  });

  test('connection table: entries by state, size and memory', () => {
    const d = r.vsd.director;
    assert.equal(e.samples.get('tsvs_connection_table_entries'), d.conns.count);
    assert.equal(e.samples.get('tsvs_connection_table_memory_bytes'), d.conns.byteSize);
    assert.equal(e.samples.get('tsvs_connection_table_capacity'), d.conns.capacity);
    assert.equal(e.samples.get('tsvs_connection_table_hash_size'), 4096);
    assert.equal(e.samples.get(sampleKey('tsvs_connection_entries', { kind: 'connection', proto: 'TCP', state: 'ESTABLISHED' })), 5);
    assert.equal(e.samples.get(sampleKey('tsvs_connection_entries', { kind: 'connection', proto: 'TCP', state: 'TIME_WAIT' })), 3);
    assert.equal(e.samples.get(sampleKey('tsvs_connection_entries', { kind: 'connection', proto: 'TCP', state: 'SYN_RECV' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_connection_entries', { kind: 'connection', proto: 'UDP', state: 'UDP' })), 4);
    assert.equal(e.samples.get(sampleKey('tsvs_connection_entries', { kind: 'template', proto: 'IP', state: 'NONE' })), 1);
    const sum = [...family(e, 'tsvs_connection_entries').values()].reduce((a, b) => a + b, 0);
    assert.equal(sum, d.conns.count);
  });

  test('health annotations: up, state and configured weight', () => {
    const b = (addr: string) => ({ local_address: '10.0.0.1', local_port: '80', proto: 'TCP', local_mark: '', remote_address: addr, remote_port: '8080' });
    assert.equal(e.samples.get(sampleKey('tsvs_backend_up', b('10.0.1.1'))), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_up', b('10.0.1.2'))), 0);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_health_state', { ...b('10.0.1.1'), state: 'alive' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_health_state', { ...b('10.0.1.2'), state: 'down' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_backend_configured_weight', b('10.0.1.2'))), 5);
    assert.equal(family(e, 'tsvs_backend_up').size, 2, 'servers nobody checks have no tsvs_backend_up');
  });

  test('data-plane counters: drops by reason, packets, errors, other status numbers; coverage', () => {
    assert.equal(e.samples.get(sampleKey('tsvs_plane_drops_total', { plane: 'fake', reason: 'no_dest' })), 3);
    assert.equal(e.samples.get(sampleKey('tsvs_plane_drops_total', { plane: 'fake', reason: 'overload' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_plane_packets_total', { plane: 'fake', direction: 'rx' })), 10);
    assert.equal(e.samples.get(sampleKey('tsvs_plane_bytes_total', { plane: 'fake', direction: 'rx' })), 1000);
    assert.equal(e.samples.get(sampleKey('tsvs_plane_errors_total', { plane: 'fake', kind: 'send' })), 2);
    assert.equal(e.samples.get(sampleKey('tsvs_plane_status_value', { plane: 'fake', name: 'tcp.connections' })), 2);
    assert.equal(e.samples.get(sampleKey('tsvs_plane_status_value', { plane: 'fake', name: 'tcp.closing' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_service_served', { local_address: '10.0.0.1', local_port: '80', proto: 'TCP', local_mark: '' })), 1);
    assert.equal(e.samples.get(sampleKey('tsvs_service_served', { local_address: '', local_port: '0', proto: 'FWM', local_mark: '00000007' })), 0);
    assert.equal(e.samples.get('tsvs_services'), 3);
    assert.equal(e.samples.get('tsvs_backends'), 4);
    assert.equal(e.samples.get(sampleKey('tsvs_defense_active', { strategy: 'drop_entry' })), 0);
    assert.equal(e.samples.get(sampleKey('tsvs_build_info', { version: '0.1.0' })), 1);
    assert.ok(e.samples.has('process_resident_memory_bytes'), 'Node process metrics');
  });

  test('numbers move with more traffic; a zeroed director counts from zero again', async () => {
    const before = e.samples.get('node_ipvs_incoming_packets_total')!;
    playTcp(r, 2, 0, 42000);
    r.estimate(1);
    const e2 = parseExposition((await scrape(metrics.port)).text);
    assert.ok(e2.samples.get('node_ipvs_incoming_packets_total')! > before);
    assert.equal(e2.samples.get('node_ipvs_connections_total'), r.vsd.director.totalStats.counters().conns);
    r.vsd.director.zero();
    const e3 = parseExposition((await scrape(metrics.port)).text);
    assert.equal(e3.samples.get('node_ipvs_incoming_packets_total'), 0);
  });

  test('access: only /metrics, GET/HEAD, Host must be loopback on a loopback listener', async () => {
    const base = `http://127.0.0.1:${metrics.port}`;
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/metrics`, { method: 'HEAD' })).status, 200);
    const rebound = await new Promise<number>((resolve, reject) => {
      const s = request({ host: '127.0.0.1', port: metrics.port, path: '/metrics', headers: { host: 'evil.example:9501' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      s.on('error', reject);
      s.end();
    });
    assert.equal(rebound, 403);
    const { type } = await scrape(metrics.port);
    assert.match(type ?? '', /^text\/plain; version=0\.0\.4/);
  });
});

test('a token-protected endpoint refuses scrapes without the token', { timeout: 30_000 }, async () => {
  const m = new MetricsExtension();
  const r = await startVsd({ config: `${TABLE_YAML}\nmetrics: { listen: "127.0.0.1:0", token: "0123456789abcdef-metrics" }\n`, extensions: [m] });
  try {
    assert.equal((await scrape(m.port)).status, 401);
    assert.equal((await scrape(m.port, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
    const ok = await scrape(m.port, { headers: { authorization: 'Bearer 0123456789abcdef-metrics' } });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /^node_ipvs_backend_weight\{/m);
  } finally {
    await r.stop();
  }
});

test('a reload that removes the metrics section closes the endpoint; --metrics wins over the config', { timeout: 30_000 }, async () => {
  const m = new MetricsExtension();
  const r = await startVsd({ config: `${TABLE_YAML}\nmetrics: { listen: "127.0.0.1:0" }\n`, extensions: [m] });
  try {
    const port = m.port;
    assert.equal((await scrape(port)).status, 200);
    m.configure(parseConfig(TABLE_YAML));
    await m.settled();
    await assert.rejects(scrape(port));
    assert.deepEqual(m.status(), { enabled: false });
    m.configure(parseConfig(`${TABLE_YAML}\nmetrics: { listen: "127.0.0.1:0" }\n`));
    await m.settled();
    assert.equal((await scrape(m.port)).status, 200);
  } finally {
    await r.stop();
  }
  const cli = new MetricsExtension({ listen: '127.0.0.1:0' });
  const r2 = await startVsd({ config: TABLE_YAML, extensions: [cli] });
  try {
    assert.equal((await scrape(cli.port)).status, 200);
  } finally {
    await r2.stop();
  }
});

test('backend labels: canonical order, unknown names refused, dropped labels summed (--collector.ipvs.backend-labels)', { timeout: 30_000 }, async () => {
  assert.deepEqual(parseBackendLabels(['proto', 'local_port']), ['local_port', 'proto']);
  assert.throws(() => parseBackendLabels(['local_port', 'zeta', 'alpha']), { message: 'unknown IPVS backend labels: "alpha, zeta"' });
  const x = new PromExporter({ backendLabels: ['local_port'], defaultMetrics: false });
  const svc = (port: number, dests: [string, number][]) => ({
    af: 4 as const,
    protocol: 6,
    addr: '192.168.0.22',
    port,
    fwmark: 0,
    schedName: 'rr',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    peName: '',
    proxyProtocol: 0 as const,
    stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
    rates: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
    dests: dests.map(([addr, weight]) => ({ af: 4 as const, addr, port, connFlags: 0, weight, uThreshold: 0, lThreshold: 0, activeConns: weight * 2, inactConns: 1, persistConns: 0, tunType: 0, tunPort: 0, tunFlags: 0, flags: 1, stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 }, rates: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 } })),
  });
  const snap = {
    services: [
      svc(3306, [
        ['192.168.82.22', 100],
        ['192.168.82.23', 500],
      ]),
      svc(80, [['192.168.82.24', 7]]),
    ],
    totals: { stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 }, rates: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 } },
    table: { entries: 0, capacity: 0, bytes: 0, hashSize: 4096 },
    connStates: [],
    planes: {},
    sysctl: {},
    drops: { noDest: 4 },
  };
  const text = await x.render(snap);
  assert.match(text, /^tsvs_drops_total\{reason="noDest"\} 4$/m);
  assert.match(text, /^node_ipvs_backend_weight\{local_port="3306"\} 600$/m);
  assert.match(text, /^node_ipvs_backend_weight\{local_port="80"\} 7$/m);
  assert.match(text, /^node_ipvs_backend_connections_active\{local_port="3306"\} 1200$/m);
  assert.match(text, /^node_ipvs_backend_connections_inactive\{local_port="3306"\} 2$/m);
  assert.doesNotMatch(text, /^process_/m);
});

test('health annotations in the shapes the health checker uses', () => {
  // src/health/manager.ts: health object with state/reason, configuredWeight and weightReason on top
  assert.deepEqual(destHealth({ health: { state: 'down', configuredWeight: 5, weight: 0, reason: 'inhibit_on_failure: HTTP_GET failed' }, configuredWeight: 5, weightReason: 'inhibit_on_failure: HTTP_GET failed' }), {
    state: 'down',
    up: false,
    configuredWeight: 5,
    weightReason: 'inhibit_on_failure: HTTP_GET failed',
  });
  assert.deepEqual(destHealth({ health: { state: 'up', configuredWeight: 3, reason: 'feedback' } }), { state: 'up', up: true, configuredWeight: 3, weightReason: 'feedback' });
  assert.deepEqual(destHealth({ health: { sorryServer: true, active: true, reason: 'quorum lost (2-0)' } }), { state: 'sorry-active', weightReason: 'quorum lost (2-0)' });
  assert.deepEqual(destHealth({ healthy: false }), { up: false });
  assert.deepEqual(destHealth({ weight: 3 }), {});
});

test('address labels print as Go prints net.IP', () => {
  assert.equal(goIpString('2001:0db8:0000:0000:0000:0000:0000:0443'), '2001:db8::443');
  assert.equal(goIpString('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(goIpString('::1.2.3.4'), '::102:304');
  assert.equal(goIpString('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
  assert.equal(goIpString('192.168.0.1'), '192.168.0.1');
});

test('config errors name the file and line', () => {
  const bad = (yaml: string) => () => metricsSettings(parseConfig(yaml, 'vsd.yaml'));
  assert.throws(bad('services: []\nmetrics:\n  listen: "nope"\n'), { message: /^vsd\.yaml:3:\d+: metrics\.listen: expected "address:port"/ });
  assert.throws(bad('services: []\nmetrics:\n  backendLabels: [local_port, bogus]\n'), { message: /^vsd\.yaml:3:\d+: metrics\.backendLabels: unknown IPVS backend labels: "bogus"/ });
  assert.throws(bad('metrics:\n  colour: blue\n'), { message: /^vsd\.yaml:\d+:\d+: metrics: .*colour/ });
  assert.equal(metricsSettings(parseConfig('services: []\n')), null);
  assert.equal(metricsSettings(parseConfig('metrics: { enabled: false }\n')), null);
  assert.deepEqual(metricsSettings(parseConfig('metrics: {}\n')), { host: '127.0.0.1', port: 9501, path: '/metrics', defaultMetrics: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

test('node_exporter reading our /proc-format files reports the same node_ipvs series', { skip: existsSync(NODE_EXPORTER) ? false : `${NODE_EXPORTER} not installed (apt-get install prometheus-node-exporter)`, timeout: 30_000 }, async () => {
  const m = new MetricsExtension();
  const proc = new ProcExtension({ intervalMs: 200 });
  const r = await startVsd({ config: `${TABLE_YAML}\nmetrics: { listen: "127.0.0.1:0" }\n`, extensions: [m, proc] });
  const port = await freePort();
  let child: ReturnType<typeof spawn> | null = null;
  try {
    const open = playTcp(r, 4, 2);
    pump(open.slice(0, 4), 3);
    new Client(r.vsd.director, '[2001:db8:9::1]:5000', '[2001:db8::53]:53', IPPROTO_UDP).datagram();
    r.estimate(2);
    // write to a directory of our own: the extension was started without procDir
    const procRoot = `${r.dir}/procfs`;
    const p2 = new ProcExtension({ dir: procRoot });
    await p2.start(r.vsd);
    child = spawn(NODE_EXPORTER, [`--path.procfs=${procRoot}`, '--collector.disable-defaults', '--collector.ipvs', `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (b) => (stderr += b));
    let theirs = '';
    for (let i = 0; i < 100; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
        theirs = await res.text();
        if (theirs.includes('node_ipvs_')) break;
      } catch {}
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.match(theirs, /node_ipvs_connections_total/, `node_exporter gave no ipvs metrics; stderr: ${stderr}`);
    const ours = parseExposition((await scrape(m.port)).text);
    const them = parseExposition(theirs);
    assert.equal(family(them, 'node_ipvs_backend_weight').size, 4, 'all four real servers, the IPv6 one and the fwmark one included');
    assert.ok(them.samples.get('node_ipvs_incoming_packets_total')! > 0);
    for (const name of Object.keys(NODE_HELP)) {
      assert.deepEqual(family(ours, name), family(them, name), name);
      assert.equal(them.types.get(name), ours.types.get(name), `${name} type`);
      assert.equal(them.help.get(name), ours.help.get(name), `${name} help`);
    }
    assert.equal(them.samples.get(sampleKey('node_scrape_collector_success', { collector: 'ipvs' })), 1);
    await p2.stop();
  } finally {
    if (child?.pid) process.kill(child.pid, 'SIGTERM');
    await r.stop();
  }
});
