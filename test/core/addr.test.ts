import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IpAddr, maskV6 } from '../../src/core/addr.js';

test('IPv6 text as glibc inet_ntop prints it', () => {
  const cases: [string, string][] = [
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['::2', '::2'],
    ['::100', '::100'],
    ['::1.2.3.4', '::1.2.3.4'],
    ['::ffff:198.18.0.1', '::ffff:198.18.0.1'],
    ['fe80::1:0:0:1', 'fe80::1:0:0:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, want] of cases) assert.equal(IpAddr.parse(input).toString(), want, input);
});

test('parse refuses what is not an address', () => {
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4x', '1::2::3', '12345::', 'g::1', ':', '1:2:3:4:5:6:7:8:9', '']) assert.equal(IpAddr.tryParse(bad), null, bad);
});

test('text round trip for random addresses', () => {
  fc.assert(
    fc.property(fc.boolean(), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }), (v4, w) => {
      const a = v4 ? IpAddr.v4(w[0]!) : new IpAddr(6, w[0]!, w[1], w[2], w[3]);
      assert.ok(IpAddr.parse(a.toString()).equals(a));
      assert.ok(IpAddr.fromBytes(a.toBytes()).equals(a));
    }),
  );
});

test('IPv6 prefix masks', () => {
  assert.equal(maskV6(IpAddr.parse('2001:db8:1:2:3:4:5:6'), 64).toString(), '2001:db8:1:2::');
  assert.equal(maskV6(IpAddr.parse('2001:db8:1:2:3:4:5:6'), 1).toString(), '::');
  assert.equal(maskV6(IpAddr.parse('2001:db8:1:2:3:4:5:6'), 128).toString(), '2001:db8:1:2:3:4:5:6');
  assert.equal(maskV6(IpAddr.parse('ffff:ffff::'), 20).toString(), 'ffff:f000::');
});
