// Tunneling (-i) through the packet plane on real kernel TCP and UDP (root, namespaces built
// here). This machine's kernel has no ipip module: every real server runs vsrs, which
// decapsulates into a TUN device. IPIP (and GUE, GRE) packets decode as such in tshark; replies
// go from the real servers straight to the client; a DF packet too big for the tunnel gets
// frag-needed with the tunnel's MTU, so a large upload still completes.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { FWD_TUNNEL, TUN_TYPE_GRE, TUN_TYPE_GUE } from '../../../src/core/constants.js';
import { createLvsTopology, type LvsTopology, type NsProcess } from '../../helpers/netns.js';
import {
  addService,
  attachPlane,
  capture,
  checkDelete,
  checkDrain,
  checkSpread,
  curl,
  httpServers,
  type PlaneSetup,
  packetSkipReason,
  pattern,
  runAsync,
  type Servers,
  startVsrs,
  udpEchoServers,
  udpExchange,
  who,
} from './lvs.js';

const skip = packetSkipReason(['curl', 'nft', 'tshark']);
const GUE_PORT = 6080;

for (const arms of ['one', 'two'] as const) {
  describe(`TUN, ${arms}-arm director, vsrs on the real servers (root)`, { skip, timeout: 240_000 }, () => {
    let lvs: LvsTopology;
    let http: Servers;
    let udp: Servers;
    let agents: NsProcess[] = [];
    let s: PlaneSetup;
    let key: Awaited<ReturnType<typeof addService>>;

    before(async () => {
      lvs = createLvsTopology(`tun${arms}`, { arms, servers: 3, dr: true });
      agents = await Promise.all(lvs.servers.map((r) => startVsrs(r.ns, ['-i', r.ifname, '--gue-port', String(GUE_PORT)])));
      http = await httpServers(lvs);
      udp = await udpEchoServers(lvs, 5353, [lvs.vip4, lvs.vip6]);
      s = await attachPlane(lvs);
      key = await addService(s, lvs.vip4, 80, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_TUNNEL })));
      await addService(s, lvs.vip4, 5353, lvs.servers.map((r) => ({ addr: r.v4, connFlags: FWD_TUNNEL })), { protocol: 'udp' });
      await addService(s, lvs.vip6, 80, lvs.servers.map((r) => ({ addr: r.v6, connFlags: FWD_TUNNEL })));
    });

    after(async () => {
      await s?.close();
      await http?.stop();
      await udp?.stop();
      await Promise.all(agents.map((a) => a.stop()));
      await lvs?.destroy();
    });

    test('requests spread round-robin; answers come from the VIP', async () => {
      await checkSpread(lvs, `http://${lvs.vip4}/`, assert.fail);
    });

    test('the tunnel packets decode as IPIP in tshark: director -> real server outside, client -> VIP inside', async () => {
      const rs = lvs.servers[0]!;
      const cap = await capture(rs.ns, rs.ifname);
      for (let i = 0; i < 3; i++) await curl(lvs.client.ns, `http://${lvs.vip4}/`);
      await cap.stop();
      const lines = await cap.read(['-Y', 'ip.proto == 4', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.dstport']);
      cap.dispose();
      assert.ok(lines.length > 0, 'IPIP packets seen');
      const dirAddr = arms === 'one' ? lvs.director.serverV4 : lvs.director.serverV4;
      for (const l of lines) assert.equal(l, `${dirAddr},${lvs.client.v4}\t${rs.v4},${lvs.vip4}\t80`);
    });

    test('a large download arrives whole; replies do not pass through the plane', async () => {
      const d = lvs.director;
      const before = d.ns.linkStats(d.clientIf);
      const n = 4_000_000;
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}/bytes/${n}`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(pattern(n)));
      const after = d.ns.linkStats(d.clientIf);
      if (arms === 'one') assert.ok(after.rxBytes - before.rxBytes < n / 5, `director received ${after.rxBytes - before.rxBytes} bytes`);
      assert.equal(s.director.serviceInfo(key).stats.outpkts, 0);
    });

    test('a large upload completes: DF segments too big for the tunnel get frag-needed (MTU 1480)', async () => {
      const body = pattern(1_000_000);
      const r = await runAsync(lvs.client.ns, 'curl', ['-sS', '--max-time', '20', '--data-binary', '@-', '-H', 'Content-Type: application/octet-stream', `http://${lvs.vip4}/`], 25_000, body);
      assert.equal(r.code, 0, r.stderr);
      const [, len, sha] = r.stdout.toString().trim().split(' ');
      assert.equal(Number(len), body.length);
      assert.equal(sha, createHash('sha256').update(body).digest('hex'));
      const drops = s.plane.status().drops as Record<string, number>;
      assert.ok((drops.frag_needed ?? 0) > 0, JSON.stringify(drops));
      const route = await runAsync(lvs.client.ns, 'ip', ['route', 'get', lvs.vip4]);
      assert.match(route.stdout.toString(), /mtu 1480/, 'the client learned the tunnel MTU');
    });

    test('UDP echo and IPv6 (IPv6 outer header to an IPv6 real server)', async () => {
      const lines = await udpExchange(lvs.client.ns, lvs.vip4, 5353, ['u']);
      assert.match(lines[0] ?? '', /^rs\d:u$/);
      const r = await curl(lvs.client.ns, `http://[${lvs.vip6}]/bytes/300000`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(pattern(300000)));
    });

    test('GUE and GRE real servers (--tun-type gue / gre)', async () => {
      const gue = await addService(s, lvs.vip4, 81, [{ addr: lvs.servers[1]!.v4, connFlags: FWD_TUNNEL, tunType: TUN_TYPE_GUE, tunPort: GUE_PORT, port: 81 }]);
      const gre = await addService(s, lvs.vip4, 82, [{ addr: lvs.servers[2]!.v4, connFlags: FWD_TUNNEL, tunType: TUN_TYPE_GRE, port: 82 }]);
      const extra = await httpServersOn(lvs, [81, 82]);
      try {
        const rs = lvs.servers[1]!;
        const cap = await capture(rs.ns, rs.ifname, `udp dst port ${GUE_PORT}`);
        const a = await curl(lvs.client.ns, `http://${lvs.vip4}:81/bytes/100000`);
        await cap.stop();
        assert.equal(a.code, 0, a.stderr);
        assert.ok(a.stdout.equals(pattern(100000)));
        const gueLines = await cap.read(['-T', 'fields', '-e', 'udp.dstport']);
        cap.dispose();
        assert.ok(gueLines.length > 0 && gueLines.every((l) => l === String(GUE_PORT)), 'GUE packets to the tunnel port');
        const rs3 = lvs.servers[2]!;
        const cap2 = await capture(rs3.ns, rs3.ifname, 'ip proto 47');
        const b = await curl(lvs.client.ns, `http://${lvs.vip4}:82/`);
        await cap2.stop();
        assert.equal(b.code, 0, b.stderr);
        assert.equal(who(b.stdout), 'rs3');
        const greLines = await cap2.read(['-Y', 'gre', '-T', 'fields', '-e', 'gre.proto', '-e', 'ip.dst']);
        cap2.dispose();
        assert.ok(greLines.length > 0, 'GRE packets decoded');
        assert.match(greLines[0]!, /^0x0800\t/);
      } finally {
        await extra.stop();
        s.director.delService(gue);
        s.director.delService(gre);
      }
    });

    test('no real server: connection refused at once', async () => {
      const k = await addService(s, lvs.vip4, 8080, []);
      const r = await curl(lvs.client.ns, `http://${lvs.vip4}:8080/`);
      assert.match(r.stderr, /refused|Couldn't connect/i);
      s.director.delService(k);
    });

    test('weight 0 drains: new requests avoid the server, its running transfer completes', async () => {
      await checkDrain({ lvs, s, key, method: FWD_TUNNEL }, assert.fail);
    });

    test('deleting a real server: expire_nodest_conn=0 stalls its connections, =1 resets them', async () => {
      await checkDelete({ lvs, s, key, method: FWD_TUNNEL }, assert.fail);
    });
  });
}

/** HTTP servers on more ports (the GUE and GRE services). */
async function httpServersOn(lvs: LvsTopology, ports: number[]): Promise<Servers> {
  const all = await Promise.all(ports.map((p) => httpServers(lvs, p)));
  return { procs: all.flatMap((x) => x.procs), stop: async () => void (await Promise.all(all.map((x) => x.stop()))) };
}
