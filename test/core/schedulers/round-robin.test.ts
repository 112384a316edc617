// rr and wrr: the §14 wrr sequences both ways, the cursor rules, and property tests against
// linear references that follow the kernel's loops (list walks from the cursor) line by line.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEST_F_OVERLOAD } from '../../../src/core/constants.js';
import type { Dest } from '../../../src/core/service.js';
import { TestService } from './util.js';

const overloaded = (d: Dest) => (d.flags & DEST_F_OVERLOAD) !== 0;

/** ip_vs_rr.c over an array: cursor null is the list head. */
class ReferenceRr {
  cursor: Dest | null = null;
  /** del_dest, told where the dest was before it was unlinked. */
  deleted(d: Dest, listBefore: Dest[]): void {
    if (this.cursor === d) this.cursor = listBefore[listBefore.indexOf(d) - 1] ?? null;
  }
  schedule(list: Dest[]): Dest | null {
    const start = this.cursor === null ? -1 : list.indexOf(this.cursor);
    const order = [...list.slice(start + 1), ...(start >= 0 ? list.slice(0, start + 1) : [])];
    for (const d of order) {
      if (!overloaded(d) && d.weight > 0) {
        this.cursor = d;
        return d;
      }
    }
    return null;
  }
}

/** ip_vs_wrr.c over an array: cl null is the list head. */
class ReferenceWrr {
  cl: Dest | null = null;
  cw = 0;
  mw = 0;
  di = 1;
  constructor(list: Dest[]) {
    this.measure(list);
    this.cw = this.mw;
  }
  private measure(list: Dest[]): void {
    let g = 0;
    let max = 0;
    for (const d of list) {
      if (d.weight > 0) {
        let a = d.weight;
        let b = g;
        while (b) [a, b] = [b, a % b];
        g = g > 0 ? a : d.weight;
      }
      max = Math.max(max, d.weight);
    }
    this.di = g || 1;
    this.mw = max - (this.di - 1);
  }
  changed(list: Dest[]): void {
    this.cl = null;
    this.measure(list);
    if (this.cw > this.mw || !this.cw) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }
  schedule(list: Dest[]): Dest | null {
    if (this.mw === 0) return null;
    const last = this.cl;
    let stop: Dest | undefined;
    let lastPass = false;
    let restarted = false;
    let i = last === null ? -1 : list.indexOf(last);
    for (;;) {
      for (i++; i < list.length; i++) {
        const d = list[i]!;
        if (!overloaded(d) && d.weight >= this.cw) {
          this.cl = d;
          return d;
        }
        if (d === stop) {
          this.cl = d;
          return null;
        }
      }
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === null) {
          this.cl = null;
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== null) stop = last;
      i = -1;
    }
  }
}

const names = (ds: (Dest | null)[]) => ds.map((d) => (d ? d.addr.toString().replace('10.0.0.', 'd') : '-')).join(' ');

test('wrr §14: A=4 B=3 C=2 added C, B, A: a first pass at cw=1, then the steady cycle', () => {
  const ts = new TestService('wrr');
  const c = ts.add('10.0.0.3', 80, 2);
  const b = ts.add('10.0.0.2', 80, 3);
  const a = ts.add('10.0.0.1', 80, 4);
  const got = Array.from({ length: 3 + 27 }, () => ts.pick());
  const cycle = [a, a, b, a, b, c, a, b, c];
  assert.deepEqual(names(got), names([a, b, c, ...cycle, ...cycle, ...cycle]));
});

test('wrr §14: bound to a service that already holds A, B, C: the steady cycle from the start', () => {
  const ts = new TestService('rr');
  const c = ts.add('10.0.0.3', 80, 2);
  const b = ts.add('10.0.0.2', 80, 3);
  const a = ts.add('10.0.0.1', 80, 4);
  ts.rebind('wrr');
  const got = Array.from({ length: 18 }, () => ts.pick());
  const cycle = [a, a, b, a, b, c, a, b, c];
  assert.deepEqual(names(got), names([...cycle, ...cycle]));
});

test('wrr: weight 0 is never chosen, overloaded dests are passed over, all unusable gives null', () => {
  const ts = new TestService('wrr', {}, [
    ['10.0.0.3', 80, 2],
    ['10.0.0.2', 80, 0],
    ['10.0.0.1', 80, 1],
  ]);
  const [d1, , d3] = ts.dests;
  const got = Array.from({ length: 6 }, () => ts.pick());
  assert.ok(got.every((d) => d === d1 || d === d3));
  ts.setOverload(d1!, true);
  ts.setOverload(d3!, true);
  assert.equal(ts.pick(), null);
  ts.setOverload(d3!, false);
  assert.equal(ts.pick(), d3);
});

test('wrr: a full cycle gives every dest exactly weight/gcd picks', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 12 }), (unit, ws) => {
      const ts = new TestService('rr');
      for (const [i, w] of ws.entries()) ts.add(`10.0.1.${i + 1}`, 80, w * unit);
      ts.rebind('wrr');
      const positive = ws.filter((w) => w > 0);
      const g = positive.reduce((x, y) => {
        while (y) [x, y] = [y, x % y];
        return x;
      }, 0);
      const cycle = positive.reduce((s, w) => s + w / (g || 1), 0);
      const counts = new Map<Dest, number>();
      for (let i = 0; i < cycle; i++) {
        const d = ts.pick()!;
        counts.set(d, (counts.get(d) ?? 0) + 1);
      }
      for (const d of ts.dests) assert.equal(counts.get(d) ?? 0, d.weight / (unit * (g || 1)));
    }),
    { numRuns: 200 },
  );
});

type RrEvent =
  | { t: 'add'; weight: number }
  | { t: 'del'; i: number }
  | { t: 'weight'; i: number; weight: number }
  | { t: 'overload'; i: number; on: boolean }
  | { t: 'pick'; n: number };

const weightArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 100000 }) },
  { weight: 1, arbitrary: fc.constantFrom(2, 4, 6, 8, 12) },
);
const eventArb: fc.Arbitrary<RrEvent> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('add' as const), weight: weightArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('del' as const), i: fc.nat(100) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('weight' as const), i: fc.nat(100), weight: weightArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('overload' as const), i: fc.nat(100), on: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('pick' as const), n: fc.integer({ min: 1, max: 8 }) }) },
);

function run(name: 'rr' | 'wrr', events: RrEvent[], initial: number[] = []): void {
  const ts = new TestService(
    name,
    {},
    initial.map((w, i) => [`10.9.0.${i + 1}`, 80, w]),
  );
  const refRr = new ReferenceRr();
  const refWrr = new ReferenceWrr(ts.dests);
  let seq = 0;
  const at = (i: number) => ts.dests[i % ts.dests.length]!;
  for (const e of events) {
    switch (e.t) {
      case 'add':
        seq++;
        ts.add(`10.8.${seq >> 8}.${seq & 255}`, 80, e.weight);
        refWrr.changed(ts.dests);
        break;
      case 'del':
        if (ts.dests.length) {
          const before = [...ts.dests];
          const d = at(e.i);
          ts.del(d);
          refRr.deleted(d, before);
          refWrr.changed(ts.dests);
        }
        break;
      case 'weight':
        if (ts.dests.length) {
          ts.setWeight(at(e.i), e.weight);
          refWrr.changed(ts.dests);
        }
        break;
      case 'overload':
        if (ts.dests.length) ts.setOverload(at(e.i), e.on);
        break;
      case 'pick':
        for (let k = 0; k < e.n; k++) {
          const expected = name === 'rr' ? refRr.schedule(ts.dests) : refWrr.schedule(ts.dests);
          assert.equal(ts.pick(), expected);
        }
        break;
    }
  }
}

for (const name of ['rr', 'wrr'] as const) {
  test(`${name}: every choice equals the kernel's list walk under random event sequences`, () => {
    fc.assert(
      fc.property(fc.array(weightArb, { maxLength: 6 }), fc.array(eventArb, { minLength: 1, maxLength: 80 }), (initial, events) => run(name, events, initial)),
      { numRuns: 400 },
    );
  });
}

test('wrr: passes that cannot match are skipped, with the kernel end state (huge max weight)', () => {
  run('wrr', [
    { t: 'add', weight: 1 },
    { t: 'add', weight: 1_000_000 },
    { t: 'pick', n: 5 },
    { t: 'overload', i: 0, on: true },
    { t: 'pick', n: 8 },
    { t: 'overload', i: 1, on: true },
    { t: 'pick', n: 3 },
    { t: 'overload', i: 0, on: false },
    { t: 'pick', n: 8 },
    { t: 'add', weight: 999_999 },
    { t: 'overload', i: 0, on: true },
    { t: 'pick', n: 8 },
  ]);
});

test('rr: deleting the cursor dest makes the next pick the dest that followed it; adds go behind', () => {
  const ts = new TestService('rr');
  const d = ts.add('10.0.0.4');
  const c = ts.add('10.0.0.3');
  const b = ts.add('10.0.0.2');
  const a = ts.add('10.0.0.1'); // list: a b c d
  assert.equal(ts.pick(), a);
  assert.equal(ts.pick(), b);
  ts.del(b); // cursor back to a
  assert.equal(ts.pick(), c);
  const e = ts.add('10.0.0.5'); // list: e a c d, cursor still c
  assert.equal(ts.pick(), d);
  assert.equal(ts.pick(), e);
  ts.del(e); // cursor back to the head
  assert.equal(ts.pick(), a);
  ts.setWeight(c, 0);
  ts.setOverload(d, true);
  assert.equal(ts.pick(), a); // wraps around to the cursor itself
  ts.setOverload(a, true);
  assert.equal(ts.pick(), null);
});

test('rr and wrr: thousands of dests with many unusable still walk like the kernel', () => {
  for (const name of ['rr', 'wrr'] as const) {
    const events: RrEvent[] = [];
    for (let i = 0; i < 2000; i++) events.push({ t: 'add', weight: i % 97 === 0 ? 5 : i % 3 });
    for (let i = 0; i < 300; i++) events.push({ t: 'overload', i: i * 13, on: true }, { t: 'pick', n: 7 });
    for (let i = 0; i < 50; i++) events.push({ t: 'del', i: i * 31 }, { t: 'pick', n: 3 });
    run(name, events);
  }
});
