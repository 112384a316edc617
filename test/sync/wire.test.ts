// Sync wire formats (spec ipvs-kernel.md §10.3–§10.5): round trips of both versions, the exact
// layout (header, record sizes, alignment padding), and every receiver rule with hand-built
// hostile messages — which problems drop the rest of a message and which skip one record.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IpAddr } from '../../src/core/addr.js';
import { CONN_F_HASHED, CONN_F_IN_SEQ, CONN_F_INACTIVE, CONN_F_SYNC, CONN_F_TEMPLATE, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../src/core/constants.js';
import type { SyncConnRecord } from '../../src/core/sync.js';
import { decodeMessage, encodeMessage, SyncMessageBuilder, writeRecordV1 } from '../../src/sync/wire.js';

const A = (s: string) => IpAddr.parse(s);

function rec(over: Partial<SyncConnRecord> = {}): SyncConnRecord {
  return {
    af: 4,
    protocol: IPPROTO_TCP,
    flags: 0x0103, // DR, INACTIVE
    state: 1,
    cport: 40000,
    vport: 80,
    dport: 80,
    fwmark: 0,
    timeout: 900,
    caddr: A('198.18.5.5'),
    vaddr: A('198.18.0.1'),
    daddr: A('198.19.0.2'),
    ...over,
  };
}

const rec6 = (over: Partial<SyncConnRecord> = {}) => rec({ af: 6, caddr: A('2001:2::5'), vaddr: A('2001:2::1'), daddr: A('2001:2:0:2::21'), ...over });

/** A raw v1 record (fixed part only, or with `extra` bytes after it) with ver_size fixed up. */
function raw1(r: SyncConnRecord, extra: number[] = [], size?: number): Buffer {
  const fixed = r.af === 6 ? 72 : 36;
  const b = Buffer.alloc(fixed + extra.length);
  writeRecordV1(b, 0, { ...r, flags: r.flags & ~0x600 });
  b.set(extra, fixed);
  b.writeUInt16BE(size ?? b.length, 2);
  return b;
}

/** A v1 message around raw records, each padded to 4 bytes (no trailing padding). */
function msg1(records: Buffer[], o: { syncid?: number; nr?: number; reserved?: number; version?: number; spare?: number } = {}): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  let size = 8;
  records.forEach((r, i) => {
    parts.push(r);
    size += r.length;
    if (i < records.length - 1 && size % 4) {
      const pad = 4 - (size % 4);
      parts.push(Buffer.alloc(pad));
      size += pad;
    }
  });
  const m = Buffer.concat(parts);
  m[0] = o.reserved ?? 0;
  m[1] = o.syncid ?? 0;
  m.writeUInt16BE(m.length, 2);
  m[4] = o.nr ?? records.length;
  m[5] = o.version ?? 1;
  m.writeUInt16BE(o.spare ?? 0, 6);
  return m;
}

const codes = (r: ReturnType<typeof decodeMessage>) => r.errors.map((e) => `${e.code}@${e.record}${e.fatal ? '!' : ''}`).join(' ');

test('v1 round trip: IPv4 and IPv6 records, header fields, flags reduced to BACKUP_MASK | SYNC', () => {
  const a = rec({ flags: 0x0103 | CONN_F_HASHED | 0x10000 /* NFCT */ });
  const b = rec6({ protocol: IPPROTO_UDP, state: 0, timeout: 300, fwmark: 7 });
  const m = encodeMessage(1, 42, [a, b]);
  assert.equal(m.length, 8 + 36 + 72);
  assert.deepEqual([...m.subarray(0, 8)], [0, 42, 0, 116, 2, 1, 0, 0]);
  // type, protocol, ver_size (version 0, length), flags without HASHED, state, ports
  assert.deepEqual([...m.subarray(8, 12)], [0, 6, 0, 36]);
  assert.equal(m.readUInt32BE(12), 0x10103);
  assert.equal(m[44], 1); // IPv6 type
  const r = decodeMessage(m);
  assert.equal(r.version, 1);
  assert.equal(r.syncid, 42);
  assert.equal(r.errors.length, 0);
  assert.equal(r.records.length, 2);
  const [x, y] = r.records;
  assert.equal(x!.wireFlags, 0x10103);
  assert.equal(x!.flags, 0x0103 | CONN_F_SYNC); // NFCT is not accepted from the wire
  assert.equal(x!.caddr.toString(), '198.18.5.5');
  assert.equal(x!.daddr.toString(), '198.19.0.2');
  assert.equal([x!.cport, x!.vport, x!.dport, x!.state, x!.timeout].join(), '40000,80,80,1,900');
  assert.equal(y!.af, 6);
  assert.equal(y!.vaddr.toString(), '2001:2::1');
  assert.equal([y!.protocol, y!.timeout, y!.fwmark].join(), '17,300,7');
});

test('v1 options: SEQ_DATA (24 bytes, network order), PE_DATA/PE_NAME; records 4-byte aligned, size counts the padding but none trails', () => {
  const seq = rec({ flags: 0x0103 | CONN_F_IN_SEQ, inSeq: { initSeq: 1, delta: 2, previousDelta: 3 }, outSeq: { initSeq: 0xfffffffe, delta: 5, previousDelta: 6 } });
  const pe = rec({ flags: CONN_F_TEMPLATE | 3, protocol: IPPROTO_UDP, state: 1, peData: Uint8Array.from([1, 2, 3]), peName: 'sip' });
  const plain = rec({ cport: 1 });
  const m = encodeMessage(1, 0, [seq, pe, plain]);
  // seq record 36 + 26 = 62 → 2 bytes of padding; pe record 36 + 5 + 5 = 46 → 2 bytes; last 36.
  assert.equal(m.length, 8 + 62 + 2 + 46 + 2 + 36);
  assert.equal(m.readUInt16BE(8 + 2), 62);
  assert.deepEqual([...m.subarray(8 + 36, 8 + 38)], [1, 24]);
  assert.equal(m.readUInt32BE(8 + 38), 1);
  assert.equal(m.readUInt32BE(8 + 38 + 12), 0xfffffffe);
  assert.deepEqual([...m.subarray(8 + 62, 8 + 64)], [0, 0]);
  const r = decodeMessage(m);
  assert.equal(r.errors.length, 0);
  assert.deepEqual(r.records[0]!.outSeq, { initSeq: 0xfffffffe, delta: 5, previousDelta: 6 });
  assert.equal(r.records[1]!.peName, 'sip');
  assert.deepEqual([...r.records[1]!.peData!], [1, 2, 3]);
  assert.equal(r.records[2]!.cport, 1);
});

test('v0 round trip: 4-byte header, 24-byte records, 16-bit flags, seq options in host order, no timeout/fwmark', () => {
  const a = rec({ flags: 0x0100 | CONN_F_IN_SEQ | CONN_F_HASHED, inSeq: { initSeq: 0x01020304, delta: 1, previousDelta: 2 } });
  const b = rec({ protocol: IPPROTO_UDP, state: 0, cport: 53 });
  const m = encodeMessage(0, 9, [a, b]);
  assert.equal(m.length, 4 + 48 + 24);
  assert.deepEqual([...m.subarray(0, 4)], [2, 9, 0, 76]);
  assert.equal(m.readUInt16BE(4 + 20), 0x0500); // HASHED dropped
  assert.equal(m.readUInt32LE(4 + 24), 0x01020304); // host (little-endian) order
  const r = decodeMessage(m);
  assert.equal(r.version, 0);
  assert.equal(r.errors.length, 0);
  assert.equal(r.records.length, 2);
  assert.equal(r.records[0]!.flags, 0x0500 | CONN_F_SYNC);
  assert.equal(r.records[0]!.inSeq!.initSeq, 0x01020304);
  assert.equal([r.records[1]!.timeout, r.records[1]!.fwmark, r.records[1]!.cport].join(), '0,0,53');
  // v0 flags are not reduced to BACKUP_MASK: only HASHED goes, SYNC is added.
  const all = Buffer.from(m);
  all.writeUInt16BE(0xffff & ~0x0600, 4 + 48 + 20);
  assert.equal(decodeMessage(all).records[1]!.flags, (0xffff & ~0x0600 & ~CONN_F_HASHED) | CONN_F_SYNC);
});

test('header: shorter than 4 bytes or size ≠ datagram length refuses the message; syncid filter', () => {
  assert.equal(codes(decodeMessage(Buffer.from([0, 1, 0]))), 'header-too-short@-1!');
  const m = encodeMessage(1, 5, [rec()]);
  const longer = Buffer.concat([m, Buffer.alloc(1)]);
  assert.equal(codes(decodeMessage(longer)), 'bad-size@-1!');
  assert.equal(decodeMessage(longer).version, null);
  assert.equal(decodeMessage(m, { syncid: 6 }).ignored, true);
  assert.equal(decodeMessage(m, { syncid: 6 }).records.length, 0);
  assert.equal(decodeMessage(m, { syncid: 5 }).records.length, 1);
  assert.equal(decodeMessage(m, { syncid: 0 }).records.length, 1); // 0 accepts any id
  // An empty v0 message is valid and carries nothing.
  const empty = decodeMessage(Buffer.from([0, 0, 0, 4]));
  assert.equal(empty.version, 0);
  assert.equal(empty.errors.length, 0);
});

test('v1 is recognised only with version 1, reserved 0 and spare 0; otherwise read as v0', () => {
  const r = raw1(rec());
  assert.equal(decodeMessage(msg1([r])).version, 1);
  // reserved ≠ 0: v0 with nr_conns = reserved, whose records are garbage-sized
  const a = decodeMessage(msg1([r], { reserved: 1 }));
  assert.equal(a.version, 0);
  assert.equal(decodeMessage(msg1([r], { spare: 1 })).version, 0);
  assert.equal(decodeMessage(msg1([r], { version: 2 })).version, 0);
  // v0 view of a v1 message with reserved 0: nr_conns 0, nothing applied, nothing wrong
  const b = decodeMessage(msg1([r], { version: 0 }));
  assert.equal(b.version, 0);
  assert.equal(b.records.length + b.errors.length, 0);
});

test('v1 drop-the-rest rules: room, record past the end, record version, type, short record', () => {
  const ok = raw1(rec({ cport: 1 }));
  // nr_conns says 3, only 2 present: the third lacks room for 36 bytes
  let r = decodeMessage(msg1([ok, ok], { nr: 3 }));
  assert.equal(r.records.length, 2);
  assert.equal(codes(r), 'too-small@2!');
  assert.equal(r.lost, 1);
  // record length beyond the datagram
  r = decodeMessage(msg1([raw1(rec(), [], 200), ok]));
  assert.equal(codes(r), 'record-past-end@0!');
  assert.equal(r.records.length, 0);
  // the room check uses the IPv4 size even for an IPv6 record; its own length then fails
  r = decodeMessage(msg1([ok, raw1(rec6(), [], 200)]));
  assert.equal(codes(r), 'record-past-end@1!');
  assert.equal(r.records.length, 1);
  // record version (top 4 bits of ver_size) must be 0
  const v = raw1(rec());
  v.writeUInt16BE((1 << 12) | 36, 2);
  assert.equal(codes(decodeMessage(msg1([ok, v, ok]))), 'record-version@1!');
  // type: bit 0 = IPv6 (other bits then ignored); bit 0 clear with any other bit = drop
  const t2 = raw1(rec());
  t2[0] = 2;
  r = decodeMessage(msg1([ok, t2, ok]));
  assert.equal(codes(r), 'bad-type@1!');
  assert.equal(r.records.length, 1);
  const t3 = raw1(rec6());
  t3[0] = 3;
  assert.equal(decodeMessage(msg1([t3])).records[0]!.af, 6);
  // a record shorter than its fixed part
  assert.equal(codes(decodeMessage(msg1([raw1(rec(), [], 20)]))), 'record-too-short@0!');
  assert.equal(codes(decodeMessage(msg1([raw1(rec6(), new Array(4).fill(0), 40)]))), 'record-too-short@0!');
  assert.equal(codes(decodeMessage(msg1([raw1(rec(), [], 0)]))), 'record-too-short@0!');
});

test('v1 option rules: truncated header, zero or overrunning length, SEQ_DATA size and repeats, PE repeats and name length', () => {
  const ok = raw1(rec({ cport: 9 }));
  const seq = [1, 24, ...new Array(24).fill(0)];
  const cases: Array<[number[], string]> = [
    [[1], 'option-truncated'],
    [[0x41, 0], 'option-length'],
    [[2, 5, 1, 2], 'option-length'],
    [[1, 20, ...new Array(20).fill(0)], 'seq-length'],
    [[...seq, ...seq], 'seq-repeated'],
    [[2, 1, 7, 2, 1, 8], 'pe-data-repeated'],
    [[3, 17, ...new Array(17).fill(0x61)], 'pe-name-length'],
    [[3, 1, 0x61, 3, 1, 0x62], 'pe-name-repeated'],
  ];
  for (const [opts, code] of cases) {
    const r = decodeMessage(msg1([ok, raw1(rec(), opts), ok]));
    assert.equal(codes(r), `${code}@1!`, code);
    assert.equal(r.records.length, 1, code);
    assert.equal(r.lost, 2, code);
  }
  // the optional bit on a known type changes nothing: 0x41 is SEQ_DATA
  const s = decodeMessage(msg1([raw1(rec(), [0x41, 24, 0, 0, 0, 9, ...new Array(20).fill(0)])]));
  assert.equal(s.errors.length, 0);
  assert.equal(s.records[0]!.inSeq!.initSeq, 9);
});

test('v1 skip-one-record rules: unknown mandatory option, protocol, state, PE data without (known) name', () => {
  const ok = raw1(rec({ cport: 9 }));
  const skipCases: Array<[Buffer, string]> = [
    [raw1(rec(), [9, 2, 0, 0]), 'unknown-mandatory-option'],
    [raw1(rec({ protocol: 50 })), 'unsupported-protocol'],
    [raw1(rec({ state: 11 })), 'bad-state'],
    [raw1(rec({ protocol: IPPROTO_UDP, state: 1 })), 'bad-state'],
    [raw1(rec({ protocol: IPPROTO_SCTP, state: 14 })), 'bad-state'],
    [raw1(rec(), [2, 2, 1, 2]), 'pe-data-without-name'],
    [raw1(rec(), [2, 2, 1, 2, 3, 3, 0x66, 0x6f, 0x6f]), 'unknown-pe'],
  ];
  for (const [bad, code] of skipCases) {
    const r = decodeMessage(msg1([ok, bad, ok]));
    assert.equal(codes(r), `${code}@1`, code);
    assert.equal(r.records.length, 2, code);
    assert.equal(r.skipped, 1, code);
  }
  // an unknown optional option is stepped over; a PE name alone is ignored
  for (const opts of [
    [0x49, 3, 1, 2, 3],
    [3, 3, 0x73, 0x69, 0x70],
  ]) {
    const r = decodeMessage(msg1([raw1(rec(), opts)]));
    assert.equal(r.errors.length, 0);
    assert.equal(r.records.length, 1);
  }
  // templates skip the protocol and state checks (fwmark templates carry protocol 0)
  const tpl = decodeMessage(msg1([raw1(rec({ protocol: 0, flags: CONN_F_TEMPLATE, state: 7 }))]));
  assert.equal(tpl.errors.length, 0);
  assert.equal(tpl.records[0]!.state, 7);
  // the backup may know other engines
  const known = decodeMessage(msg1([raw1(rec(), [2, 2, 1, 2, 3, 3, 0x66, 0x6f, 0x6f])]), { knownPes: new Set(['foo']) });
  assert.equal(known.records[0]!.peName, 'foo');
});

test('v1 alignment: the next record starts at start + ((len + 3) & ~3), whatever padding holds', () => {
  // a 39-byte record (fixed part + a 3-byte optional option) and the next one 40 bytes on
  const first = raw1(rec(), [0x4f, 1, 0xaa]); // 39 bytes, optional unknown option
  const second = raw1(rec({ cport: 2 }));
  const m = msg1([first, second]);
  assert.equal(m.length, 8 + 39 + 1 + 36);
  m[8 + 39] = 0xff; // padding content is never read
  const r = decodeMessage(m);
  assert.equal(r.errors.length, 0);
  assert.equal(r.records[1]!.cport, 2);
});

test('v0 receiver: truncated record or options drop the rest; protocol and state skip one', () => {
  const one = encodeMessage(0, 0, [rec({ cport: 1 })]);
  const body = one.subarray(4);
  const make = (records: Buffer[], nr = records.length) => {
    const m = Buffer.concat([Buffer.alloc(4), ...records]);
    m[0] = nr;
    m.writeUInt16BE(m.length, 2);
    return m;
  };
  let r = decodeMessage(make([body, body], 3));
  assert.equal(codes(r), 'v0-truncated@2!');
  assert.equal(r.records.length, 2);
  const withSeq = Buffer.from(body);
  withSeq.writeUInt16BE(CONN_F_IN_SEQ, 20);
  r = decodeMessage(make([body, withSeq]));
  assert.equal(codes(r), 'v0-options-truncated@1!');
  const badProto = Buffer.from(body);
  badProto[1] = 47;
  const badState = Buffer.from(body);
  badState.writeUInt16BE(11, 22);
  r = decodeMessage(make([badProto, badState, body]));
  assert.equal(codes(r), 'unsupported-protocol@0 bad-state@1');
  assert.equal(r.records.length, 1);
  const tpl = Buffer.from(body);
  tpl.writeUInt16BE(CONN_F_TEMPLATE | CONN_F_INACTIVE, 20);
  tpl[1] = 0;
  assert.equal(decodeMessage(make([tpl])).records.length, 1);
});

test('builder: sync_maxlen limits the message, one oversize record still travels alone, nr_conns stops at 255', () => {
  const b = new SyncMessageBuilder(1, 1, 100, 36);
  assert.ok(b.fits(36));
  b.add(rec());
  assert.ok(b.fits(36)); // 8 + 36 + 36 = 80
  b.add(rec());
  assert.ok(!b.fits(36)); // 116 > 100
  assert.equal(b.finish().length, 80);
  const big = new SyncMessageBuilder(1, 1, 10, 72);
  big.add(rec6());
  assert.equal(big.finish().length, 80);
  const many = new SyncMessageBuilder(1, 1, 65507, 36);
  let n = 0;
  while (many.fits(36) && n < 1000) {
    many.add(rec({ cport: n }));
    n++;
  }
  assert.equal(n, 255);
  assert.equal(decodeMessage(many.finish()).records.length, 255);
});

test('decoder never throws: random datagrams and mutations of valid messages', () => {
  const valid = encodeMessage(1, 3, [rec(), rec6({ flags: 0x0103 | CONN_F_IN_SEQ }), rec({ peData: Uint8Array.from([1]), peName: 'sip' })]);
  const v0 = encodeMessage(0, 3, [rec(), rec({ flags: CONN_F_IN_SEQ })]);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const b = Buffer.from(bytes);
      if (b.length >= 4) b.writeUInt16BE(b.length, 2); // get past the size check
      const r = decodeMessage(b);
      return r.records.length + r.skipped <= Math.max(r.nrConns, 0);
    }),
    { numRuns: 1500 },
  );
  fc.assert(
    fc.property(fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (useV0, edits) => {
      const b = Buffer.from(useV0 ? v0 : valid);
      for (const [pos, val] of edits) {
        const i = pos % b.length;
        if (i !== 2 && i !== 3) b[i] = val;
      }
      decodeMessage(b);
      return true;
    }),
    { numRuns: 1500 },
  );
});
