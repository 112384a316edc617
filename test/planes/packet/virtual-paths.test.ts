// Health checks via: virtual on memory ports (no root): the plane's probe pair is one more
// port; a probe from its source reaches exactly the real server it checks (DR: that server's
// MAC; TUN: encapsulated to it, GUE included), the reply comes back to the pair, a client
// cannot borrow a probe source, and a real server taken out of the table is still reached (so
// it can come back). The root test (via-virtual.test.ts) runs the same through vsd and curl.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { IPPROTO_UDP, TCP_ACK, TCP_SYN } from '../../../src/codec/index.js';
import { FWD_DROUTE, FWD_TUNNEL, IPPROTO_TCP, TUN_TYPE_GUE } from '../../../src/core/constants.js';
import type { DestSpec } from '../../../src/core/model.js';
import { parseConfig } from '../../../src/control/config.js';
import { packetConfig } from '../../../src/planes/packet/config.js';
import { ServedIndex } from '../../../src/planes/packet/served.js';
import { parseCidr } from '../../../src/planes/packet/virtual-paths.js';
import { IpAddr } from '../../../src/core/addr.js';
import { DIRECTOR_MAC, memoryPlane, PAIR_MAC, RS, VIP, VIP6 } from './harness.js';
import { decode, frame } from './pktgen.js';

type Plane = Awaited<ReturnType<typeof memoryPlane>>;
const svc = (addr = VIP) => ({ af: (addr.includes(':') ? 6 : 4) as 4 | 6, protocol: IPPROTO_TCP, addr, port: 80, fwmark: 0 });
const dest = (addr: string, o: Partial<DestSpec> = {}): DestSpec => ({ af: addr.includes(':') ? 6 : 4, addr, port: 80, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, ...o });

function service(p: Plane, addr: string, dests: DestSpec[]): void {
  p.director.addService({ ...svc(addr), schedName: 'rr', flags: 0, timeout: 0, netmask: addr.includes(':') ? 128 : 0xffffffff });
  for (const d of dests) p.director.addDest(svc(addr), d);
}

const probeSyn = (src: string, sport: number, dst = VIP, flags = TCP_SYN) => frame({ srcMac: PAIR_MAC, dstMac: PAIR_MAC, src, dst, protocol: 'tcp', sport, dport: 80, flags });

describe('virtual paths on memory ports', () => {
  const planes: Plane[] = [];
  const make = async () => {
    const p = await memoryPlane({ probes: true });
    planes.push(p);
    return p;
  };
  after(async () => {
    for (const p of planes) await p.close();
  });

  test('DR: every probe from a source reaches its real server; clients are scheduled as before; the reply goes back to the pair', async () => {
    const p = await make();
    service(p, VIP, RS.map((r) => dest(r.ip)));
    await p.ready();
    const vp = p.plane.virtualPaths!;
    const path = vp.open({ service: svc(), dest: { af: 4, addr: RS[1]!.ip, port: 80 }, method: FWD_DROUTE, protocol: 'tcp' })!;
    assert.equal(path.bind.address, '198.18.255.1');
    const out = await p.exchangeBoth([], [0, 1, 2, 3].map((k) => probeSyn(path.bind.address, 41000 + k)));
    assert.equal(out.wire.length, 4);
    for (const f of out.wire) {
      const d = decode(f);
      assert.equal(d.dstMac, RS[1]!.mac, 'always the checked server');
      assert.equal(d.srcMac, DIRECTOR_MAC);
      assert.deepEqual([d.src, d.dst, d.ttl], [path.bind.address, VIP, 63]);
      assert.ok(d.checksumsOk);
    }
    const clients = await p.exchange(...[0, 1, 2].map((k) => frame({ srcMac: '02:00:00:00:00:10', dstMac: DIRECTOR_MAC, src: '198.18.0.10', dst: VIP, protocol: 'tcp', sport: 42000 + k })));
    assert.deepEqual(clients.map((f) => decode(f).dstMac).sort(), RS.map((r) => r.mac).sort(), 'the scheduler never saw the probes');
    const conns = p.director.connInfos().filter((c) => c.caddr === path.bind.address);
    assert.equal(conns.length, 4);
    assert.ok(conns.every((c) => c.daddr === RS[1]!.ip));

    // The real server answers the probe source directly; the plane hands it to the pair.
    const reply = frame({ srcMac: RS[1]!.mac, dstMac: DIRECTOR_MAC, src: VIP, dst: path.bind.address, protocol: 'tcp', sport: 80, dport: 41000, flags: TCP_SYN | TCP_ACK });
    const back = await p.exchangeBoth([reply], []);
    assert.equal(back.wire.length, 0);
    assert.equal(back.probe.length, 1);
    const b = decode(back.probe[0]!);
    assert.deepEqual([b.dstMac, b.srcMac, b.src, b.dst, b.ttl], [PAIR_MAC, PAIR_MAC, VIP, path.bind.address, 64]);
    assert.ok(b.checksumsOk);
  });

  test('a client using a probe source is dropped; after release the source is an ordinary client', async () => {
    const p = await make();
    service(p, VIP, RS.map((r) => dest(r.ip)));
    await p.ready();
    const path = p.plane.virtualPaths!.open({ service: svc(), dest: { af: 4, addr: RS[2]!.ip, port: 80 }, method: FWD_DROUTE, protocol: 'tcp' })!;
    const spoof = frame({ srcMac: '02:00:00:00:00:10', dstMac: DIRECTOR_MAC, src: path.bind.address, dst: VIP, protocol: 'tcp', sport: 43000 });
    assert.deepEqual(await p.exchange(spoof), []);
    assert.equal((p.plane.status().drops as Record<string, number>).probe_spoofed, 1);
    assert.equal(p.director.conns.count, 0);
    path.release();
    path.release();
    const out = await p.exchangeBoth([], [0, 1, 2].map((k) => probeSyn(path.bind.address, 44000 + k)));
    assert.equal(new Set(out.wire.map((f) => decode(f).dstMac)).size, 3, 'scheduled round robin once unpinned');
    assert.equal(p.plane.virtualPaths!.count, 0);
  });

  test('a real server out of the table is still reached (without a connection), so that it can come back', async () => {
    const p = await make();
    service(p, VIP, RS.map((r) => dest(r.ip)));
    await p.ready();
    const path = p.plane.virtualPaths!.open({ service: svc(), dest: { af: 4, addr: RS[0]!.ip, port: 80 }, method: FWD_DROUTE, protocol: 'tcp' })!;
    p.director.delDest(svc(), dest(RS[0]!.ip));
    await p.ready();
    const before = p.director.conns.count;
    const out = await p.exchangeBoth([], [probeSyn(path.bind.address, 45000), probeSyn(path.bind.address, 45000, VIP, TCP_ACK)]);
    assert.equal(out.wire.length, 2, 'SYN and ACK both carried');
    for (const f of out.wire) assert.equal(decode(f).dstMac, RS[0]!.mac);
    assert.equal(p.director.conns.count, before, 'no entry');
    // Another service's VIP from that source: the core's verdict stands (port unreachable back to the pair).
    service(p, '198.18.0.101', [dest(RS[1]!.ip)]);
    await p.ready();
    const other = await p.exchangeBoth([], [probeSyn(path.bind.address, 45001, '198.18.0.101')]);
    assert.equal(other.wire.length, 0);
    const icmp = other.probe.map((f) => decode(f)).filter((d) => d.info.ipVersion === 4);
    assert.equal(icmp.length, 1);
    assert.equal(icmp[0]!.info.protocol, 1, 'ICMP');
    // Back in the table: a connection again.
    p.director.addDest(svc(), dest(RS[0]!.ip));
    await p.ready();
    const again = await p.exchangeBoth([], [probeSyn(path.bind.address, 45002)]);
    assert.equal(decode(again.wire[0]!).dstMac, RS[0]!.mac);
    assert.ok(p.director.connInfos().some((c) => c.caddr === path.bind.address && c.cport === 45002));
  });

  test('TUN: encapsulated to the checked server with its tunnel (GUE), in or out of the table; IPv6 sources', async () => {
    const p = await make();
    const gue = { connFlags: FWD_TUNNEL, tunType: TUN_TYPE_GUE, tunPort: 6080 };
    service(p, VIP, RS.map((r) => dest(r.ip, gue)));
    service(p, VIP6, RS.map((r) => dest(r.ip6, { connFlags: FWD_TUNNEL })));
    await p.ready();
    const vp = p.plane.virtualPaths!;
    const four = vp.open({ service: svc(), dest: { af: 4, addr: RS[2]!.ip, port: 80 }, method: FWD_TUNNEL, tunnel: { type: TUN_TYPE_GUE, port: 6080, flags: 0 }, protocol: 'tcp' })!;
    const six = vp.open({ service: svc(VIP6), dest: { af: 6, addr: RS[1]!.ip6, port: 80 }, method: FWD_TUNNEL, protocol: 'tcp' })!;
    assert.equal(six.bind.address, '2001:2:0:ffff::1');
    const check = (f: Buffer, rs: (typeof RS)[number], v6: boolean) => {
      const d = decode(f);
      assert.equal(d.dstMac, rs.mac);
      assert.equal(d.dst, v6 ? rs.ip6 : rs.ip);
      if (!v6) {
        assert.equal(d.info.protocol, IPPROTO_UDP);
        assert.equal(d.info.dport, 6080);
      }
    };
    for (let k = 0; k < 2; k++) {
      const out = await p.exchangeBoth([], [probeSyn(four.bind.address, 46000 + k), probeSyn(six.bind.address, 46000 + k, VIP6)]);
      assert.equal(out.wire.length, 2);
      check(out.wire[0]!, RS[2]!, false);
      check(out.wire[1]!, RS[1]!, true);
    }
    p.director.delDest(svc(), dest(RS[2]!.ip, gue));
    await p.ready();
    const out = await p.exchangeBoth([], [probeSyn(four.bind.address, 46100)]);
    check(out.wire[0]!, RS[2]!, false);
    const st = vp.status() as { paths: unknown[] };
    assert.equal(st.paths.length, 2);
  });

  test('a VIP configured on the host cannot be probed this way; config section', () => {
    const p = planes[0]!;
    assert.throws(() => p.plane.virtualPaths!.open({ service: { ...svc(), addr: '198.18.0.1' }, dest: { af: 4, addr: RS[0]!.ip, port: 80 }, method: FWD_DROUTE, protocol: 'tcp' }), /configured on this host/);
    const on = packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n'))!;
    assert.deepEqual(on.virtualPaths, { v4: '198.18.255.0/24', v6: '2001:2:0:ffff::/64', table: 7470, priority: 7470, device: 'tsvsvp' });
    assert.equal(packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n  virtualPaths: false\n'))!.virtualPaths, false);
    const v4only = packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n  virtualPaths: { v6: false, v4: 198.18.254.0/28, table: 100 }\n'))!;
    assert.deepEqual(v4only.virtualPaths, { v4: '198.18.254.0/28', v6: '', table: 100, priority: 7470, device: 'tsvsvp' });
    assert.throws(() => packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n  virtualPaths: { v4: 198.18.254.0/31 }\n', 'x.yaml')), /x\.yaml:3:\d+: packet\.virtualPaths\.v4: .*prefix length/);
    assert.throws(() => packetConfig(parseConfig('packet:\n  interfaces: [eth0]\n  virtualPaths: { table: 254 }\n', 'x.yaml')), /x\.yaml:3:\d+: packet\.virtualPaths\.table/);
  });
});

test('probe networks: which addresses are probe sources', () => {
  const idx = new ServedIndex({ vips: [], marks: [], natServers: [], tunnels: [], ownedVips: [], local: [], probe: { port: 1, nets: [parseCidr('198.18.255.0/24', 4), parseCidr('2001:2:0:ffff::/64', 6)] } });
  const is = (a: string) => {
    const x = IpAddr.parse(a);
    return idx.isProbeAddr(x.family, x.w0, x.w1, x.w2, x.w3);
  };
  assert.deepEqual(['198.18.255.0', '198.18.255.1', '198.18.255.255', '198.18.254.255', '198.18.0.1'].map(is), [true, true, true, false, false]);
  assert.deepEqual(['2001:2:0:ffff::1', '2001:2:0:ffff:ffff::ffff', '2001:2:0:fffe::1', '2001:2::1'].map(is), [true, true, false, false]);
  assert.equal(new ServedIndex({ vips: [], marks: [], natServers: [], tunnels: [], ownedVips: [], local: [] }).probePort, -1);
  assert.throws(() => parseCidr('198.18.255.0', 4), /address\/length/);
  assert.throws(() => parseCidr('2001:2::/48', 6), /prefix length must be 64\.\.120/);
  assert.deepEqual(parseCidr('198.18.255.77/24', 4).words, [0xc612ff00, 0, 0, 0], 'masked');
});
