// The packet plane on in-memory ports (no root): what each transmitter makes of a frame, the
// answers the director owes (ICMP, resets, ARP, ND), ICMP translation both ways, and hostile
// frames. The same engine runs on AF_PACKET rings in the root tests.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_UDP, PacketInfo, parseIcmpError, TCP_ACK, TCP_RST, TCP_SYN } from '../../../src/codec/index.js';
import { FWD_DROUTE, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, TUN_TYPE_GRE, TUN_TYPE_GUE } from '../../../src/core/constants.js';
import type { DestSpec } from '../../../src/core/model.js';
import { CLIENT, DIRECTOR_MAC, GATEWAY, memoryPlane, RS, VIP, VIP6 } from './harness.js';
import { decode, frame, ipOf } from './pktgen.js';

const svc = (addr = VIP, port = 80, protocol = IPPROTO_TCP) => ({ af: (addr.includes(':') ? 6 : 4) as 4 | 6, protocol, addr, port, fwmark: 0 });
const addService = (p: Awaited<ReturnType<typeof memoryPlane>>, addr = VIP, port = 80, protocol = IPPROTO_TCP, sched = 'rr') =>
  p.director.addService({ ...svc(addr, port, protocol), schedName: sched, flags: 0, timeout: 0, netmask: addr.includes(':') ? 128 : 0xffffffff });
const addDest = (p: Awaited<ReturnType<typeof memoryPlane>>, key: ReturnType<typeof svc>, spec: Partial<DestSpec> & { addr: string }) =>
  p.director.addDest(key, { af: spec.addr.includes(':') ? 6 : 4, port: 80, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0, ...spec });

const syn = (o: Partial<Parameters<typeof frame>[0]> = {}) =>
  frame({ srcMac: CLIENT.mac, dstMac: DIRECTOR_MAC, src: CLIENT.ip, dst: VIP, protocol: 'tcp', sport: 40000, dport: 80, flags: TCP_SYN, ...o });

describe('packet plane engine on memory ports', () => {
  const planes: Awaited<ReturnType<typeof memoryPlane>>[] = [];
  const make = async (o: Parameters<typeof memoryPlane>[0] = {}) => {
    const p = await memoryPlane(o);
    planes.push(p);
    return p;
  };
  after(async () => {
    for (const p of planes) await p.close();
  });

  test('NAT: the client SYN goes to the real server with its address and port, checksums right, TTL - 1', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[0]!.ip, port: 8080 });
    await p.ready();
    const out = await p.exchange(syn());
    assert.equal(out.length, 1);
    const d = decode(out[0]!);
    assert.equal(d.dstMac, RS[0]!.mac);
    assert.equal(d.srcMac, DIRECTOR_MAC);
    assert.equal(d.src, CLIENT.ip);
    assert.equal(d.dst, RS[0]!.ip);
    assert.equal(d.info.dport, 8080);
    assert.equal(d.ttl, 63);
    assert.ok(d.checksumsOk, 'checksums');
    const conns = p.director.connInfos();
    assert.equal(conns.length, 1);
    assert.equal(conns[0]!.state, 'SYN_RECV');

    // The real server's SYN-ACK comes back through the director with the VIP as source.
    const synack = frame({ srcMac: RS[0]!.mac, dstMac: DIRECTOR_MAC, src: RS[0]!.ip, dst: CLIENT.ip, protocol: 'tcp', sport: 8080, dport: 40000, flags: TCP_SYN | TCP_ACK });
    const back = await p.exchange(synack);
    assert.equal(back.length, 1);
    const b = decode(back[0]!);
    assert.equal(b.dstMac, CLIENT.mac);
    assert.equal(b.src, VIP);
    assert.equal(b.info.sport, 80);
    assert.equal(b.dst, CLIENT.ip);
    assert.ok(b.checksumsOk);
    const st = p.director.serviceInfo(svc()).stats;
    assert.equal(st.inpkts, 1);
    assert.equal(st.outpkts, 1);
    assert.equal(st.conns, 1);
    assert.equal(st.inbytes, 40);
  });

  test('rr over three NAT real servers, and the same connection keeps its server', async () => {
    const p = await make();
    addService(p);
    for (const r of RS) addDest(p, svc(), { addr: r.ip });
    await p.ready();
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const out = await p.exchange(syn({ sport: 41000 + i }));
      seen.push(decode(out[0]!).dst);
    }
    assert.deepEqual(seen.slice(0, 3).sort(), RS.map((r) => r.ip).sort());
    assert.deepEqual(seen.slice(3), seen.slice(0, 3));
    const again = await p.exchange(syn({ sport: 41000, flags: TCP_ACK, ack: 1 }));
    assert.equal(decode(again[0]!).dst, seen[0]);
  });

  test('DR: only the MACs change (and the TTL)', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[1]!.ip, connFlags: FWD_DROUTE });
    await p.ready();
    const f = syn({ payload: Buffer.from('hello') });
    const out = await p.exchange(f);
    const d = decode(out[0]!);
    assert.equal(d.dstMac, RS[1]!.mac);
    assert.equal(d.dst, VIP);
    assert.equal(d.info.dport, 80);
    assert.equal(d.ttl, 63);
    assert.ok(d.checksumsOk);
    assert.deepEqual(out[0]!.subarray(14 + 12), f.subarray(14 + 12), 'nothing changed after the IP header checksum');
    // DR connections use the input-only table: a client FIN moves ESTABLISHED to FIN_WAIT.
    await p.exchange(syn({ flags: TCP_ACK, ack: 1 }));
    assert.equal(p.director.connInfos()[0]!.state, 'ESTABLISHED');
    await p.exchange(syn({ flags: TCP_ACK | 0x01, ack: 1 }));
    assert.equal(p.director.connInfos()[0]!.state, 'FIN_WAIT');
  });

  for (const [name, type, proto] of [
    ['IPIP', 0, IPPROTO_IPIP],
    ['GUE', TUN_TYPE_GUE, IPPROTO_UDP],
    ['GRE', TUN_TYPE_GRE, IPPROTO_GRE],
  ] as const) {
    test(`TUN (${name}): the client packet, TTL - 1, inside an outer header to the real server`, async () => {
      const p = await make();
      addService(p);
      addDest(p, svc(), { addr: RS[2]!.ip, connFlags: FWD_TUNNEL, tunType: type, tunPort: type === TUN_TYPE_GUE ? 6080 : 0 });
      await p.ready();
      const f = syn({ payload: Buffer.from('x'.repeat(100)) });
      const out = await p.exchange(f);
      assert.equal(out.length, 1);
      const d = decode(out[0]!);
      assert.equal(d.dstMac, RS[2]!.mac);
      assert.equal(d.src, '198.18.0.1');
      assert.equal(d.dst, RS[2]!.ip);
      assert.equal(d.info.protocol, proto);
      assert.ok(d.checksumsOk);
      const overhead = name === 'IPIP' ? 20 : name === 'GUE' ? 32 : 24;
      const inner = out[0]!.subarray(14 + overhead);
      assert.equal(inner.length, f.length - 14);
      assert.equal(inner[8], 63, 'inner TTL decremented');
      assert.deepEqual(inner.subarray(12), ipOf(f).subarray(12), 'inner addresses and payload unchanged');
      if (name === 'GUE') assert.equal(d.info.dport, 6080);
    });
  }

  test('TUN: a DF packet that does not fit the tunnel gets frag-needed with the inner MTU', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[2]!.ip, connFlags: FWD_TUNNEL });
    await p.ready();
    const big = syn({ flags: TCP_SYN, payload: Buffer.alloc(1460) });
    const out = await p.exchange(big);
    assert.equal(out.length, 1);
    const d = decode(out[0]!);
    assert.equal(d.dstMac, CLIENT.mac);
    assert.equal(d.src, VIP);
    assert.equal(d.dst, CLIENT.ip);
    assert.equal(d.info.icmpType, 3);
    assert.equal(d.info.icmpCode, 4);
    assert.equal(d.info.icmpMtu, 1480);
    assert.ok(d.checksumsOk);
    assert.equal(p.plane.status().drops && (p.plane.status().drops as Record<string, number>).frag_needed, 1);
  });

  test('no real server: ICMP port unreachable from the VIP; a segment without a connection: reset', async () => {
    const p = await make();
    addService(p);
    await p.ready();
    const out = await p.exchange(syn());
    const d = decode(out[0]!);
    assert.equal([d.info.icmpType, d.info.icmpCode].join('/'), '3/3');
    assert.equal(d.src, VIP);
    assert.equal(d.dst, CLIENT.ip);
    assert.equal(p.director.drops.noDest, 1);

    addDest(p, svc(), { addr: RS[0]!.ip });
    const ack = await p.exchange(syn({ flags: TCP_ACK, ack: 777, sport: 45000 }));
    const r = decode(ack[0]!);
    assert.equal(r.info.tcpFlags, TCP_RST);
    assert.equal(r.info.tcpSeq, 777);
    assert.equal(r.src, VIP);
    assert.equal(r.info.sport, 80);
    assert.equal(r.info.dport, 45000);
    assert.ok(r.checksumsOk);
  });

  test('a VIP the host does not own answers like its host: ARP, echo, reset on other ports, UDP unreachable', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[0]!.ip });
    await p.ready();
    const arp = Buffer.alloc(42);
    arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
    arp.set(Buffer.from(CLIENT.mac.replaceAll(':', ''), 'hex'), 6);
    arp.writeUInt16BE(0x0806, 12);
    arp.set([0, 1, 8, 0, 6, 4, 0, 1], 14);
    arp.set(Buffer.from(CLIENT.mac.replaceAll(':', ''), 'hex'), 22);
    arp.set([198, 18, 0, 10], 28);
    arp.set([198, 18, 0, 100], 38);
    const [reply] = await p.exchange(arp);
    assert.ok(reply);
    assert.equal(reply.readUInt16BE(20), 2, 'ARP reply');
    assert.equal([...reply.subarray(22, 28)].map((x) => x.toString(16).padStart(2, '0')).join(':'), DIRECTOR_MAC);
    assert.deepEqual([...reply.subarray(28, 32)], [198, 18, 0, 100]);

    const [echo] = await p.exchange(frame({ srcMac: CLIENT.mac, dstMac: DIRECTOR_MAC, src: CLIENT.ip, dst: VIP, protocol: 'icmp', icmpType: 8, icmpRest: 0x00010001, payload: Buffer.from('ping') }));
    const e = decode(echo!);
    assert.equal(e.info.icmpType, 0);
    assert.equal(e.src, VIP);
    assert.ok(e.checksumsOk);

    const [rst] = await p.exchange(syn({ dport: 22 }));
    assert.equal(decode(rst!).info.tcpFlags, TCP_RST | TCP_ACK);
    const [unr] = await p.exchange(frame({ srcMac: CLIENT.mac, dstMac: DIRECTOR_MAC, src: CLIENT.ip, dst: VIP, protocol: 'udp', dport: 53 }));
    assert.equal(decode(unr!).info.icmpType, 3);
  });

  test('next hops are resolved by ARP; frames wait for the answer', async () => {
    const p = await make({ seed: false });
    addService(p);
    addDest(p, svc(), { addr: RS[0]!.ip });
    await p.ready();
    const out = await p.exchange(syn());
    // Only the ARP request: the SYN waits.
    const reqs = out.filter((f) => f.readUInt16BE(12) === 0x0806);
    assert.ok(reqs.length >= 1, 'ARP request sent');
    const req = reqs.find((f) => f.subarray(38, 42).equals(Buffer.from([198, 18, 0, 21])));
    assert.ok(req, 'who-has 198.18.0.21');
    assert.deepEqual([...req.subarray(28, 32)], [198, 18, 0, 1], 'asked from the interface address');
    assert.equal(out.filter((f) => f.readUInt16BE(12) === 0x0800).length, 0);
    const ans = Buffer.alloc(42);
    const rsMac = Buffer.from(RS[0]!.mac.replaceAll(':', ''), 'hex');
    ans.set(Buffer.from(DIRECTOR_MAC.replaceAll(':', ''), 'hex'), 0);
    ans.set(rsMac, 6);
    ans.writeUInt16BE(0x0806, 12);
    ans.set([0, 1, 8, 0, 6, 4, 0, 2], 14);
    ans.set(rsMac, 22);
    ans.set([198, 18, 0, 21], 28);
    ans.set(Buffer.from(DIRECTOR_MAC.replaceAll(':', ''), 'hex'), 32);
    ans.set([198, 18, 0, 1], 38);
    const sent = await p.exchange(ans);
    const ip = sent.filter((f) => f.readUInt16BE(12) === 0x0800);
    assert.equal(ip.length, 1, 'the waiting SYN went out');
    assert.equal(decode(ip[0]!).dstMac, RS[0]!.mac);
    const n = p.plane.neighbours!.entries().find((x) => x.addr.toString() === RS[0]!.ip);
    assert.equal(n?.state, 'reachable');
  });

  test('ICMP errors: from the client side to the real server, from a NAT real server to the client', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[0]!.ip, port: 8080 });
    await p.ready();
    await p.exchange(syn());
    // The client says its port is unreachable about our SYN-ACK (VIP:80 -> client:40000).
    const reply = frame({ srcMac: DIRECTOR_MAC, dstMac: CLIENT.mac, src: VIP, dst: CLIENT.ip, protocol: 'tcp', sport: 80, dport: 40000, flags: TCP_SYN | TCP_ACK });
    const err = frame({ srcMac: CLIENT.mac, dstMac: DIRECTOR_MAC, src: CLIENT.ip, dst: VIP, protocol: 'icmp', icmpType: 3, icmpCode: 3, payload: ipOf(reply).subarray(0, 28) });
    const [toRs] = await p.exchange(err);
    const t = decode(toRs!);
    assert.equal(t.dst, RS[0]!.ip);
    assert.equal(t.dstMac, RS[0]!.mac);
    assert.ok(t.checksumsOk);
    const q = new PacketInfo();
    assert.equal(parseIcmpError(toRs!, t.info, q), 0);
    assert.equal(toRs!.readUInt32BE(q.saddrOff), 0xc6120015, 'quoted source is the real server');
    assert.equal(q.sport, 8080, 'quoted source port is the real server port');

    // The real server says the client's port... rather: host unreachable about the client's request.
    const req = frame({ srcMac: CLIENT.mac, dstMac: DIRECTOR_MAC, src: CLIENT.ip, dst: RS[0]!.ip, protocol: 'tcp', sport: 40000, dport: 8080 });
    const err2 = frame({ srcMac: RS[0]!.mac, dstMac: DIRECTOR_MAC, src: RS[0]!.ip, dst: CLIENT.ip, protocol: 'icmp', icmpType: 3, icmpCode: 1, payload: ipOf(req).subarray(0, 28) });
    const [toClient] = await p.exchange(err2);
    const c = decode(toClient!);
    assert.equal(c.src, VIP);
    assert.equal(c.dst, CLIENT.ip);
    assert.ok(c.checksumsOk);
    const st = p.director.serviceInfo(svc()).stats;
    assert.equal(st.inpkts, 2);
    assert.equal(st.outpkts, 1);
  });

  test('IPv6 NAT and neighbour advertisements for the VIP', async () => {
    const p = await make();
    addService(p, VIP6);
    addDest(p, svc(VIP6), { addr: RS[0]!.ip6, port: 8080 });
    await p.ready();
    const out = await p.exchange(frame({ srcMac: CLIENT.mac, dstMac: DIRECTOR_MAC, src: CLIENT.ip6, dst: VIP6, protocol: 'tcp', sport: 40000, dport: 80, flags: TCP_SYN }));
    const d = decode(out[0]!);
    assert.equal(d.dst, RS[0]!.ip6);
    assert.equal(d.info.dport, 8080);
    assert.equal(d.ttl, 63);
    assert.ok(d.checksumsOk);
  });

  test('hostile frames: random, truncated and corrupted frames are dropped and counted, never thrown', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[0]!.ip });
    await p.ready();
    let seed = 12345;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    const good = syn({ payload: Buffer.from('abcdefgh') });
    const frames: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const f = Buffer.from(good);
      const kind = i % 4;
      if (kind === 0) frames.push(f.subarray(0, rnd() % f.length));
      else if (kind === 1) {
        for (let k = 0; k < 3; k++) f[14 + (rnd() % (f.length - 14))] = rnd() & 0xff;
        frames.push(f);
      } else if (kind === 2) {
        const r = Buffer.alloc(14 + (rnd() % 200));
        for (let k = 0; k < r.length; k++) r[k] = rnd() & 0xff;
        r.set(Buffer.from(DIRECTOR_MAC.replaceAll(':', ''), 'hex'), 0);
        r.writeUInt16BE(rnd() & 1 ? 0x0800 : 0x86dd, 12);
        frames.push(r);
      } else frames.push(Buffer.concat([f, Buffer.alloc(rnd() % 40)]));
    }
    const sent = frames.filter((f) => f.length >= 14);
    for (let i = 0; i < sent.length; i += 50) await p.exchange(...sent.slice(i, i + 50));
    const st = p.plane.status();
    const drops = st.drops as Record<string, number>;
    assert.ok(Object.values(drops).reduce((a, b) => a + b, 0) > 100, JSON.stringify(st));
    assert.equal((st.packets as { rx: number }).rx, sent.length, JSON.stringify(st));
    // The plane still works after all that.
    const [ok] = await p.exchange(syn({ sport: 50000 }));
    assert.equal(decode(ok!).dst, RS[0]!.ip);
  });

  test('served() and unserved(): fwmark services need mark rules', async () => {
    const p = await make();
    addService(p);
    p.director.addService({ af: 4, protocol: IPPROTO_TCP, addr: '0.0.0.0', port: 0, fwmark: 7, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
    p.director.addDest({ af: 4, protocol: IPPROTO_TCP, addr: '0.0.0.0', port: 0, fwmark: 7 }, { af: 4, addr: RS[0]!.ip, port: 0, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0 });
    assert.deepEqual(p.plane.served(), ['tcp:198.18.0.100:80']);
    const u = p.plane.unserved();
    assert.equal(u.length, 1);
    assert.match(u[0]!.reason!, /packet.fwmarks/);
  });

  test('a gateway route: NAT replies to a client behind the default gateway go to the gateway MAC', async () => {
    const p = await make();
    addService(p);
    addDest(p, svc(), { addr: RS[0]!.ip });
    await p.ready();
    const far = '198.19.7.7';
    await p.exchange(syn({ src: far, srcMac: GATEWAY.mac }));
    const [b] = await p.exchange(frame({ srcMac: RS[0]!.mac, dstMac: DIRECTOR_MAC, src: RS[0]!.ip, dst: far, protocol: 'tcp', sport: 80, dport: 40000, flags: TCP_SYN | TCP_ACK }));
    const d = decode(b!);
    assert.equal(d.dstMac, GATEWAY.mac);
    assert.equal(d.src, VIP);
  });
});
