// "threads" mode (root): worker threads own fanout rings on every interface and ask the one
// Director through shared memory, so scheduling stays one consistent view: thirty requests from
// thirty connections spread exactly ten, ten, ten by round robin, whichever worker got them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FWD_DROUTE, FWD_MASQ } from '../../../src/core/constants.js';
import { createLvsTopology, type LvsTopology } from '../../helpers/netns.js';
import { addService, attachPlane, curl, httpServers, type PlaneSetup, packetSkipReason, pattern, type Servers, udpEchoServers, udpExchange, who } from './lvs.js';

const skip = packetSkipReason(['curl', 'nft']);

describe('threads mode: workers with fanout rings, one Director (root)', { skip, timeout: 180_000 }, () => {
  let lvs: LvsTopology;
  let http: Servers;
  let udp: Servers;
  let s: PlaneSetup;

  before(async () => {
    lvs = createLvsTopology('pktthreads', { arms: 'two', servers: 3, dr: true });
    http = await httpServers(lvs);
    udp = await udpEchoServers(lvs);
    s = await attachPlane(lvs, { mode: 'threads', threads: 2 });
    await addService(s, lvs.vip4, 80, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_MASQ })));
    await addService(s, lvs.vip4, 81, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_DROUTE, port: 81 })));
    await addService(s, lvs.vip4, 5353, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_MASQ })), { protocol: 'udp' });
  });

  after(async () => {
    await s?.close();
    await http?.stop();
    await udp?.stop();
    await lvs?.destroy();
  });

  test('two workers run, and status sums their counters', () => {
    const st = s.plane.status();
    assert.equal(st.mode, 'threads');
    assert.equal(st.workers, 2);
  });

  test('NAT: 30 concurrent connections spread exactly 10/10/10 (one scheduler for every worker)', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, () => curl(lvs.client.ns, `http://${lvs.vip4}/`)));
    const count: Record<string, number> = {};
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      count[who(r.stdout)] = (count[who(r.stdout)] ?? 0) + 1;
    }
    assert.deepEqual(count, { rs1: 10, rs2: 10, rs3: 10 });
    const st = s.plane.status();
    assert.ok((st.corePackets as number) > 100);
  });

  test('NAT large transfer, DR, and UDP', async () => {
    const r = await curl(lvs.client.ns, `http://${lvs.vip4}/bytes/2000000`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(pattern(2_000_000)));
    const extra = await httpServers(lvs, 81);
    try {
      const d = await curl(lvs.client.ns, `http://${lvs.vip4}:81/bytes/500000`);
      assert.equal(d.code, 0, d.stderr);
      assert.ok(d.stdout.equals(pattern(500_000)));
    } finally {
      await extra.stop();
    }
    const lines = await udpExchange(lvs.client.ns, lvs.vip4, 5353, ['x', 'y']);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^rs\d:x$/);
  });
});
