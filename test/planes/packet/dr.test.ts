// Direct routing (-g) through the packet plane on real kernel TCP and UDP (root, namespaces
// built here): the client's packets reach the real servers unchanged but for the MACs and the
// TTL, the real servers (VIP on lo, ARP quiet) answer the client directly: the replies do not
// pass through the director (interface counters) and the core counts no outgoing packets.
// Connection states come from the input-only table.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FWD_DROUTE } from '../../../src/core/constants.js';
import { createLvsTopology, type LvsTopology } from '../../helpers/netns.js';
import {
  addService,
  attachPlane,
  checkDelete,
  checkDrain,
  checkSpread,
  curl,
  httpServers,
  type PlaneSetup,
  packetSkipReason,
  pattern,
  type Servers,
  sleep,
  udpEchoServers,
  udpExchange,
} from './lvs.js';

const skip = packetSkipReason(['curl', 'nft']);

for (const arms of ['one', 'two'] as const) {
  describe(`DR, ${arms}-arm director (root)`, { skip, timeout: 180_000 }, () => {
    let lvs: LvsTopology;
    let http: Servers;
    let udp: Servers;
    let s: PlaneSetup;
    let key: Awaited<ReturnType<typeof addService>>;

    before(async () => {
      // Two arms: the real servers' default route is the director's kernel (an ordinary router);
      // one arm: they answer the client on the shared link.
      lvs = createLvsTopology(`dr${arms}`, { arms, servers: 3, dr: true });
      http = await httpServers(lvs);
      udp = await udpEchoServers(lvs, 5353, [lvs.vip4, lvs.vip6]);
      s = await attachPlane(lvs);
      key = await addService(s, lvs.vip4, 80, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_DROUTE })));
      await addService(s, lvs.vip4, 5353, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_DROUTE })), { protocol: 'udp' });
      await addService(s, lvs.vip6, 80, lvs.servers.map((r) => ({ addr: r.v6, connFlags: FWD_DROUTE })));
    });

    after(async () => {
      await s?.close();
      await http?.stop();
      await udp?.stop();
      await lvs?.destroy();
    });

    test('requests spread round-robin; the real server sees the client and answers from the VIP', async () => {
      await checkSpread(lvs, `http://${lvs.vip4}/`, assert.fail);
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
      assert.match(r.stdout.toString(), new RegExp(lvs.client.v4.replaceAll('.', '\\.')));
    });

    test('a large download arrives whole; its bytes do not pass through the director', async () => {
      const d = lvs.director;
      const before = d.ns.linkStats(d.clientIf);
      const n = 4_000_000;
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}/bytes/${n}`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(pattern(n)), 'downloaded bytes are the pattern');
      const after = d.ns.linkStats(d.clientIf);
      if (arms === 'one') {
        // One link: the director sees the client's ACKs only (in and forwarded out again).
        assert.ok(after.rxBytes - before.rxBytes < n / 5, `director received ${after.rxBytes - before.rxBytes} bytes`);
        assert.ok(after.txBytes - before.txBytes < n / 5, `director sent ${after.txBytes - before.txBytes} bytes`);
      }
      const st = s.director.serviceInfo(key).stats;
      assert.equal(st.outpkts, 0, 'no reply went through the plane');
      assert.equal(st.outbytes, 0);
      assert.ok(st.inpkts > 0);
    });

    test('finished connections are in FIN_WAIT (input-only state table)', async () => {
      await curl(lvs.client.ns, `http://${lvs.vip4}/`);
      await sleep(100);
      const states = new Set(s.director.connInfos().filter((c) => c.vport === 80 && c.af === 4).map((c) => c.state));
      assert.ok(states.has('FIN_WAIT'), [...states].join(','));
      assert.ok(!states.has('TIME_WAIT') && !states.has('CLOSE_WAIT'), 'no NAT-table states');
    });

    test('UDP echo answered from the VIP by the real server', async () => {
      const lines = await udpExchange(lvs.client.ns, lvs.vip4, 5353, ['a', 'b']);
      assert.equal(lines.length, 2, lines.join('|'));
      assert.match(lines[0]!, /^rs\d:a$/);
      assert.equal(lines[1], `${lines[0]!.split(':')[0]}:b`);
    });

    test('IPv6', async () => {
      const r = await curl(lvs.client.ns, `http://[${lvs.vip6}]/bytes/300000`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(pattern(300000)));
    });

    test('no real server: connection refused at once (ICMP port unreachable)', async () => {
      const k = await addService(s, lvs.vip4, 8080, []);
      const t0 = Date.now();
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}:8080/`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /refused|Couldn't connect/i);
      assert.ok(Date.now() - t0 < 3000);
      s.director.delService(k);
    });

    test('weight 0 drains: new requests avoid the server, its running transfer completes', async () => {
      await checkDrain({ lvs, s, key, method: FWD_DROUTE }, assert.fail);
    });

    test('deleting a real server: expire_nodest_conn=0 stalls its connections, =1 resets them', async () => {
      await checkDelete({ lvs, s, key, method: FWD_DROUTE }, assert.fail);
    });
  });
}
