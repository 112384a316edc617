// All fourteen schedulers are registered and behave sanely through a service's life: empty,
// filled, churned (enough adds and deletes to re-lay out the index slots), emptied, unbound.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinSchedulers } from '../../../src/core/schedulers/index.js';
import { findScheduler, schedulerNames } from '../../../src/core/schedulers/scheduler.js';
import type { Dest } from '../../../src/core/service.js';
import { ORACLES, TestService } from './util.js';

const ALL = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos'];

test('the fourteen IPVS schedulers are registered by name', () => {
  assert.deepEqual(builtinSchedulers.map((s) => s.name).sort(), [...ALL].sort());
  for (const name of ALL) assert.equal(findScheduler(name)?.name, name);
  for (const name of ALL) assert.ok(schedulerNames().includes(name));
});

for (const name of ALL) {
  test(`${name}: empty, filled, churned, emptied`, () => {
    const ts = new TestService(name);
    assert.equal(ts.pick(), null);
    const live: Dest[] = [];
    for (let i = 0; i < 300; i++) live.push(ts.add(`10.7.${i >> 8}.${i & 255}`, 80, 1 + (i % 4)));
    // Delete in a scattered order, checking choices along the way.
    for (let k = 0; live.length > 3; k++) {
      const d = live.splice((k * 37) % live.length, 1)[0]!;
      ts.del(d);
      const got = ts.pick(`198.51.100.${k & 255}`, 1000 + k, `203.0.113.${k & 7}`);
      assert.ok(got === null || ts.dests.includes(got), 'never a deleted dest');
      const oracle = ORACLES[name];
      if (oracle) assert.equal(got, oracle(ts.dests));
      if (got && k % 3 === 0) ts.setConns(got, got.activeconns + 1, got.inactconns);
    }
    for (let i = 0; i < 50; i++) live.push(ts.add(`10.8.0.${i}`, 80, 2));
    const oracle = ORACLES[name];
    if (oracle) assert.equal(ts.pick(), oracle(ts.dests));
    for (const d of [...ts.dests]) ts.del(d);
    assert.equal(ts.pick(), null);
    ts.sched.done();
  });
}

test('init on a filled service: every scheduler starts from the list as it is', () => {
  const initial: [string, number, number][] = [
    ['10.0.0.3', 80, 1],
    ['10.0.0.2', 80, 1],
    ['10.0.0.1', 80, 1],
  ];
  for (const name of ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'lblc', 'lblcr']) {
    const ts = new TestService(name, {}, initial);
    assert.equal(ts.pick()?.addr.toString(), '10.0.0.1', name); // the list head
  }
});
