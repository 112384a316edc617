// NAT (-m) through the packet plane on real kernel TCP and UDP (root, namespaces built here,
// addresses from 198.18.0.0/15 and 2001:2::/48 only): scheduling as the scheduler says, whole
// and correct transfers both ways, replies through the director with valid checksums (tshark),
// ICMP port unreachable without a real server, weight-0 drain, deleting a real server with and
// without expire_nodest_conn; one-arm and two-arm directors, IPv4 and IPv6.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { FWD_MASQ } from '../../../src/core/constants.js';
import { createLvsTopology, type LvsTopology } from '../../helpers/netns.js';
import {
  addService,
  attachPlane,
  capture,
  checkDelete,
  checkDrain,
  checkSpread,
  curl,
  httpServers,
  natOneArmRoutes,
  type PlaneSetup,
  packetSkipReason,
  pattern,
  runAsync,
  type Servers,
  udpEchoServers,
  udpExchange,
} from './lvs.js';

const skip = packetSkipReason(['curl', 'nft', 'tshark']);

for (const arms of ['one', 'two'] as const) {
  describe(`NAT, ${arms}-arm director (root)`, { skip, timeout: 180_000 }, () => {
    let lvs: LvsTopology;
    let http: Servers;
    let udp: Servers;
    let s: PlaneSetup;
    let key: Awaited<ReturnType<typeof addService>>;

    before(async () => {
      lvs = createLvsTopology(`nat${arms}`, { arms, servers: 3 });
      if (arms === 'one') natOneArmRoutes(lvs);
      http = await httpServers(lvs);
      udp = await udpEchoServers(lvs);
      s = await attachPlane(lvs);
      key = await addService(s, lvs.vip4, 80, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_MASQ })));
      await addService(s, lvs.vip4, 5353, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_MASQ })), { protocol: 'udp' });
      await addService(s, lvs.vip6, 80, lvs.servers.map((r) => ({ addr: r.v6, connFlags: FWD_MASQ })));
    });

    after(async () => {
      await s?.close();
      await http?.stop();
      await udp?.stop();
      await lvs?.destroy();
    });

    test('requests spread round-robin over the three real servers; the client address is kept', async () => {
      await checkSpread(lvs, `http://${lvs.vip4}/`, assert.fail);
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
      assert.match(r.stdout.toString(), new RegExp(lvs.client.v4.replaceAll('.', '\\.')), 'the real server sees the client');
      const st = s.director.serviceInfo(key).stats;
      assert.ok(st.conns >= 7);
      assert.ok(st.inpkts > 0 && st.outpkts > 0 && st.inbytes > 0 && st.outbytes > 0, 'NAT counts both directions');
    });

    test('a large download and a large upload arrive whole and correct', async () => {
      const n = 3_000_000;
      const down = await curl(lvs.client.ns, `http://${lvs.vip4}/bytes/${n}`);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(down.stdout.length, n);
      assert.ok(down.stdout.equals(pattern(n)), 'downloaded bytes are the pattern');
      const body = pattern(1_500_000);
      const r = await runAsync(lvs.client.ns, 'curl', ['-sS', '--max-time', '20', '--data-binary', '@-', '-H', 'Content-Type: application/octet-stream', `http://${lvs.vip4}/`], 25_000, body);
      assert.equal(r.code, 0, r.stderr);
      const [, len, sha] = r.stdout.toString().trim().split(' ');
      assert.equal(Number(len), body.length);
      assert.equal(sha, createHash('sha256').update(body).digest('hex'));
    });

    test('UDP: datagrams of one client socket go to one real server and are echoed back from the VIP', async () => {
      const lines = await udpExchange(lvs.client.ns, lvs.vip4, 5353, ['one', 'two', 'three']);
      assert.equal(lines.length, 3, lines.join('|'));
      const server = lines[0]!.split(':')[0];
      assert.deepEqual(lines, [`${server}:one`, `${server}:two`, `${server}:three`]);
    });

    test('IPv6: the same through the v6 VIP', async () => {
      const r = await curl(lvs.client.ns, `http://[${lvs.vip6}]/bytes/200000`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(pattern(200000)));
    });

    test('replies pass through the director, from the VIP, with valid IP and TCP checksums (tshark)', async () => {
      const cap = await capture(lvs.client.ns, lvs.client.ifname, 'tcp port 80');
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}/bytes/500000`);
      await cap.stop();
      assert.equal(r.code, 0, r.stderr);
      const fromVip = await cap.read(['-Y', `ip.src == ${lvs.vip4} && tcp.srcport == 80`, '-T', 'fields', '-e', 'frame.number']);
      assert.ok(fromVip.length > 50, `replies from the VIP: ${fromVip.length}`);
      const fromRs = await cap.read(['-Y', lvs.servers.map((x) => `ip.src == ${x.v4}`).join(' || ')]);
      assert.equal(fromRs.length, 0, 'no packet shows a real server address');
      const bad = await cap.read(['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-Y', 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad"']);
      assert.deepEqual(bad, [], 'bad checksums');
      cap.dispose();
      // The director's client side carried the reply bytes.
      const st = s.director.serviceInfo(key).stats;
      assert.ok(st.outbytes > 500000);
    });

    test('no real server: ICMP port unreachable (TCP refused at once, UDP sees ECONNREFUSED)', async () => {
      const k = await addService(s, lvs.vip4, 8080, []);
      await addService(s, lvs.vip4, 5454, [], { protocol: 'udp' });
      const t0 = Date.now();
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}:8080/`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /refused|Couldn't connect/i);
      assert.ok(Date.now() - t0 < 3000, 'refused at once, not after a timeout');
      const lines = await udpExchange(lvs.client.ns, lvs.vip4, 5454, ['x'], 1500);
      assert.deepEqual(lines, ['error ECONNREFUSED']);
      assert.ok(s.director.drops.noDest >= 2);
      s.director.delService(k);
    });

    test('weight 0 drains: new requests avoid the server, its running transfer completes', async () => {
      await checkDrain({ lvs, s, key, method: FWD_MASQ }, assert.fail);
    });

    test('deleting a real server: expire_nodest_conn=0 stalls its connections, =1 resets them', async () => {
      await checkDelete({ lvs, s, key, method: FWD_MASQ }, assert.fail);
    });
  });
}
