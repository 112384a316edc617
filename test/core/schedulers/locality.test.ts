// lblc and lblcr: property tests against plain references of the kernel's cache logic (a Map
// per destination address, linear is_overloaded, the wlc scan), the garbage collection timer,
// and the dest references the caches hold.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEST_F_AVAILABLE } from '../../../src/core/constants.js';
import { hash32 } from '../../../src/core/schedulers/hash.js';
import type { SchedulerInstance } from '../../../src/core/schedulers/scheduler.js';
import type { Dest } from '../../../src/core/service.js';
import { apply, type Event, eventArb, ohInt, ORACLES, overloaded, TestService } from './util.js';

/** is_overloaded() of ip_vs_lblc.c / ip_vs_lblcr.c, scanning the list. */
function lblcOverloaded(d: Dest, dests: Dest[]): boolean {
  return d.activeconns > d.weight && dests.some((m) => Math.imul(m.activeconns, 2) < m.weight);
}

class ReferenceLblc {
  readonly cache = new Map<string, { dest: Dest; lastuse: number }>();
  schedule(dests: Dest[], daddr: string, now: number): Dest | null {
    const en = this.cache.get(daddr);
    if (en) {
      en.lastuse = now;
      const d = en.dest;
      if (d.flags & DEST_F_AVAILABLE && d.weight > 0 && !lblcOverloaded(d, dests)) return d;
    }
    const d = ORACLES.wlc!(dests);
    if (!d) return null;
    if (!en || en.dest !== d) this.cache.set(daddr, { dest: d, lastuse: now });
    return d;
  }
  get refs(): number {
    return this.cache.size;
  }
}

function setMin(set: Dest[]): Dest | null {
  let least: Dest | null = null;
  let loh = 0n;
  for (const d of set) {
    if (overloaded(d)) continue;
    if (!least) {
      if (d.weight > 0 && d.flags & DEST_F_AVAILABLE) {
        least = d;
        loh = ohInt(d);
      }
      continue;
    }
    const doh = ohInt(d);
    if (loh * BigInt(d.weight) > doh * BigInt(least.weight) && d.flags & DEST_F_AVAILABLE) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

function setMax(set: Dest[]): Dest | null {
  let most: Dest | null = null;
  let moh = 0n;
  for (const d of set) {
    if (!most) {
      if (d.weight > 0) {
        most = d;
        moh = ohInt(d);
      }
      continue;
    }
    const doh = ohInt(d);
    if (moh * BigInt(d.weight) < doh * BigInt(most.weight) && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

class ReferenceLblcr {
  readonly cache = new Map<string, { set: Dest[]; lastmod: number; lastuse: number }>();
  constructor(private readonly expirationMs: number) {}
  schedule(dests: Dest[], daddr: string, now: number): Dest | null {
    const en = this.cache.get(daddr);
    if (en) {
      en.lastuse = now;
      const least = setMin(en.set);
      if (en.set.length > 1 && now > en.lastmod + this.expirationMs) {
        const most = setMax(en.set);
        if (most) {
          en.set.splice(en.set.indexOf(most), 1);
          en.lastmod = now;
        }
      }
      if (least && !lblcOverloaded(least, dests)) return least;
      const d = ORACLES.wlc!(dests);
      if (!d) return null;
      if (!en.set.includes(d)) {
        en.set.unshift(d);
        en.lastmod = now;
      }
      return d;
    }
    const d = ORACLES.wlc!(dests);
    if (!d) return null;
    this.cache.set(daddr, { set: [d], lastmod: now, lastuse: now });
    return d;
  }
  get refs(): number {
    let n = 0;
    for (const en of this.cache.values()) n += en.set.length;
    return n;
  }
}

type LocalityEvent = Event | { t: 'visit'; daddr: number; active: boolean } | { t: 'time'; ms: number };
const localityEventArb: fc.Arbitrary<LocalityEvent> = fc.oneof(
  { weight: 5, arbitrary: eventArb },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('visit' as const), daddr: fc.nat(5), active: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 20_000 }) }) },
);

const DADDRS = ['203.0.113.1', '203.0.113.2', '203.0.113.3', '2.2.2.2', '10.10.10.10', '203.0.113.1'];

for (const name of ['lblc', 'lblcr'] as const) {
  test(`${name}: every choice equals the reference cache logic under random events`, () => {
    fc.assert(
      fc.property(fc.array(localityEventArb, { minLength: 1, maxLength: 120 }), (events) => {
        const ts = new TestService(name);
        ts.ctx.sysctl.lblcr_expiration = 30;
        const reference = () => (name === 'lblc' ? new ReferenceLblc() : new ReferenceLblcr(30_000));
        let ref = reference();
        const all = new Set<Dest>();
        for (const e of events) {
          if (e.t === 'time') {
            ts.ctx.time += e.ms;
            continue;
          }
          if (e.t === 'visit' || e.t === 'bind') {
            const daddr = DADDRS[e.t === 'visit' ? e.daddr : 0]!;
            const expected = ref.schedule(ts.dests, daddr, ts.ctx.time);
            const got = ts.pick('198.51.100.1', 40000, daddr);
            assert.equal(got, expected);
            if (got) ts.setConns(got, got.activeconns + (e.active ? 1 : 0), got.inactconns + (e.active ? 0 : 1));
            continue;
          }
          apply(ts, e, name);
          if (e.t === 'rebind') ref = reference(); // a new instance starts with an empty cache
          for (const d of ts.dests) all.add(d);
        }
        // Cache entries hold references to their dests, and give them back when dropped.
        let refs = 0;
        for (const d of all) refs += d.refcnt;
        assert.equal(refs, ref.refs);
        ts.sched.done();
        for (const d of all) assert.equal(d.refcnt, 0);
      }),
      { numRuns: 300 },
    );
  });
}

const size = (s: SchedulerInstance) => (s as unknown as { cacheSize: number }).cacheSize;

test('lblc: the cached dest stays while it is not overloaded in lblc terms, even if OVERLOAD is set', () => {
  const ts = new TestService('lblc');
  const a = ts.add('10.0.0.1', 80, 2);
  const b = ts.add('10.0.0.2', 80, 2); // list: b, a
  assert.equal(ts.pick(undefined, undefined, '203.0.113.9'), b);
  ts.setOverload(b, true);
  assert.equal(ts.pick(undefined, undefined, '203.0.113.9'), b); // the flag is not checked
  ts.setOverload(b, false);
  ts.setConns(b, 3, 0); // 3 > weight 2, and a has 0*2 < 2
  assert.equal(ts.pick(undefined, undefined, '203.0.113.9'), a);
  assert.equal(ts.pick(undefined, undefined, '203.0.113.9'), a); // the entry was replaced
  ts.setConns(a, 3, 0);
  ts.setConns(b, 3, 0); // nobody under half its weight: not overloaded in lblc terms
  assert.equal(ts.pick(undefined, undefined, '203.0.113.9'), a);
  ts.del(a); // a cached dest that was deleted is replaced
  assert.equal(ts.pick(undefined, undefined, '203.0.113.9'), b);
  assert.equal(a.refcnt, 0);
  assert.equal(b.refcnt, 1);
});

test('lblc GC: every 30th run (30 min) drops entries idle for lblc_expiration', () => {
  const ts = new TestService('lblc');
  ts.ctx.sysctl.lblc_expiration = 600;
  const d = ts.add('10.0.0.1');
  ts.pick(undefined, undefined, '203.0.113.1'); // at t = 0
  ts.ctx.time = 1500_000;
  ts.pick(undefined, undefined, '203.0.113.2'); // at 25 min
  ts.sched.tick!(1799_999);
  assert.equal(size(ts.sched), 2);
  ts.sched.tick!(1800_000); // the 30th run is a full check
  assert.equal(size(ts.sched), 1);
  assert.equal(d.refcnt, 1);
  ts.sched.tick!(3600_000); // the next full check, 30 runs later: the second entry is idle too
  assert.equal(size(ts.sched), 0);
  assert.equal(d.refcnt, 0);
});

test('lblc GC: beyond 16384 entries, runs drop entries idle 6 minutes until 4/3 of the excess is gone', () => {
  const ts = new TestService('lblc');
  ts.add('10.0.0.1');
  const n = 16384 + 300;
  for (let i = 0; i < n; i++) ts.pick(undefined, undefined, `100.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  assert.equal(size(ts.sched), n);
  ts.sched.tick!(300_000); // runs at 1..5 min: nothing idle for 6 min yet
  assert.equal(size(ts.sched), n);
  ts.sched.tick!(360_000); // 6 min: goal 400, whole buckets at a time from bucket 1 on
  const perBucket = new Array<number>(1024).fill(0);
  for (let i = 0; i < n; i++) perBucket[hash32((100 << 24) | i, 10)]!++;
  let expected = 0;
  for (let b = 1; expected < 400; b++) expected += perBucket[b]!;
  assert.equal(n - size(ts.sched), expected);
  ts.sched.tick!(3 * 3600_000); // later runs stop once at or below 16384
  assert.ok(size(ts.sched) <= 16384 && size(ts.sched) > 16384 - 400, `${size(ts.sched)}`);
  ts.sched.done();
  assert.equal(ts.dests[0]!.refcnt, 0);
});

test('lblcr: an overloaded member brings a new one into the set; stale sets shed their most loaded', () => {
  const ts = new TestService('lblcr');
  ts.ctx.sysctl.lblcr_expiration = 100;
  const a = ts.add('10.0.0.1', 80, 1);
  const b = ts.add('10.0.0.2', 80, 4); // list: b, a
  const daddr = '203.0.113.7';
  assert.equal(ts.pick(undefined, undefined, daddr), b);
  ts.setConns(b, 5, 0); // 5 > 4 while a has 0*2 < 1: overloaded
  assert.equal(ts.pick(undefined, undefined, daddr), a); // a joins: set {a, b}
  assert.equal(b.refcnt, 1);
  assert.equal(a.refcnt, 1);
  ts.setConns(b, 0, 0);
  assert.equal(ts.pick(undefined, undefined, daddr), a); // set_min over {a, b}, both idle: a comes first
  ts.ctx.time = 100_001; // the set has not changed for lblcr_expiration
  ts.setConns(a, 2, 0); // a is now the most loaded
  assert.equal(ts.pick(undefined, undefined, daddr), b); // set_min chose b, set_max dropped a
  assert.equal(a.refcnt, 0); // dropped from the set
  ts.sched.done();
  assert.equal(b.refcnt, 0);
});

test('lblcr: set_max keeps the first of equally loaded members; the set expires only after lblcr_expiration', () => {
  const ts = new TestService('lblcr');
  ts.ctx.sysctl.lblcr_expiration = 100;
  const a = ts.add('10.0.0.1', 80, 1);
  const b = ts.add('10.0.0.2', 80, 1);
  const c = ts.add('10.0.0.3', 80, 1); // list: c, b, a
  const daddr = '203.0.113.8';
  assert.equal(ts.pick(undefined, undefined, daddr), c);
  ts.setConns(c, 2, 0); // overloaded in lblc terms (2 > 1, a and b idle)
  assert.equal(ts.pick(undefined, undefined, daddr), b); // set {b, c}, lastmod 0
  ts.setConns(b, 2, 0);
  ts.setConns(c, 2, 0);
  ts.setConns(a, 2, 0); // nobody under half its weight now
  ts.ctx.time = 100_000; // not yet expired (strictly after lastmod + 100 s)
  assert.equal(ts.pick(undefined, undefined, daddr), b);
  assert.equal(c.refcnt, 1);
  ts.ctx.time = 100_001;
  assert.equal(ts.pick(undefined, undefined, daddr), b); // b and c tie: set_max drops b, the first
  assert.equal(b.refcnt, 0);
  assert.equal(c.refcnt, 1);
  assert.equal(ts.pick(undefined, undefined, daddr), c);
});

test('lblc/lblcr: address words filled signed or unsigned by a data plane find the same entry', () => {
  for (const name of ['lblc', 'lblcr']) {
    const ts = new TestService(name);
    ts.add('10.0.0.1');
    const f = ts.flow('198.51.100.1', 1000, '203.0.113.200');
    const d = ts.sched.schedule(f);
    f.d0 |= 0; // 203.x.x.x is negative as an int32
    assert.ok(f.d0 < 0);
    assert.equal(ts.sched.schedule(f), d);
    assert.equal(size(ts.sched), 1, name);
  }
});
