// twos: with the same random numbers the indexed scheduler makes exactly the choices of the
// kernel's two list walks (written here as in ip_vs_twos.c, int arithmetic included), weight 0
// is never picked, and the proportions follow the weights.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { randomBelow } from '../../../src/core/schedulers/util/arith.js';
import type { Dest } from '../../../src/core/service.js';
import { apply, eventArb, overloaded, TestContext, TestService } from './util.js';

/** ip_vs_twos_schedule over the list, with C int wrap-around. */
function referenceTwos(dests: Dest[], random32: () => number): Dest | null {
  let total = 0;
  let choice1: Dest | null = null;
  let choice2: Dest | null = null;
  for (const d of dests) {
    if (!overloaded(d) && d.weight > 0) {
      total = (total + d.weight) | 0;
      choice1 = d;
    }
  }
  if (!choice1) return null;
  total = (total + 1) | 0;
  let r1 = randomBelow(random32, total >>> 0) | 0;
  let r2 = randomBelow(random32, total >>> 0) | 0;
  let w1 = -1;
  let w2 = -1;
  let oh1 = 0;
  let oh2 = 0;
  const oh = (d: Dest) => ((d.activeconns << 8) + d.inactconns) | 0;
  for (const d of dests) {
    if (overloaded(d) || d.weight <= 0) continue;
    r1 = (r1 - d.weight) | 0;
    r2 = (r2 - d.weight) | 0;
    if (r1 <= 0 && w1 === -1) {
      choice1 = d;
      w1 = d.weight;
      oh1 = oh(d);
    }
    if (r2 <= 0 && w2 === -1) {
      choice2 = d;
      w2 = d.weight;
      oh2 = oh(d);
    }
    if (w1 !== -1 && w2 !== -1) break;
  }
  if (choice2 && Math.imul(w2, oh1) > Math.imul(w1, oh2)) choice1 = choice2;
  return choice1;
}

test('twos: the same random numbers give the kernel walk\'s choices, under random event sequences', () => {
  fc.assert(
    fc.property(fc.integer(), fc.array(eventArb, { minLength: 1, maxLength: 100 }), (seed, events) => {
      const ts = new TestService('twos', { seed });
      const mirror = new TestContext(seed);
      const random32 = () => mirror.random32();
      for (const e of events) {
        if (e.t === 'bind') {
          const expected = referenceTwos(ts.dests, random32);
          const got = ts.pick();
          assert.equal(got, expected);
          if (got) ts.setConns(got, got.activeconns + (e.active ? 1 : 0), got.inactconns + (e.active ? 0 : 1));
        } else apply(ts, e, 'twos');
        assert.equal(ts.ctx.draws, mirror.draws);
      }
    }),
    { numRuns: 300 },
  );
});

test('twos: weight 0 is never chosen; sequential connections split about 3:1 for weights 3 and 1', () => {
  const ts = new TestService('twos', { seed: 7 });
  const rs1 = ts.add('198.19.0.11', 80, 3);
  const rs2 = ts.add('198.19.0.12', 80, 1);
  const rs3 = ts.add('198.19.0.13', 80, 0);
  for (let i = 0; i < 4000; i++) ts.connect('inactive');
  assert.equal(rs3.inactconns, 0);
  const ratio = rs1.inactconns / rs2.inactconns;
  assert.ok(ratio > 2.7 && ratio < 3.3, `${ratio}`);
});

test('twos: a single weighted pick gives the first eligible dest (w+1)/(total+1)', () => {
  // With no load anywhere the comparison never prefers choice 2: the result is choice 1.
  const ts = new TestService('twos', { seed: 11 });
  ts.add('10.0.0.2', 80, 1);
  const first = ts.add('10.0.0.1', 80, 3); // list: first (3), second (1)
  let n = 0;
  const N = 200_000;
  for (let i = 0; i < N; i++) if (ts.pick() === first) n++;
  assert.ok(Math.abs(n / N - 4 / 5) < 0.005, `${n / N}`);
});

test('twos: twelve held connections over four equal dests stay close to balanced', () => {
  let spreadSum = 0;
  for (let seed = 1; seed <= 50; seed++) {
    const ts = new TestService('twos', { seed });
    for (let i = 1; i <= 4; i++) ts.add(`198.19.0.1${i}`);
    for (let i = 0; i < 12; i++) ts.connect('active');
    const counts = ts.dests.map((d) => d.activeconns);
    spreadSum += Math.max(...counts) - Math.min(...counts);
  }
  // lc would give 3/3/3/3 (spread 0); independent uniform picks about 4; two choices in between.
  assert.ok(spreadSum / 50 < 2.5, `${spreadSum / 50}`);
});

test('twos: totals beyond INT_MAX follow the kernel\'s wrapping int arithmetic', () => {
  const ts = new TestService('twos', { seed: 3 });
  const mirror = new TestContext(3);
  for (let i = 0; i < 4; i++) ts.add(`10.0.0.${i + 1}`, 80, 2 ** 31 - 1 - i);
  for (let i = 0; i < 500; i++) {
    const expected = referenceTwos(ts.dests, () => mirror.random32());
    const got = ts.connect('active');
    assert.equal(got, expected);
  }
});

test('twos: the overhead comparison wraps at 32 bits as the kernel\'s int products do', () => {
  const ts = new TestService('twos', { seed: 5 });
  const mirror = new TestContext(5);
  const heavy = ts.add('10.0.0.1', 80, 1000);
  const light = ts.add('10.0.0.2', 80, 1000);
  // 1000 * (9000 * 256) = 2.3e9 wraps negative in int: the busier dest looks lighter.
  ts.setConns(heavy, 9000, 0);
  ts.setConns(light, 10, 0);
  let heavyWins = 0;
  for (let i = 0; i < 400; i++) {
    const expected = referenceTwos(ts.dests, () => mirror.random32());
    const got = ts.pick();
    assert.equal(got, expected);
    if (got === heavy) heavyWins++;
  }
  assert.ok(heavyWins > 200, `${heavyWins}`);
});
