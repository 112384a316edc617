// The packet plane inside vsd: the `packet:` config section and --packet, the start-up error
// without privileges, and (root) vsd run in a director namespace carrying NAT traffic, with its
// status and counters read over the control socket, and its guard gone when it stops.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../../src/control/client.js';
import { parseConfig } from '../../../src/control/config.js';
import { packetConfig, parseMarkRule } from '../../../src/planes/packet/config.js';
import { createLvsTopology, type LvsTopology, type NsProcess } from '../../helpers/netns.js';
import { curl, httpServers, natOneArmRoutes, packetSkipReason, runAsync, type Servers, scratchDir, sleep, who } from './lvs.js';

const VSD = new URL('../../../src/cli/vsd.ts', import.meta.url).pathname;
const vsdCode = (args: string[]) => `import(${JSON.stringify(VSD)}).then(async (m) => { process.exitCode = await m.main(${JSON.stringify(args)}); })`;

test('packet config: interfaces, mode, fwmark rules; errors name the line', () => {
  const cfg = parseConfig(
    ['packet:', '  interfaces: [eth0, eth1]', '  mode: threads', '  threads: 2', '  fwmarks:', '    "7": ["tcp 198.18.0.100:80-81", "udp [2001:2::100]"]', ''].join('\n'),
    'vsd.yaml',
  );
  const p = packetConfig(cfg)!;
  assert.deepEqual(p.interfaces, ['eth0', 'eth1']);
  assert.equal(p.mode, 'threads');
  assert.equal(p.threads, 2);
  assert.equal(p.fwmarks.length, 2);
  assert.deepEqual([p.fwmarks[0]!.portLo, p.fwmarks[0]!.portHi, p.fwmarks[1]!.portLo, p.fwmarks[1]!.portHi], [80, 81, 0, 65535]);
  assert.equal(packetConfig(parseConfig('services: []\n')), undefined, 'no section, no --packet: no plane');
  assert.deepEqual(packetConfig(parseConfig('services: []\n'), ['eth2'])!.interfaces, ['eth2'], '--packet alone');
  assert.throws(() => packetConfig(parseConfig('packet:\n  mode: single\n', 'x.yaml')), /x\.yaml:\d+:\d+: packet\.interfaces: the packet plane needs interfaces/);
  assert.throws(() => packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n  mode: fast\n', 'x.yaml')), /x\.yaml:3:\d+: packet\.mode/);
  assert.throws(() => packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n  fwmarks:\n    "1": ["tcp nowhere"]\n', 'x.yaml')), /x\.yaml:4:\d+: packet\.fwmarks\.1\.0: expected/);
  assert.equal(typeof parseMarkRule(1, 'icmp 1.2.3.4'), 'string');
});

test('vsd --packet: a bad interface list is a usage error', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', vsdCode(['--packet', 'eth0,bad name'])], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--packet: expected IFACE\[,IFACE\]/);
});

test('vsd --packet without privileges says what it needs', { skip: process.getuid?.() !== 0 ? 'needs root to drop its capabilities' : undefined }, () => {
  const dir = scratchDir();
  try {
    chmodSync(dir.dir, 0o777);
    // Root without its capabilities: still the owner of the tree (runs from any checkout).
    const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', process.execPath, '--import', 'tsx', '-e', vsdCode(['--packet', 'lo', '--no-proxy', '--socket', join(dir.dir, 'vsd.sock')])], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /the packet plane needs root \(CAP_NET_ADMIN, CAP_NET_RAW\)/);
  } finally {
    dir.remove();
  }
});

const skip = packetSkipReason(['curl', 'nft']);

describe('vsd with the packet plane in a director namespace (root)', { skip, timeout: 120_000 }, () => {
  let lvs: LvsTopology;
  let http: Servers;
  let vsd: NsProcess;
  let client: ControlClient;
  const dir = scratchDir();
  const sock = join(dir.dir, 'vsd.sock');

  before(async () => {
    lvs = createLvsTopology('vsdpkt', { arms: 'one', servers: 3 });
    natOneArmRoutes(lvs);
    http = await httpServers(lvs);
    const cfg = join(dir.dir, 'vsd.yaml');
    writeFileSync(
      cfg,
      [
        'services:',
        `  - address: "${lvs.vip4}:80"`,
        '    scheduler: rr',
        '    realServers:',
        ...lvs.servers.map((r) => `      - { address: "${r.v4}:80", method: nat }`),
        'packet:',
        `  interfaces: [${lvs.director.clientIf}]`,
        '',
      ].join('\n'),
    );
    vsd = lvs.director.ns.spawn(process.execPath, ['--import', 'tsx', '-e', vsdCode(['-c', cfg, '--no-proxy', '--socket', sock, '--log-level', 'warn'])]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        client = await ControlClient.connect(sock);
        const st = await client.status();
        if ((st.planes as Record<string, unknown>).packet) break;
        client.close();
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || !vsd.running) throw new Error(`vsd did not start: ${vsd.stderr}`);
      await sleep(200);
    }
  });

  after(async () => {
    client?.close();
    await vsd?.stop(3000);
    await http?.stop();
    await lvs?.destroy();
    dir.remove();
  });

  test('requests through vsd spread over the real servers; status and stats count them', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
      assert.equal(r.code, 0, r.stderr);
      seen.add(who(r.stdout));
    }
    assert.equal(seen.size, 3);
    const st = await client.status();
    const pkt = (st.planes as Record<string, Record<string, unknown>>).packet!;
    assert.ok((pkt.packets as { rx: number }).rx > 20);
    assert.ok((pkt.packets as { tx: number }).tx > 20);
    const svc = (st.services as Array<{ key: string; servedBy: string[] }>).find((x) => x.key === `tcp:${lvs.vip4}:80`);
    assert.deepEqual(svc?.servedBy, ['packet']);
    const [info] = await client.getServices();
    assert.ok(info!.stats.conns >= 6 && info!.stats.inpkts > 0 && info!.stats.outpkts > 0);
  });

  test('SIGTERM: vsd stops and removes its guard table', async () => {
    client.close();
    await vsd.stop(5000);
    assert.equal(vsd.exitCode, 0, vsd.stderr);
    const r = await runAsync(lvs.director.ns, 'nft', ['list', 'table', 'inet', 'tsvs']);
    assert.notEqual(r.code, 0, 'the guard table is gone');
  });
});

