// The nftables guard: what it drops, that it is replaced with the table, removed at close, and
// cleaned up after a crashed run; and that with a VIP the director has configured itself, only
// the served ports are the plane's (the kernel still answers the others). Root for the kernel
// parts; the ruleset text is checked without root.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FWD_MASQ } from '../../../src/core/constants.js';
import { HostTools } from '../../../src/planes/packet/host-tools.js';
import { GUARD_TABLE, guardOwner, guardRuleset, NftGuard } from '../../../src/planes/packet/nft-guard.js';
import type { ServedData } from '../../../src/planes/packet/served.js';
import { createLvsTopology, type LvsTopology, Topology } from '../../helpers/netns.js';
import { addService, attachPlane, curl, httpServers, natOneArmRoutes, type PlaneSetup, packetSkipReason, runAsync, type Servers, who } from './lvs.js';

const vipWords: [number, number, number, number] = [0xc6120064, 0, 0, 0];
const data: ServedData = {
  vips: [{ family: 4, words: vipWords, protocol: 6, port: 80 }],
  marks: [],
  natServers: [{ family: 4, words: [0xc6120015, 0, 0, 0], protocol: 6, port: 8080 }],
  tunnels: [],
  ownedVips: [{ family: 4, words: vipWords }],
  local: [],
};

test('guard ruleset: owned VIPs whole, served ports, NAT replies not for this host, the owner in a comment', () => {
  const t = guardRuleset(data, 4242);
  assert.match(t, /comment "tsvs packet plane pid=4242"/);
  assert.match(t, /set owned4 \{ type ipv4_addr; elements = \{ 198\.18\.0\.100 \}; \}/);
  assert.match(t, /elements = \{ 198\.18\.0\.100 \. tcp \. 80 \}/);
  assert.match(t, /elements = \{ 198\.18\.0\.21 \. tcp \. 8080 \}/);
  assert.match(t, /ip saddr \. meta l4proto \. th sport @nat4 fib daddr type != local drop/);
  assert.match(t, /priority raw - 10/);
});

const skip = packetSkipReason(['curl', 'nft']);

describe('nftables guard in a namespace (root)', { skip, timeout: 60_000 }, () => {
  let topo: Topology;
  let tools: HostTools;
  before(() => {
    topo = Topology.create('guard');
    tools = new HostTools(topo.namespace('d').name);
  });
  after(async () => {
    await topo?.destroy();
  });

  test('installed, replaced on update, removed at the end', async () => {
    const g = new NftGuard(tools);
    g.install(data);
    const listed = tools.runSync('nft', ['list', 'table', 'inet', GUARD_TABLE]).stdout;
    assert.match(listed, /198\.18\.0\.100 \. tcp \. 80/);
    assert.deepEqual(guardOwner(tools), { pid: process.pid });
    await g.update({ ...data, vips: [{ family: 4, words: vipWords, protocol: 17, port: 53 }] });
    const again = tools.runSync('nft', ['list', 'table', 'inet', GUARD_TABLE]).stdout;
    try {
      assert.match(again, /198\.18\.0\.100 \. udp \. 53/);
      assert.doesNotMatch(again, /198\.18\.0\.100 \. tcp \. 80/);
    } finally {
      g.remove();
    }
    assert.equal(guardOwner(tools), null);
  });

  test('a table left by a dead process is replaced; a live owner or a foreign table is refused', () => {
    // A pid that cannot be running: above the kernel's pid_max.
    tools.runSync('nft', ['-f', '-'], `table inet ${GUARD_TABLE} { comment "tsvs packet plane pid=99999999"; }\n`);
    const g = new NftGuard(tools);
    assert.deepEqual(g.install(data), { stalePid: 99999999 });
    assert.deepEqual(guardOwner(tools), { pid: process.pid });
    g.remove();
    tools.runSync('nft', ['-f', '-'], `table inet ${GUARD_TABLE} { comment "tsvs packet plane pid=1"; }\n`);
    assert.throws(() => new NftGuard(tools).install(data), /another tsvs packet plane \(pid 1\)/);
    tools.runSync('nft', ['delete', 'table', 'inet', GUARD_TABLE]);
    tools.runSync('nft', ['-f', '-'], `table inet ${GUARD_TABLE} { comment "someone else"; }\n`);
    assert.throws(() => new NftGuard(tools).install(data), /is not tsvs's/);
    tools.runSync('nft', ['delete', 'table', 'inet', GUARD_TABLE]);
  });
});

describe('a VIP the director has configured: only served ports are the plane\'s (root)', { skip, timeout: 90_000 }, () => {
  let lvs: LvsTopology;
  let http: Servers;
  let s: PlaneSetup;
  before(async () => {
    lvs = createLvsTopology('guardvip', { arms: 'one', servers: 2 });
    natOneArmRoutes(lvs);
    lvs.director.ns.ip('addr', 'add', `${lvs.vip4}/32`, 'dev', lvs.director.clientIf);
    http = await httpServers(lvs);
    s = await attachPlane(lvs);
    await addService(s, lvs.vip4, 80, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_MASQ })));
  });
  after(async () => {
    await s?.close();
    await http?.stop();
    await lvs?.destroy();
  });

  test('port 80 is forwarded by the plane; port 81 is the kernel\'s (refused by it)', async () => {
    const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(who(r.stdout), /^rs\d$/);
    const k = await curl(lvs.client.ns, `http://${lvs.vip4}:81/`);
    assert.match(k.stderr, /refused|Couldn't connect/i);
    const rules = s.plane.guardRules;
    assert.match(rules, /set owned4 \{ type ipv4_addr; \}/, 'not owned: the host has it');
    assert.match(rules, /198\.18\.0\.100 \. tcp \. 80/);
  });

  test('close removes the guard: the kernel answers port 80 again', async () => {
    await s.close();
    const listed = await runAsync(lvs.director.ns, 'nft', ['list', 'table', 'inet', GUARD_TABLE]);
    assert.notEqual(listed.code, 0, 'table gone');
    const k = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
    assert.match(k.stderr, /refused|Couldn't connect/i);
  });
});
