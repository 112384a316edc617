// Small pure pieces of the proxy plane: PROXY protocol header bytes against literal vectors
// (the examples of HAProxy's proxy-protocol.txt), and the address text parser.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IpAddr } from '../../../src/core/addr.js';
import { Flow } from '../../../src/core/flow.js';
import { parseV4Fast, setFlowSourceText, wordsToText } from '../../../src/planes/proxy/addr-text.js';
import { proxyHeader, proxyHeaderV1, proxyHeaderV2 } from '../../../src/planes/proxy/proxy-protocol.js';

const ip = (s: string) => IpAddr.parse(s);

describe('PROXY protocol headers', () => {
  it('v1 text, IPv4 and IPv6', () => {
    assert.equal(proxyHeaderV1(ip('192.168.0.1'), 56324, ip('192.168.0.11'), 443).toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
    assert.equal(proxyHeaderV1(ip('2001:db8:0:0:0:0:0:1'), 1234, ip('::1'), 80).toString('latin1'), 'PROXY TCP6 2001:db8::1 ::1 1234 80\r\n');
  });

  it('v2 binary, TCP over IPv4', () => {
    const b = proxyHeaderV2('stream', ip('192.168.0.1'), 56324, ip('192.168.0.11'), 443);
    assert.equal(b.toString('hex'), '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'c0a80001' + 'c0a8000b' + 'dc04' + '01bb');
  });

  it('v2 binary, UDP over IPv6', () => {
    const b = proxyHeaderV2('dgram', ip('2001:db8::1'), 53, ip('2001:db8::2'), 5353);
    assert.equal(b.length, 16 + 36);
    assert.equal(b.subarray(12, 16).toString('hex'), '21220024');
    assert.equal(b.subarray(16, 32).toString('hex'), '20010db8000000000000000000000001');
    assert.equal(b.subarray(32, 48).toString('hex'), '20010db8000000000000000000000002');
    assert.equal(b.subarray(48).toString('hex'), '003514e9');
  });

  it('v1 has no UDP form', () => {
    assert.equal(proxyHeader(1, 'dgram', ip('10.0.0.1'), 1, ip('10.0.0.2'), 2), null);
    assert.equal(proxyHeader(0, 'stream', ip('10.0.0.1'), 1, ip('10.0.0.2'), 2), null);
  });
});

describe('address text', () => {
  it('parses dotted quads strictly', () => {
    assert.equal(parseV4Fast('127.0.0.1'), 0x7f000001);
    assert.equal(parseV4Fast('255.255.255.255'), 0xffffffff);
    assert.equal(parseV4Fast('0.0.0.0'), 0);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1..2.3', '1.2.3.', 'a.b.c.d', '1234.1.1.1', '::1']) assert.equal(parseV4Fast(bad), -1, bad);
  });

  it('fills a flow source from socket address text, IPv4-mapped included', () => {
    const f = new Flow();
    assert.ok(setFlowSourceText(f, 4, '::ffff:10.1.2.3', 99));
    assert.deepEqual([f.s0, f.s1, f.s2, f.s3, f.sport], [0x0a010203, 0, 0, 0, 99]);
    assert.ok(setFlowSourceText(f, 6, '2001:db8::7', 5));
    assert.deepEqual([f.s0, f.s1, f.s2, f.s3], [0x20010db8, 0, 0, 7]);
    assert.equal(setFlowSourceText(f, 4, 'nonsense', 1), false);
    assert.equal(setFlowSourceText(f, 6, '10.0.0.1', 1), false);
    assert.equal(wordsToText(4, 0x0a000001, 0, 0, 0), '10.0.0.1');
    assert.equal(wordsToText(6, 0x20010db8, 0, 0, 1), '2001:db8::1');
  });
});
