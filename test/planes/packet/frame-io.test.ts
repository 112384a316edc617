// AF_PACKET frame I/O on real veth pairs in namespaces this test creates (root only).
// Traffic stays inside 198.18.0.0/15 and 2001:2::/48, every loop has a deadline.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { type FramePort, frameIoAvailable, interfaceInfo, openFramePort, RX_STATUS, receiveLoop, writeArpRequest, writeNeighborSolicitation } from '../../../src/planes/packet/frame-io.js';
import { createLvsTopology, type Netns, netnsSkipReason, type Topology, Topology as Topo, udpSend, udpSink } from '../../helpers/netns.js';
import { buildUdpFrame, macBytes, v4Bytes, v6Bytes } from './frames.js';

function skipReason(): string | undefined {
  const ns = netnsSkipReason();
  if (ns) return ns;
  const fio = frameIoAvailable();
  if (fio.ok) return undefined;
  // On CI (root) a missing addon is a build failure, not a reason to skip.
  if (process.env.CI) throw new Error(fio.reason);
  return fio.reason;
}
const skip = skipReason();

/** Polls port (bounded by deadline) until done() says so; calls onFrame for each frame. */
function receiveUntil(port: FramePort, deadlineMs: number, onFrame: (buf: Buffer, off: number, len: number, status: number) => void, done: () => boolean): void {
  const end = Date.now() + deadlineMs;
  receiveLoop(
    port,
    (rx) => {
      for (let i = 0; i < rx.count; i++) onFrame(rx.buffer, rx.offsets[i]!, rx.lengths[i]!, rx.status[i]!);
    },
    () => done() || Date.now() >= end,
    50,
  );
}

const isUdpTo = (b: Buffer, off: number, dport: number): boolean =>
  b.readUInt16BE(off + 12) === 0x0800 && b[off + 23] === 17 && b.readUInt16BE(off + 14 + ((b[off + 14]! & 15) << 2) + 2) === dport;

describe('frame I/O on AF_PACKET (root, netns)', { skip, timeout: 120_000 }, () => {
  let topo: Topology;
  let a: Netns;
  let b: Netns;
  const ports: FramePort[] = [];
  const open = (...args: Parameters<typeof openFramePort>): FramePort => {
    const p = openFramePort(...args);
    ports.push(p);
    return p;
  };

  before(() => {
    topo = Topo.create('frameio');
    a = topo.namespace('a');
    b = topo.namespace('b');
    topo.veth(a, 'a0', b, 'b0');
    topo.addr(a, 'a0', '198.18.0.1/24');
    topo.addr(b, 'b0', '198.18.0.2/24');
    topo.addr(a, 'a0', '2001:2::1/64');
    topo.addr(b, 'b0', '2001:2::2/64');
  });

  after(async () => {
    for (const p of ports) p.close();
    await topo?.destroy();
  });

  test('reports the interface: ifindex, MAC, MTU', () => {
    const p = open({ ifname: 'b0', netns: b.name, rx: false });
    assert.equal(p.mac.toString('hex'), b.mac('b0').replaceAll(':', ''));
    assert.equal(p.mtu, 1500);
    assert.ok(p.ifindex > 1);
    const facts = interfaceInfo('b0', b.name);
    assert.deepEqual([facts.ifindex, facts.mac, facts.mtu], [p.ifindex, p.mac, p.mtu]);
    assert.equal(facts.flags & 1, 1, 'IFF_UP');
    // A packet socket's promiscuous membership shows in the device's promiscuity count (not in
    // IFF_PROMISC, which only reflects `ip link set promisc on`).
    const promiscuity = (): number => (JSON.parse(b.ip('-d', '-j', 'link', 'show', 'dev', 'b0')) as Array<{ promiscuity: number }>)[0]!.promiscuity;
    assert.equal(promiscuity(), 0);
    const promisc = open({ ifname: 'b0', netns: b.name, rx: false, promiscuous: true });
    assert.equal(promiscuity(), 1);
    promisc.close();
    assert.equal(promiscuity(), 0, 'promiscuous mode ends with the socket');
    b.ip('link', 'set', 'b0', 'mtu', '1400');
    assert.equal(p.refresh().mtu, 1400);
    b.ip('link', 'set', 'b0', 'mtu', '1500');
    p.close();
  });

  test('receives, through the event loop, datagrams the peer kernel sends', async () => {
    const p = open({ ifname: 'b0', netns: b.name, tx: false });
    const b0mac = p.mac;
    let udp = 0;
    let own = 0;
    let batches = 0;
    let timerFired = false;
    const got = new Promise<void>((resolve) => {
      p.start((rx) => {
        batches++;
        for (let i = 0; i < rx.count; i++) {
          const off = rx.offsets[i]!;
          // Our own kernel's transmits (ARP replies, ICMP port unreachable) must not show up.
          if (rx.buffer.compare(b0mac, 0, 6, off + 6, off + 12) === 0) own++;
          if (isUdpTo(rx.buffer, off, 9999)) {
            assert.equal(rx.buffer.subarray(off + 26, off + 30).join('.'), '198.18.0.1');
            assert.equal(rx.status[i]! & RX_STATUS.TRUNCATED, 0);
            if (++udp === 20) resolve();
          }
        }
      });
    });
    const t = setTimeout(() => {
      timerFired = true;
    }, 1);
    await udpSend(a, '198.18.0.2', 9999, 20);
    await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${udp} of 20 datagrams seen`)), 5000).unref())]);
    clearTimeout(t);
    p.stop();
    assert.equal(udp, 20);
    assert.equal(own, 0, 'frames leaving b0 were received despite ignoreOutgoing');
    assert.ok(batches >= 1);
    assert.ok(timerFired, 'the event loop stayed free while receiving');
    const st = p.stats();
    assert.ok(st.rxFrames >= 20 && st.kernelDrops === 0, JSON.stringify(st));
    p.close();
  });

  test('transmits hand-built IPv4 and IPv6 frames, one syscall per batch, to the peer kernel', async () => {
    const sink = await udpSink(a, '::', 7777);
    const p = open({ ifname: 'b0', netns: b.name, rx: false });
    const dst = macBytes(a.mac('a0'));
    const n = p.reserve(16);
    assert.equal(n, 16);
    for (let i = 0; i < n; i++) {
      const v6 = i % 2 === 1;
      p.tx.lengths[i] = buildUdpFrame(p.tx.buffer, p.tx.offsets[i]!, {
        srcMac: p.mac,
        dstMac: dst,
        src: v6 ? v6Bytes('2001:2::2') : v4Bytes('198.18.0.2'),
        dst: v6 ? v6Bytes('2001:2::1') : v4Bytes('198.18.0.1'),
        sport: 5000 + i,
        dport: 7777,
        payload: Buffer.from(`frame-${i}`),
      });
    }
    assert.equal(p.send(n), n);
    await sink.waitFor(16, 5000);
    const got = sink.received();
    assert.deepEqual(got.map((g) => g.payload.toString()).sort(), Array.from({ length: 16 }, (_, i) => `frame-${i}`).sort());
    assert.ok(got.some((g) => g.from === '2001:2::2'));
    assert.ok(got.some((g) => g.from === '::ffff:198.18.0.2'));
    // Slots come back to us once the kernel has sent them.
    assert.equal(p.reserve(), p.tx.offsets.length);
    assert.equal(p.stats().txFrames, 16);
    await sink.stop();
    p.close();
  });

  test('sends ARP and neighbour solicitations and receives the answers', () => {
    const p = open({ ifname: 'b0', netns: b.name });
    const frame = Buffer.alloc(128);
    assert.ok(p.sendFrame(frame.subarray(0, writeArpRequest(frame, 0, p.mac, v4Bytes('198.18.0.2'), v4Bytes('198.18.0.1')))));
    assert.ok(p.sendFrame(frame.subarray(0, writeNeighborSolicitation(frame, 0, p.mac, v6Bytes('2001:2::2'), v6Bytes('2001:2::1')))));
    const amac = a.mac('a0').replaceAll(':', '');
    let arp = false;
    let na = false;
    receiveUntil(
      p,
      5000,
      (buf, off) => {
        const type = buf.readUInt16BE(off + 12);
        if (type === 0x0806 && buf.readUInt16BE(off + 20) === 2) {
          assert.equal(buf.subarray(off + 22, off + 28).toString('hex'), amac);
          assert.equal(buf.subarray(off + 28, off + 32).join('.'), '198.18.0.1');
          arp = true;
        }
        // ICMPv6 type 136: neighbour advertisement for 2001:2::1 (its target is at +8 of ICMPv6)
        if (type === 0x86dd && buf[off + 20] === 58 && buf[off + 54] === 136) {
          assert.equal(buf.subarray(off + 62, off + 78).toString('hex'), '20010002000000000000000000000001');
          na = true;
        }
      },
      () => arp && na,
    );
    assert.ok(arp, 'no ARP reply');
    assert.ok(na, 'no neighbour advertisement');
    p.close();
  });

  test('fanout: two sockets in one hash group share the flows, each frame once', async () => {
    const group = 0x5a00 + (process.pid & 0xff);
    const p1 = open({ ifname: 'b0', netns: b.name, tx: false, fanout: { group } });
    const p2 = open({ ifname: 'b0', netns: b.name, tx: false, fanout: { group, mode: 'hash' } });
    await udpSend(a, '198.18.0.2', 9998, 64, { sport: 41000, nports: 32 });
    const count = (p: FramePort): number => {
      let c = 0;
      receiveUntil(
        p,
        300,
        (buf, off) => {
          if (isUdpTo(buf, off, 9998)) c++;
        },
        () => false,
      );
      return c;
    };
    const c1 = count(p1);
    const c2 = count(p2);
    assert.equal(c1 + c2, 64, `p1 ${c1} + p2 ${c2}`);
    assert.ok(c1 > 0 && c2 > 0, `32 flows all hashed to one socket? p1 ${c1}, p2 ${c2}`);
    p1.close();
    p2.close();
  });

  test('errors: missing interface, missing namespace, misuse, closed port', () => {
    assert.throws(() => openFramePort({ ifname: 'nosuch0', netns: b.name }), { code: 'ENODEV' });
    assert.throws(() => openFramePort({ ifname: 'b0', netns: `${b.name}-missing` }), { code: 'ENOENT' });
    assert.throws(() => openFramePort({ ifname: 'an-interface-name-too-long', netns: b.name }), { code: 'ENODEV' });
    assert.throws(() => openFramePort({ ifname: 'b0', netns: b.name, fanout: { group: 70000 } }), RangeError);
    const rxOnly = open({ ifname: 'b0', netns: b.name, tx: false });
    assert.throws(() => rxOnly.reserve(1), { code: 'EINVAL' });
    rxOnly.close();
    const p = open({ ifname: 'b0', netns: b.name, rx: false });
    assert.throws(() => p.poll(), { code: 'EINVAL' });
    assert.throws(() => p.start(() => {}), { code: 'EINVAL' });
    assert.equal(p.reserve(2), 2);
    assert.throws(() => p.send(3), TypeError);
    p.tx.lengths[0] = 5;
    assert.throws(() => p.send(1), TypeError);
    const view = p.tx.buffer;
    p.close();
    p.close();
    assert.equal(view.length, 0, 'ring views are emptied on close');
    assert.throws(() => p.reserve(1), { code: 'EBADF' });
  });

  // Root without its capabilities (setpriv clears them): the user stays the owner of the tree,
  // so it runs from any checkout, and AF_PACKET is refused as for any unprivileged process.
  test('EPERM without the network capabilities', { skip: spawnSync('setpriv', ['--version']).status !== 0 ? 'no setpriv (util-linux)' : undefined }, () => {
    const script = `import('${new URL('../../../src/planes/packet/frame-io.ts', import.meta.url).href}').then((m) => {
      try { m.openFramePort({ ifname: 'lo' }); console.log('opened'); } catch (e) { console.log(e.code); }
    })`;
    const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', process.execPath, '--import', 'tsx', '-e', script], { encoding: 'utf8', cwd: new URL('../../..', import.meta.url).pathname, timeout: 20_000 });
    assert.equal(r.stdout.trim(), 'EPERM', r.stderr);
  });
});

describe('forwarding between two ports (root, netns)', { skip, timeout: 60_000 }, () => {
  test('frames received on the client side leave on the server side with rewritten MACs', async () => {
    // client -> director (kernel forwarding off: only our loop moves frames) -> rs1
    const lvs = createLvsTopology('fwd', { arms: 'two', servers: 1, forwarding: false });
    const ports: FramePort[] = [];
    try {
      const d = lvs.director;
      const rs = lvs.servers[0]!;
      const sink = await udpSink(rs.ns, rs.v4, 6000);
      const inPort = openFramePort({ ifname: d.clientIf, netns: d.ns.name, tx: false });
      const outPort = openFramePort({ ifname: d.serverIf, netns: d.ns.name, rx: false });
      ports.push(inPort, outPort);
      const rsMac = macBytes(rs.mac);
      const sent = udpSend(lvs.client.ns, rs.v4, 6000, 50);
      let forwarded = 0;
      const end = Date.now() + 5000;
      while (forwarded < 50 && Date.now() < end) {
        if (!inPort.wait(20)) continue;
        const n = inPort.poll();
        let k = 0;
        for (let i = 0; i < n; i++) {
          const off = inPort.rx.offsets[i]!;
          if (!isUdpTo(inPort.rx.buffer, off, 6000)) continue;
          inPort.rx.buffer.set(rsMac, off);
          inPort.rx.buffer.set(outPort.mac, off + 6);
          outPort.forwardIndex[k++] = i;
        }
        forwarded += outPort.forward(inPort, k);
      }
      await sent;
      await sink.waitFor(50, 5000);
      assert.equal(sink.received().length, 50);
      assert.ok(sink.received().every((g) => g.from === lvs.client.v4));
      await sink.stop();
    } finally {
      for (const p of ports) p.close();
      await lvs.destroy();
    }
  });
});
