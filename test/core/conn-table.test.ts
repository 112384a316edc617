import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConnTable, SLOT_MS, WHEEL_SLOTS } from '../../src/core/conn-table.js';

function fill(t: ConnTable, i: number, proto: number, c: number, cport: number, v: number, vport: number): void {
  t.af[i] = 4;
  t.protocol[i] = proto;
  t.caddr[i * 4] = c;
  t.vaddr[i * 4] = v;
  t.cport[i] = cport;
  t.vport[i] = vport;
}

test('hash lookups find entries by client and virtual tuple, newest first', () => {
  const t = new ConnTable(16);
  const a = t.alloc();
  fill(t, a, 6, 0xc6120002, 40000, 0xc6120001, 80);
  t.hash(a);
  assert.equal(t.lookupIn(4, 6, 0xc6120002, 0, 0, 0, 40000, 0xc6120001, 0, 0, 0, 80), a);
  assert.equal(t.lookupIn(4, 17, 0xc6120002, 0, 0, 0, 40000, 0xc6120001, 0, 0, 0, 80), -1);
  assert.equal(t.lookupIn(4, 6, 0xc6120002, 0, 0, 0, 40001, 0xc6120001, 0, 0, 0, 80), -1);
  const b = t.alloc();
  fill(t, b, 6, 0xc6120002, 40000, 0xc6120001, 80);
  t.hash(b);
  assert.equal(t.lookupIn(4, 6, 0xc6120002, 0, 0, 0, 40000, 0xc6120001, 0, 0, 0, 80), b);
  t.unhash(b);
  assert.equal(t.lookupIn(4, 6, 0xc6120002, 0, 0, 0, 40000, 0xc6120001, 0, 0, 0, 80), a);
});

test('the table grows past its initial capacity and keeps every entry findable', () => {
  const t = new ConnTable(16);
  const n = 5000;
  const ids: number[] = [];
  for (let k = 0; k < n; k++) {
    const i = t.alloc();
    fill(t, i, 17, 0x0a000000 + k, 1000 + (k % 50000), 0xc6120001, 53);
    t.hash(i);
    ids.push(i);
  }
  assert.ok(t.capacity >= n);
  for (let k = 0; k < n; k++) assert.equal(t.lookupIn(4, 17, 0x0a000000 + k, 0, 0, 0, 1000 + (k % 50000), 0xc6120001, 0, 0, 0, 53), ids[k]);
});

test('timers fire exactly at their deadline, never before, never after the advance that reaches it', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.integer({ min: 0, max: 2_000_000 }), op: fc.constantFrom('arm', 'touch', 'now'), timeout: fc.integer({ min: 1, max: 3_000_000 }), who: fc.nat(30) }), { maxLength: 60 }),
      fc.array(fc.integer({ min: 0, max: 2_000_000 }), { maxLength: 20 }),
      (ops, checks) => {
        const t = new ConnTable(64, 0);
        const live = new Map<number, number>(); // index -> deadline
        const due = new Set<number>();
        const slots: number[] = [];
        for (let k = 0; k <= 30; k++) slots.push(-1);
        const events = [...ops.map((o) => ({ ...o, kind: 'op' as const })), ...checks.map((at) => ({ at, kind: 'advance' as const }))].sort((x, y) => x.at - y.at);
        let now = 0;
        for (const e of events) {
          now = e.at;
          if (e.kind === 'advance') {
            const expired: number[] = [];
            t.advance(now, Number.POSITIVE_INFINITY, (i) => {
              expired.push(i);
              t.free(i);
            });
            const expect = [...live].filter(([i, d]) => d <= now || due.has(i)).map(([i]) => i).sort((a, b) => a - b);
            assert.deepEqual([...expired].sort((a, b) => a - b), expect);
            for (const i of expired) {
              live.delete(i);
              due.delete(i);
              const s = slots.indexOf(i);
              if (s >= 0) slots[s] = -1;
            }
            continue;
          }
          const o = e as (typeof ops)[number] & { kind: 'op' };
          let i = slots[o.who]!;
          if (o.op === 'arm' || i < 0) {
            if (i < 0) {
              i = t.alloc();
              t.af[i] = 4;
              slots[o.who] = i;
            }
            t.setTimer(i, now + o.timeout);
            if (!due.has(i)) live.set(i, now + o.timeout);
          } else if (o.op === 'touch') {
            if (!due.has(i)) {
              t.setTimer(i, now + o.timeout);
              live.set(i, now + o.timeout);
            }
          } else {
            t.expireNow(i);
            due.add(i);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('far-future deadlines beyond one wheel lap still fire on time', () => {
  const t = new ConnTable(16, 0);
  const i = t.alloc();
  t.af[i] = 4;
  const deadline = WHEEL_SLOTS * SLOT_MS * 3 + 12345;
  t.setTimer(i, deadline);
  let fired = -1;
  for (let now = 0; now <= deadline + 1000; now += 1000) {
    t.advance(now, Number.POSITIVE_INFINITY, (x) => {
      fired = now;
      t.free(x);
    });
    if (fired >= 0) break;
  }
  assert.equal(fired, Math.ceil(deadline / 1000) * 1000);
});

test('a work budget splits a mass expiry over several calls without losing entries', () => {
  const t = new ConnTable(1024, 0);
  const n = 10_000;
  for (let k = 0; k < n; k++) {
    const i = t.alloc();
    t.af[i] = 4;
    t.setTimer(i, 5000);
  }
  let expired = 0;
  let calls = 0;
  while (!t.advance(6000, 1000, (i) => { expired++; t.free(i); })) calls++;
  assert.equal(expired, n);
  assert.equal(calls, 9);
  assert.equal(t.count, 0);
});
