// sh, dh and mh: the §14 Maglev vectors, table rules (weights, last_weight, EINVAL), the
// fallbacks, and property tests against straightforward references of the kernel's tables.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IpAddr } from '../../../src/core/addr.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD, IPPROTO_ICMP, IPPROTO_UDP, SVC_F_SCHED1, SVC_F_SCHED2 } from '../../../src/core/constants.js';
import { IpvsError } from '../../../src/core/errors.js';
import { HsiphashKey, hash32, hsiphash32 } from '../../../src/core/schedulers/hash.js';
import { createMhScheduler, MH_PRIMES, type MaglevHashing, populate } from '../../../src/core/schedulers/mh.js';
import type { Dest } from '../../../src/core/service.js';
import { TestService } from './util.js';

const unusable = (d: Dest) => d.weight <= 0 || (d.flags & DEST_F_OVERLOAD) !== 0;
const v4 = (s: string) => IpAddr.parse(s).w0;

test('mh §14: dests 10.0.0.1-3:80 (list order), last_weight 1, M = 4093', () => {
  const ts = new TestService('mh');
  ts.add('10.0.0.3');
  ts.add('10.0.0.2');
  ts.add('10.0.0.1');
  const mh = ts.sched as MaglevHashing;
  const index = (d: Dest | null) => ts.dests.indexOf(d!);
  assert.deepEqual(
    Array.from({ length: 16 }, (_, s) => index(mh.slotOwner(s))),
    [0, 1, 1, 2, 2, 0, 1, 2, 2, 0, 0, 1, 1, 0, 0, 2],
  );
  const counts = [0, 0, 0];
  for (let s = 0; s < mh.tableSize; s++) counts[index(mh.slotOwner(s))]!++;
  assert.deepEqual(counts, [1365, 1364, 1364]);
  assert.equal(index(ts.pick('192.168.1.1')), 0); // slot 2456
  assert.equal(index(ts.pick('192.168.1.2')), 2); // slot 811
  assert.equal(index(ts.pick('172.16.5.9')), 1); // slot 3538
});

test('mh: more dests than slots is EINVAL at init; from the hooks the old table stays', () => {
  const small = createMhScheduler({ tabIndex: 8 }); // M = 251
  const dests: [string, number, number][] = Array.from({ length: 252 }, (_, i) => [`10.1.${i >> 8}.${i & 255}`, 80, 1]);
  assert.throws(
    () => new TestService(small, {}, dests),
    (e: unknown) => e instanceof IpvsError && e.errno === 'EINVAL',
  );
  const ts = new TestService(small, {}, dests.slice(0, 251));
  const mh = ts.sched as MaglevHashing;
  const before = Array.from({ length: 251 }, (_, s) => mh.slotOwner(s));
  ts.add('10.2.0.1');
  ts.add('10.2.0.2'); // 253 dests: no rebuild
  const victim = before[7]!;
  ts.del(victim); // 252: still no rebuild, the table still names the deleted dest
  assert.deepEqual(
    Array.from({ length: 251 }, (_, s) => mh.slotOwner(s)),
    before,
  );
  assert.equal(victim.flags & DEST_F_AVAILABLE, 0);
  const client = findClient(ts, (d) => d === victim);
  assert.equal(ts.pick(client), victim); // the kernel's mh does not look at AVAILABLE
  ts.del(ts.dests[0]!); // 251: fits again, rebuilt without the deleted dests
  for (let s = 0; s < 251; s++) assert.ok(ts.dests.includes(mh.slotOwner(s)!));
});

/** A client address whose lookup lands on a dest satisfying `want` (searching 10.200.x.y). */
function findClient(ts: TestService, want: (d: Dest) => boolean): string {
  const mh = ts.sched as MaglevHashing;
  for (let i = 1; i < 65536; i++) {
    const src = `10.200.${i >> 8}.${i & 255}`;
    const owner = mh.slotOwner(lookupSlot(v4(src), mh.tableSize));
    if (owner && want(owner)) return src;
  }
  throw new Error('no such client');
}

const H1 = HsiphashKey.repeated(2654435761);
/** The slot a client lands on without mh-port: hsiphash(fold) mod M. */
function lookupSlot(fold: number, M: number): number {
  return (hsiphash32(H1, fold) >>> 0) % M;
}

test('mh: quiescing (weight 0) keeps the table; the dest is unusable; mh-fallback finds another', () => {
  const ts = new TestService('mh');
  for (let i = 1; i <= 5; i++) ts.add(`10.0.0.${i}`);
  const mh = ts.sched as MaglevHashing;
  const before = Array.from({ length: mh.tableSize }, (_, s) => mh.slotOwner(s));
  const d = ts.dests[2]!;
  const client = findClient(ts, (o) => o === d);
  ts.setWeight(d, 0);
  assert.deepEqual(
    Array.from({ length: mh.tableSize }, (_, s) => mh.slotOwner(s)),
    before,
  );
  assert.equal(ts.pick(client), null);
  ts.svc.flags |= SVC_F_SCHED1;
  const other = ts.pick(client);
  assert.ok(other && other !== d);
  assert.equal(ts.pick(client), other); // deterministic
  for (const x of ts.dests) ts.setOverload(x, true);
  assert.equal(ts.pick(client), null);
});

/** ip_vs_mh_populate as the kernel writes it: probe each permutation slot by slot. */
function naivePopulate(M: number, perm: Int32Array, skip: Int32Array, turns: Int32Array): Int32Array {
  const table = new Int32Array(M).fill(-1);
  let n = 0;
  let count = 0;
  for (;;) {
    for (let i = 0; i < perm.length; ) {
      if (turns[i]! < 1) {
        i++;
        continue;
      }
      let c = perm[i]!;
      while (table[c] !== -1) c = (c + skip[i]!) % M;
      perm[i] = c;
      table[c] = i;
      if (++n === M) return table;
      if (++count >= turns[i]!) {
        count = 0;
        i++;
      }
    }
  }
}

test('mh: the population (with its free-slot shortcut at the end) equals slot-by-slot probing', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 9 })), { minLength: 1, maxLength: 60 }),
      (p, ds) => {
        const M = MH_PRIMES[p]!;
        fc.pre(ds.some(([, , t]) => t > 0));
        const perm = Int32Array.from(ds, ([o]) => o % M);
        const skip = Int32Array.from(ds, ([, k]) => (k % (M - 1)) + 1);
        const turns = Int32Array.from(ds, ([, , t]) => t);
        assert.deepEqual(populate(M, perm.slice(), skip, turns), naivePopulate(M, perm.slice(), skip, turns));
      },
    ),
    { numRuns: 300 },
  );
});

test('mh: turns follow last_weight / gcd, shifted to 6 bits (weights 1000 and 1)', () => {
  const ts = new TestService('mh');
  const big = ts.add('10.0.0.1', 80, 1000);
  const small = ts.add('10.0.0.2', 80, 1);
  const mh = ts.sched as MaglevHashing;
  let n = 0;
  for (let s = 0; s < mh.tableSize; s++) if (mh.slotOwner(s) === big) n++;
  // rshift = fls(1000) - 6 = 4: turns 62 and 1 (0 rounded up), so 62 of every 63 slots.
  assert.ok(Math.abs(n / mh.tableSize - 62 / 63) < 0.002, `${n}`);
  void small;
});

test('mh: removing one of N dests moves about 1/N of the clients', () => {
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 40 }), fc.nat(1000), (n, pick) => {
      const ts = new TestService('mh');
      for (let i = 0; i < n; i++) ts.add(`10.3.${i}.1`, 8080);
      const mh = ts.sched as MaglevHashing;
      const before = Array.from({ length: mh.tableSize }, (_, s) => mh.slotOwner(s));
      const victim = ts.dests[pick % n]!;
      ts.del(victim);
      let moved = 0;
      let movedOthers = 0;
      for (let s = 0; s < mh.tableSize; s++) {
        if (mh.slotOwner(s) === before[s]) continue;
        moved++;
        if (before[s] !== victim) movedOthers++;
      }
      const frac = moved / mh.tableSize;
      assert.ok(frac < 1 / n + 0.06, `n=${n}: ${frac}`);
      assert.ok(movedOthers / mh.tableSize < 0.06, `n=${n}: others ${movedOthers / mh.tableSize}`);
    }),
    { numRuns: 40 },
  );
});

test('mh: the largest prime table (tabIndex 17, M = 131071) with 1000 dests is full and balanced', () => {
  const dests: [string, number, number][] = Array.from({ length: 1000 }, (_, i) => [`10.${i >> 8}.${i & 255}.7`, 443, 1]);
  const ts = new TestService(createMhScheduler({ tabIndex: 17 }), {}, dests);
  const mh = ts.sched as MaglevHashing;
  assert.equal(mh.tableSize, 131071);
  const counts = new Map<Dest, number>();
  for (let s = 0; s < mh.tableSize; s++) {
    const d = mh.slotOwner(s)!;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  assert.equal(counts.size, 1000);
  const values = [...counts.values()];
  assert.ok(Math.min(...values) >= 131 && Math.max(...values) <= 132, `${Math.min(...values)}..${Math.max(...values)}`);
});

test('mh: mh-port hashes the source port for TCP/UDP only; IPv6 folds the four words', () => {
  const ts = new TestService('mh', { flags: SVC_F_SCHED2 });
  for (let i = 1; i <= 8; i++) ts.add(`10.0.0.${i}`);
  const seen = new Set<Dest | null>();
  for (let p = 1000; p < 1064; p++) seen.add(ts.pick('192.0.2.7', p));
  assert.ok(seen.size > 4);
  const f = ts.flow('192.0.2.7', 5555, undefined, undefined, IPPROTO_ICMP);
  const icmp = ts.sched.schedule(f);
  assert.equal(icmp, ts.pick('192.0.2.7', 0));
  const six = new TestService('mh', { af: 6 });
  for (let i = 1; i <= 4; i++) six.add(`2001:db8::${i}`);
  const a = IpAddr.parse('2001:db8:1::5');
  const expect = (six.sched as MaglevHashing).slotOwner(lookupSlot((a.w0 ^ a.w1 ^ a.w2 ^ a.w3) >>> 0, 4093));
  assert.equal(six.pick('2001:db8:1::5'), expect);
});

// sh and dh against references built from the spec's description of the tables.

function shTable(dests: Dest[]): (Dest | null)[] {
  const table: (Dest | null)[] = [];
  let p = 0;
  let count = 0;
  for (let b = 0; b < 256; b++) {
    if (!dests.length) {
      table.push(null);
      continue;
    }
    const d = dests[p]!;
    table.push(d);
    count++;
    if (count >= d.weight) {
      p = (p + 1) % dests.length;
      count = 0;
    }
  }
  return table;
}

function shReference(table: (Dest | null)[], fold: number, port: number, fallback: boolean): Dest | null {
  const ihash = hash32((fold + port) >>> 0, 8);
  const d = table[ihash];
  if (!d) return null;
  if (!unusable(d)) return d;
  if (!fallback) return null;
  for (let offset = 0; offset < 256; offset++) {
    const e = table[(((offset + ihash) % 256) + ihash) & 255];
    if (!e) return null;
    if (!unusable(e)) return e;
  }
  return null;
}

test('sh: every choice equals the reference table under random weights, overloads and flags', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 70 }), { minLength: 0, maxLength: 12 }),
      fc.array(fc.tuple(fc.nat(100), fc.boolean()), { maxLength: 6 }),
      fc.boolean(),
      fc.boolean(),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 65535 })), { minLength: 1, maxLength: 30 }),
      (weights, overloads, fallback, port, clients) => {
        const ts = new TestService('sh', { protocol: IPPROTO_UDP, flags: (fallback ? SVC_F_SCHED1 : 0) | (port ? SVC_F_SCHED2 : 0) });
        for (const [i, w] of weights.entries()) ts.add(`10.4.0.${i + 1}`, 53, w);
        for (const [i, on] of overloads) if (ts.dests.length) ts.setOverload(ts.dests[i % ts.dests.length]!, on);
        const table = shTable(ts.dests);
        for (const [addr, sport] of clients) {
          const src = IpAddr.v4(addr).toString();
          assert.equal(ts.pick(src, sport), shReference(table, addr, port ? sport : 0, fallback));
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('sh: a weight edit remaps the table; a weight-0 dest keeps one bucket and is refused', () => {
  const ts = new TestService('sh');
  const a = ts.add('10.0.0.1', 80, 1);
  const b = ts.add('10.0.0.2', 80, 1);
  const src = IpAddr.v4(0x0a0a0a0a).toString();
  const ihash = hash32(0x0a0a0a0a, 8);
  const owner = shTable(ts.dests)[ihash];
  assert.equal(ts.pick(src), owner);
  ts.setWeight(b, 3);
  assert.equal(ts.pick(src), shTable(ts.dests)[ihash]);
  ts.setWeight(a, 0);
  const t = shTable(ts.dests);
  assert.equal(t.filter((d) => d === a).length, 64);
  assert.equal(ts.pick(src), t[ihash] === a ? null : t[ihash]);
});

test('dh: 256 buckets round-robin in list order, weights ignored; rebuilt on add/delete only', () => {
  const ts = new TestService('dh');
  const dests = [ts.add('10.0.0.1', 80, 1), ts.add('10.0.0.2', 80, 5), ts.add('10.0.0.3', 80, 2)];
  const list = [...ts.dests];
  const owner = (daddr: number) => list[hash32(daddr, 8) % list.length]!;
  for (let i = 0; i < 200; i++) {
    const daddr = (0x0a640000 + i * 7919) >>> 0;
    assert.equal(ts.pick('198.51.100.1', 1000, IpAddr.v4(daddr).toString()), owner(daddr));
  }
  assert.equal(hash32(v4('10.0.0.1'), 8), 39);
  const daddr = v4('10.0.0.1');
  const d = owner(daddr);
  ts.setWeight(d, 0);
  assert.equal(ts.pick('198.51.100.1', 1000, '10.0.0.1'), null); // no fallback
  ts.setWeight(d, 9); // an edit does not rebuild: same owner
  assert.equal(ts.pick('198.51.100.1', 1000, '10.0.0.1'), d);
  ts.setOverload(d, true);
  assert.equal(ts.pick('198.51.100.1', 1000, '10.0.0.1'), null);
  ts.del(dests[0]!);
  const after = [...ts.dests];
  assert.equal(ts.pick('198.51.100.1', 1000, '10.0.0.5'), (() => {
    const o = after[hash32(v4('10.0.0.5'), 8) % after.length]!;
    return unusable(o) ? null : o;
  })());
});

test('sh and mh converge to the weights: bucket and slot shares follow them', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 8 }), (weights) => {
      const total = weights.reduce((a, b) => a + b, 0);
      const sh = new TestService('sh');
      const mh = new TestService('mh');
      for (const [i, w] of weights.entries()) {
        sh.add(`10.6.0.${i + 1}`, 80, w);
        mh.add(`10.6.0.${i + 1}`, 80, w);
      }
      // sh: the list repeats with `weight` consecutive buckets per dest until 256 are filled.
      const table = shTable(sh.dests);
      for (const d of sh.dests) {
        const n = table.filter((x) => x === d).length;
        assert.ok(Math.abs(n - (256 * d.weight) / total) <= d.weight, `sh ${n}`);
      }
      // mh: turns = weight / gcd; slot shares within a few percent of the weight share.
      const m = mh.sched as MaglevHashing;
      const counts = new Map<Dest, number>();
      for (let s = 0; s < m.tableSize; s++) counts.set(m.slotOwner(s)!, (counts.get(m.slotOwner(s)!) ?? 0) + 1);
      for (const d of mh.dests) {
        const share = (counts.get(d) ?? 0) / m.tableSize;
        assert.ok(Math.abs(share - d.weight / total) < 0.03, `mh ${share} vs ${d.weight / total}`);
      }
    }),
    { numRuns: 60 },
  );
});
