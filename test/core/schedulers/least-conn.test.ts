// lc, wlc, sed, nq, fo and ovf: fixed cases for their skip rules and tie-breaks, and property
// tests that every choice of the indexed schedulers equals a plain linear scan of the list with
// the kernel's comparisons (written here independently, with BigInt and C int semantics),
// under random tables and random event sequences.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Dest } from '../../../src/core/service.js';
import { apply, eventArb, ORACLES, TestService } from './util.js';

for (const name of Object.keys(ORACLES)) {
  const oracle = ORACLES[name]!;
  test(`${name}: every choice equals the kernel's linear scan under random event sequences`, () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 120 }), (events) => {
        const ts = new TestService(name);
        for (const e of events) {
          apply(ts, e, name);
          assert.equal(ts.pick(), oracle(ts.dests));
        }
      }),
      { numRuns: 300 },
    );
  });

  test(`${name}: large pools with connection churn still match the linear scan`, () => {
    const ts = new TestService(name);
    for (let i = 0; i < 3000; i++) ts.add(`10.1.${i >> 8}.${i & 255}`, 80, 1 + (i % 7));
    const live: Dest[] = [];
    for (let n = 0; n < 4000; n++) {
      const d = ts.pick();
      assert.equal(d, oracle(ts.dests));
      if (d) {
        ts.setConns(d, d.activeconns + 1, d.inactconns);
        live.push(d);
      }
      if (live.length > 2000) {
        const old = live.shift()!;
        ts.setConns(old, old.activeconns - 1, old.inactconns + 1);
      }
      if (n % 500 === 0) ts.setOverload(ts.dests[n % ts.dests.length]!, true);
      if (n % 700 === 0) ts.setWeight(ts.dests[(n * 7) % ts.dests.length]!, n % 3);
    }
  });
}

// Fixed cases: the kernel's list order is reverse insertion order.

test('lc: least overhead, active weighs 256 inactive; weight 0 and overloaded skipped; first in list on ties', () => {
  const ts = new TestService('lc');
  const a = ts.add('10.0.0.1');
  const b = ts.add('10.0.0.2');
  const c = ts.add('10.0.0.3'); // list: c, b, a
  assert.equal(ts.pick(), c);
  ts.setConns(c, 1, 0);
  ts.setConns(b, 0, 255);
  assert.equal(ts.pick(), a);
  ts.setConns(a, 0, 256);
  assert.equal(ts.pick(), b);
  ts.setWeight(b, 0);
  assert.equal(ts.pick(), c); // c (256) ties a (256) and comes first
  ts.setOverload(c, true);
  assert.equal(ts.pick(), a);
  ts.setOverload(a, true);
  assert.equal(ts.pick(), null);
});

test('wlc: overhead/weight as cross products; weight 0 never chosen, not even as first candidate', () => {
  const ts = new TestService('wlc');
  const a = ts.add('10.0.0.1', 80, 3);
  const b = ts.add('10.0.0.2', 80, 1); // list: b, a
  assert.equal(ts.pick(), b); // both idle: first in list
  ts.setConns(b, 1, 0);
  assert.equal(ts.pick(), a);
  ts.setConns(a, 3, 0);
  assert.equal(ts.pick(), b); // 256/1 vs 768/3: equal, first in list
  ts.setWeight(b, 0);
  assert.equal(ts.pick(), a);
  ts.setWeight(a, 0);
  assert.equal(ts.pick(), null);
});

test('sed and nq: active connections only; nq takes the first idle dest', () => {
  const sed = new TestService('sed');
  const s1 = sed.add('10.0.0.1', 80, 3);
  sed.add('10.0.0.2', 80, 1); // list: s2, s1
  assert.equal(sed.pick(), s1); // (0+1)/3 < (0+1)/1
  sed.setConns(s1, 0, 1000);
  assert.equal(sed.pick(), s1); // inactive ignored
  const nq = new TestService('nq');
  const n1 = nq.add('10.0.0.1', 80, 3);
  const n2 = nq.add('10.0.0.2', 80, 1);
  const n3 = nq.add('10.0.0.3', 80, 1); // list: n3, n2, n1
  assert.equal(nq.pick(), n3); // first idle, whatever its weight
  nq.setConns(n3, 1, 0);
  assert.equal(nq.pick(), n2);
  nq.setConns(n2, 1, 0);
  assert.equal(nq.pick(), n1);
  nq.setConns(n1, 1, 0);
  assert.equal(nq.pick(), n1); // all busy: sed, 2/3 < 2/1
});

test('fo and ovf: highest weight, first in list on ties; ovf moves on once active > weight', () => {
  const fo = new TestService('fo');
  const f1 = fo.add('10.0.0.1', 80, 5);
  const f2 = fo.add('10.0.0.2', 80, 5); // list: f2, f1
  assert.equal(fo.pick(), f2);
  fo.setOverload(f2, true);
  assert.equal(fo.pick(), f1);
  fo.setWeight(f1, 0);
  assert.equal(fo.pick(), null);
  const ovf = new TestService('ovf');
  const o1 = ovf.add('10.0.0.1', 80, 2);
  const o2 = ovf.add('10.0.0.2', 80, 3); // list: o2, o1
  ovf.setConns(o2, 3, 50);
  assert.equal(ovf.pick(), o2); // active == weight is still allowed
  ovf.setConns(o2, 4, 0);
  assert.equal(ovf.pick(), o1);
  ovf.setConns(o1, 3, 0);
  assert.equal(ovf.pick(), null);
});

test('loadChanged for a deleted dest (connections still expiring in the trash) is ignored', () => {
  for (const name of Object.keys(ORACLES)) {
    const ts = new TestService(name);
    const a = ts.add('10.0.0.1');
    const b = ts.add('10.0.0.2');
    ts.del(b);
    ts.setConns(b, 0, 0);
    ts.setOverload(b, false);
    assert.equal(ts.pick(), a, name);
  }
});

test('the kernel int overflow regime (8.4M+ active on one dest) follows the wrapped arithmetic', () => {
  const ts = new TestService('wlc');
  const a = ts.add('10.0.0.1', 80, 1);
  const b = ts.add('10.0.0.2', 80, 1); // list: b, a
  ts.setConns(b, 2 ** 23, 0); // overhead 2^31: the kernel's int is negative
  ts.setConns(a, 1, 0);
  assert.equal(ts.pick(), b);
  assert.equal(ts.pick(), ORACLES.wlc!(ts.dests));
  ts.setConns(b, 2 ** 23 - 1, 0);
  assert.equal(ts.pick(), a);
});

test('wlc and sed converge to the weights: held connections end up proportional', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 7 }), fc.integer({ min: 1, max: 6 }), (weights, rounds) => {
      for (const name of ['wlc', 'sed']) {
        const ts = new TestService(name);
        for (const [i, w] of weights.entries()) ts.add(`10.5.0.${i + 1}`, 80, w);
        const total = weights.reduce((a, b) => a + b, 0);
        for (let i = 0; i < rounds * total; i++) ts.connect('active');
        // Each dest carries its share, give or take the one connection of the last round.
        for (const d of ts.dests) assert.ok(Math.abs(d.activeconns - rounds * d.weight) <= 1, `${name} ${d.activeconns} vs ${rounds * d.weight}`);
      }
    }),
    { numRuns: 200 },
  );
});
