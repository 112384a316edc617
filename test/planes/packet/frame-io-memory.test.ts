// The parts of frame I/O that need no root: the in-memory port pair (same batch protocol as
// AF_PACKET), fanout option encoding, and the neighbour-request frames.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpAddr } from '../../../src/core/addr.js';
import { createMemoryPortPair, fanoutArg, writeArpRequest, writeNeighborSolicitation } from '../../../src/planes/packet/frame-io.js';
import { buildUdpFrame, macBytes, v4Bytes } from './frames.js';

const frameOf = (i: number, buf: Buffer, off: number, srcMac: Uint8Array): number =>
  buildUdpFrame(buf, off, {
    srcMac,
    dstMac: macBytes('02:00:00:00:00:02'),
    src: v4Bytes('198.18.0.1'),
    dst: v4Bytes('198.18.0.2'),
    sport: 1000 + i,
    dport: 53,
    payload: Buffer.from(`m${i}`),
  });

test('memory ports: a batch written into tx slots arrives as one rx batch, in order', () => {
  const [a, b] = createMemoryPortPair({ slots: 8 });
  assert.equal(b.poll(), 0);
  const n = a.reserve(5);
  assert.equal(n, 5);
  for (let i = 0; i < n; i++) a.tx.lengths[i] = frameOf(i, a.tx.buffer, a.tx.offsets[i]!, a.mac);
  assert.equal(a.send(5), 5);
  assert.equal(b.poll(), 5);
  for (let i = 0; i < 5; i++) {
    const off = b.rx.offsets[i]!;
    assert.equal(b.rx.buffer.readUInt16BE(off + 34), 1000 + i);
    assert.equal(b.rx.lengths[i], 14 + 20 + 8 + 2);
  }
  // Held frames occupy slots until released: only 3 free now.
  assert.equal(a.reserve(), 3);
  b.release();
  assert.equal(a.reserve(), 8);
  assert.equal(b.poll(), 0);
});

test('memory ports: forward() copies listed rx frames to the other side', () => {
  const [a, b] = createMemoryPortPair({ slots: 16 });
  const [c, d] = createMemoryPortPair({ slots: 16 });
  for (let i = 0; i < 6; i++) {
    a.reserve(1);
    a.tx.lengths[0] = frameOf(i, a.tx.buffer, a.tx.offsets[0]!, a.mac);
    a.send(1);
  }
  assert.equal(b.poll(), 6);
  // forward the even ones, with a rewritten destination MAC
  let k = 0;
  for (let i = 0; i < 6; i += 2) {
    b.rx.buffer[b.rx.offsets[i]!] = 0x0a;
    c.forwardIndex[k++] = i;
  }
  assert.equal(c.forward(b, k), 3);
  assert.equal(d.poll(), 3);
  for (let i = 0; i < 3; i++) {
    const off = d.rx.offsets[i]!;
    assert.equal(d.rx.buffer[off], 0x0a);
    assert.equal(d.rx.buffer.readUInt16BE(off + 34), 1000 + 2 * i);
  }
});

test('memory ports: start() delivers batches through the event loop; send() checks lengths', async () => {
  const [a, b] = createMemoryPortPair();
  const seen: number[] = [];
  const done = new Promise<void>((resolve) => {
    b.start((rx) => {
      for (let i = 0; i < rx.count; i++) seen.push(rx.buffer.readUInt16BE(rx.offsets[i]! + 34));
      if (seen.length === 4) resolve();
    });
  });
  for (let i = 0; i < 4; i++) {
    const f = Buffer.alloc(64);
    assert.ok(a.sendFrame(f.subarray(0, frameOf(i, f, 0, a.mac))));
  }
  await done;
  b.stop();
  assert.deepEqual(seen, [1000, 1001, 1002, 1003]);
  a.reserve(1);
  a.tx.lengths[0] = 3;
  assert.throws(() => a.send(1), RangeError);
  assert.throws(() => a.send(2), RangeError);
  assert.ok(!a.sendFrame(Buffer.alloc(4096)));
});

test('fanout option: group id low, mode and flags high', () => {
  assert.equal(fanoutArg({ group: 7 }), 7);
  assert.equal(fanoutArg({ group: 7, mode: 'cpu' }), 7 | (2 << 16));
  assert.equal(fanoutArg({ group: 0xffff, mode: 'hash', defrag: true, rollover: true }), (0xffff | ((0x8000 | 0x1000) << 16)) >>> 0);
  assert.throws(() => fanoutArg({ group: -1 }), RangeError);
  assert.throws(() => fanoutArg({ group: 1.5 }), RangeError);
});

test('ARP request frame', () => {
  const buf = Buffer.alloc(64, 0xee);
  const mac = macBytes('02:11:22:33:44:55');
  const n = writeArpRequest(buf, 2, mac, IpAddr.parse('198.18.0.2'), v4Bytes('198.18.0.1'));
  assert.equal(n, 42);
  assert.equal(buf.subarray(2, 44).toString('hex'), `ffffffffffff021122334455080600010800060400010211223344 55c612000200000000 0000c6120001`.replaceAll(' ', ''));
  assert.throws(() => writeArpRequest(buf, 0, mac, v4Bytes('198.18.0.2'), IpAddr.parse('2001:2::1')), RangeError);
});

test('neighbour solicitation frame: solicited-node destination, valid ICMPv6 checksum', () => {
  const buf = Buffer.alloc(128);
  const mac = macBytes('02:11:22:33:44:55');
  const n = writeNeighborSolicitation(buf, 0, mac, IpAddr.parse('2001:2::2'), IpAddr.parse('2001:2::ab:cdef'));
  assert.equal(n, 86);
  assert.equal(buf.subarray(0, 6).toString('hex'), '3333ffabcdef');
  assert.equal(buf.subarray(38, 54).toString('hex'), 'ff0200000000000000000001ffabcdef');
  assert.equal(buf[21], 255); // hop limit
  assert.equal(buf[54], 135);
  // Summing pseudo-header and message including the checksum gives 0xffff.
  let s = 58 + 32;
  for (let i = 22; i < 54; i += 2) s += buf.readUInt16BE(i);
  for (let i = 54; i < 86; i += 2) s += buf.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  assert.equal(s, 0xffff);
});
