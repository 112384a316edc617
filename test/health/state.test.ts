// keepalived's checker state machines, step by step: what each result does to the state and
// when the next attempt comes (check_tcp.c, check_dns.c, check_smtp.c, check_misc.c,
// check_http.c), the real server over its checkers, and quorum with hysteresis.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Quorum } from '../../src/health/quorum.js';
import { CheckerMachine, RealServerHealth } from '../../src/health/state.js';

const T = { delayLoop: 1000, delayBeforeRetry: 100, retry: 2, alpha: false };

/** Feed results; return [delay, change] per step. */
function run(m: CheckerMachine, results: boolean[]): [number, string | null][] {
  return results.map((ok) => {
    const s = m.result(ok);
    return [s.delay, s.change];
  });
}

test('TCP: the first failure at start-up is decisive; later, down after retry+1 failures', () => {
  const m = new CheckerMachine('tcp', T);
  assert.deepEqual(run(m, [false]), [[1000, 'down']]);
  const m2 = new CheckerMachine('tcp', T);
  assert.deepEqual(run(m2, [true, false, false, false, true]), [
    [1000, 'up'], // first success: reported (has_run was false)
    [100, null], // retry 1 after delay_before_retry
    [100, null], // retry 2
    [1000, 'down'], // retry+1-th failure
    [1000, 'up'], // one success brings it back
  ]);
});

test('TCP: a success between failures resets the count (a flapping server stays up)', () => {
  const m = new CheckerMachine('tcp', T);
  m.result(true);
  assert.deepEqual(run(m, [false, true, false, false, true, false]), [
    [100, null],
    [1000, null],
    [100, null],
    [100, null],
    [1000, null],
    [100, null],
  ]);
  assert.equal(m.isUp, true);
});

test('TCP: while down, failures still alternate retries and delay_loop, without state changes', () => {
  const m = new CheckerMachine('tcp', T);
  m.result(false); // down at start
  assert.deepEqual(run(m, [false, false, false, false]), [
    [100, null],
    [100, null],
    [1000, null],
    [100, null],
  ]);
});

test('alpha: the checker starts down; the first success brings it up', () => {
  const m = new CheckerMachine('tcp', { ...T, alpha: true });
  assert.equal(m.isUp, false);
  assert.deepEqual(run(m, [true]), [[1000, 'up']]);
  const m2 = new CheckerMachine('tcp', { ...T, alpha: true });
  assert.deepEqual(run(m2, [false]), [[1000, 'down']]); // reported (has_run), no real change
  assert.equal(m2.isUp, false);
});

test('DNS: retries only while up; once down, every delay_loop', () => {
  const m = new CheckerMachine('dns', { ...T, retry: 3 });
  m.result(true);
  assert.deepEqual(run(m, [false, false, false, false, false, false, true]), [
    [100, null],
    [100, null],
    [100, null],
    [1000, 'down'],
    [1000, null],
    [1000, null],
    [1000, 'up'],
  ]);
});

test('SMTP: every cycle starts with a fresh retry count, even at start-up', () => {
  const m = new CheckerMachine('smtp', T);
  assert.deepEqual(run(m, [false, false, false, false, false, false, true]), [
    [100, null],
    [100, null],
    [1000, 'down'],
    [100, null],
    [100, null],
    // smtp_final sets has_run only on success, so a server that never answered is reported
    // down again each cycle (no change for the real server)
    [1000, 'down'],
    [1000, 'up'],
  ]);
  m.result(false);
  m.result(false);
  assert.deepEqual(run(m, [false, false]), [
    [1000, 'down'],
    [100, null],
  ]);
});

test('MISC: delays count from the start of the run; no retries while down', () => {
  const m = new CheckerMachine('misc', { ...T, retry: 1 });
  const s0 = m.result(true);
  assert.equal(s0.fromStart, true);
  assert.deepEqual(run(m, [false, false, false, true]), [
    [100, null],
    [1000, 'down'],
    [1000, null],
    [1000, 'up'],
  ]);
  const m0 = new CheckerMachine('misc', { ...T, retry: 0 });
  assert.deepEqual(run(m0, [true, false]), [
    [1000, 'up'],
    [1000, 'down'],
  ]);
});

test('HTTP: one URL per attempt; all must pass in a row; a failed URL is retried alone until it passes', () => {
  const m = new CheckerMachine('http', { ...T, retry: 1 }, 3);
  // start-up: url0, url1, url2 pass a delay_loop apart; up after the last one
  assert.deepEqual(m.nextUrl, 0);
  assert.deepEqual(run(m, [true, true, true]), [
    [1000, null],
    [1000, null],
    [1000, 'up'],
  ]);
  assert.equal(m.nextUrl, 0);
  m.result(true); // url0 passes
  assert.equal(m.nextUrl, 1);
  // url1 fails: one retry after delay_before_retry, then down; url1 is then retried every
  // max(delay_before_retry, delay_loop)
  assert.deepEqual(run(m, [false, false]), [
    [100, null],
    [1000, 'down'],
  ]);
  assert.equal(m.failedUrl, 1);
  assert.equal(m.nextUrl, 1);
  assert.deepEqual(run(m, [false, false]), [
    [1000, null],
    [1000, null],
  ]);
  // url1 passes: the whole list is checked again from url0 before the checker is up
  assert.deepEqual(run(m, [true]), [[1000, null]]);
  assert.equal(m.nextUrl, 0);
  assert.deepEqual(run(m, [true, true, true]), [
    [1000, null],
    [1000, null],
    [1000, 'up'],
  ]);
});

test('HTTP: the first failure at start-up is decisive; fast_recovery checks back to back', () => {
  const m = new CheckerMachine('http', { ...T, retry: 3 }, 1);
  assert.deepEqual(run(m, [false]), [[1000, 'down']]);
  const f = new CheckerMachine('http', { ...T, retry: 1 }, 2, true);
  // not yet run: back to back
  assert.deepEqual(run(f, [true, true]), [
    [0, null],
    [1000, 'up'],
  ]);
  // down, then the failed URL passes: the rest follow immediately
  f.result(false);
  f.result(false);
  assert.equal(f.isUp, false);
  assert.deepEqual(run(f, [true, true, true]), [
    [0, null],
    [0, null],
    [1000, 'up'],
  ]);
});

test('a real server is alive only while every checker passes', () => {
  const rs = new RealServerHealth(true);
  assert.equal(rs.checker('a', false), 'down');
  assert.equal(rs.checker('b', false), null);
  assert.equal(rs.checker('a', true), null);
  assert.equal(rs.alive, false);
  assert.equal(rs.checker('b', true), 'up');
  assert.equal(rs.checker('b', true), null);
  // a checker removed by a reload no longer holds the server down
  rs.checker('c', false);
  assert.equal(rs.forget('c'), 'up');
});

test('quorum: hysteresis keeps a pool hovering at the threshold from flapping', () => {
  const q = new Quorum(3, 1, 4, '[10.0.0.1]:tcp:80');
  assert.equal(q.state, 'up'); // 4 >= 3+1
  assert.equal(q.update(3), null); // 3 >= 3-1: still up
  assert.equal(q.update(2), null); // 2 is not < 2
  assert.deepEqual(q.update(1), { state: 'down', message: 'Lost quorum 3-1=2 > 1 for VS [10.0.0.1]:tcp:80' });
  assert.equal(q.update(3), null); // 3 < 3+1: still down
  assert.deepEqual(q.update(4), { state: 'up', message: 'Gained quorum 3+1=4 <= 4 for VS [10.0.0.1]:tcp:80' });
  // a zero sum loses quorum even with quorum - hysteresis = 0
  const z = new Quorum(1, 0, 1, 'FWM 1');
  assert.equal(z.update(0)?.state, 'down');
  assert.equal(new Quorum(3, 1, 3, 'x').state, 'down'); // starts down below quorum + hysteresis
});
