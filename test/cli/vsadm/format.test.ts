// Listing formats beyond the golden cases: sorting with the comparator's sign wrap, number
// scaling, name resolution and truncation, the connection listing with PE data, daemons.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connTitle, formatConn, formatDaemons, formatServiceEntry, largeNum, Names } from '../../../src/cli/vsadm/format.js';
import { ServicesDb, StaticResolver } from '../../../src/cli/vsadm/names.js';
import { emptyFormat } from '../../../src/cli/vsadm/parse.js';
import { glibcMergeSort } from '../../../src/cli/vsadm/sort.js';
import type { DestInfo, ServiceInfo } from '../../../src/core/model.js';
import { conn, DEBIAN_SERVICES, newApi, testResolver, vsadm } from './harness.js';

const zero5 = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
const zeroRates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

function svc(over: Partial<ServiceInfo> = {}): ServiceInfo {
  return {
    af: 4,
    protocol: 6,
    addr: '10.0.0.1',
    port: 80,
    fwmark: 0,
    schedName: 'wlc',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    peName: '',
    proxyProtocol: 0,
    dests: [],
    stats: { ...zero5 },
    rates: { ...zeroRates },
    ...over,
  };
}

function dest(over: Partial<DestInfo> = {}): DestInfo {
  return {
    af: 4,
    addr: '192.168.1.2',
    port: 80,
    connFlags: 0,
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
    flags: 1,
    stats: { ...zero5 },
    rates: { ...zeroRates },
    ...over,
  };
}

describe('sorting', () => {
  test('addresses 2^31 or more apart compare the wrong way round, as in libipvs', async () => {
    const { api } = newApi();
    for (const a of ['10.0.0.1', '192.168.1.1', '1.2.3.4']) await vsadm(api, ['-A', '-t', `${a}:80`]);
    const r = await vsadm(api, ['-S', '-n']);
    assert.equal(r.out, '-A -t 192.168.1.1:80 -s wlc\n-A -t 1.2.3.4:80 -s wlc\n-A -t 10.0.0.1:80 -s wlc\n');
  });

  test("a cyclic comparison is resolved as glibc's merge sort resolves it", async () => {
    // 1.0.0.0 < 100.0.0.0 < 200.0.0.0 < 1.0.0.0 under the wrapping comparator
    const cmp = (a: number, b: number) => (a - b) | 0;
    const [a, b, c] = [0x01000000, 0x64000000, 0xc8000000];
    assert.deepEqual(glibcMergeSort([a, b, c], cmp), [a, b, c]);
    assert.deepEqual(glibcMergeSort([c, b, a], cmp), [c, a, b]);
    // real servers are listed from the kernel's newest-first list: added a, b, c → [c, b, a]
    const { api } = newApi();
    await vsadm(api, '-A -t 10.9.9.9:80'.split(' '));
    for (const d of ['1.0.0.0', '100.0.0.0', '200.0.0.0']) await vsadm(api, ['-a', '-t', '10.9.9.9:80', '-r', d, '-m']);
    const r = await vsadm(api, ['-L', '-n']);
    assert.deepEqual(
      r.out
        .split('\n')
        .filter((l) => l.startsWith('  -> ') && !l.includes('RemoteAddress'))
        .map((l) => l.split(/\s+/)[2]),
      ['200.0.0.0:80', '1.0.0.0:80', '100.0.0.0:80'],
    );
  });

  test('the merge keeps equal elements in order (stable, left first)', () => {
    const items = [3, 1, 2, 1, 3, 2].map((k, i) => ({ k, i }));
    assert.deepEqual(
      glibcMergeSort(items, (x, y) => x.k - y.k).map((x) => x.i),
      [1, 3, 2, 5, 0, 4],
    );
  });
});

describe('numbers', () => {
  test('scaled by powers of 1000 from 10^8', () => {
    assert.equal(largeNum(99999999, false), ' 99999999');
    assert.equal(largeNum(100000000, false), '  100000K');
    assert.equal(largeNum(999999999, false), '  999999K');
    assert.equal(largeNum(1e9, false), '    1000M');
    assert.equal(largeNum(99999999999, false), '   99999M');
    assert.equal(largeNum(1e11, false), '     100G');
    assert.equal(largeNum(99999999999999, false), '   99999G');
    assert.equal(largeNum(1e14, false), '     100T');
  });

  test('--exact: at least 9 columns, always one leading blank', () => {
    assert.equal(largeNum(12345678, true), ' 12345678');
    assert.equal(largeNum(123456789, true), ' 123456789');
    assert.equal(largeNum(98765432109, true), ' 98765432109');
  });

  test('--rate: a real server\'s packet rates are never scaled, its byte rates are', async () => {
    const f = { ...emptyFormat(), numeric: true, rate: true };
    const d = dest({ rates: { cps: 1, inpps: 123456789, outpps: 2, inbps: 123456789, outbps: 3 } });
    const out = await formatServiceEntry(svc({ rates: { cps: 1, inpps: 123456789, outpps: 2, inbps: 123456789, outbps: 3 } }), f, new Names(testResolver, true), [d]);
    assert.equal(
      out,
      `${'TCP  10.0.0.1:80'.padEnd(33)}        1  123456K        2  123456K        3\n` + `  -> ${'192.168.1.2:80'.padEnd(28)}        1 123456789        2  123456K        3\n`,
    );
  });
});

describe('names', () => {
  const resolver = new StaticResolver(
    ServicesDb.fromText(DEBIAN_SERVICES),
    new Map(),
    new Map([
      ['10.0.0.1', 'a-very-long-virtual-server-name.example.com'],
      ['192.168.1.2', 'real-server-with-a-long-name.example.com'],
      ['2001:db8::1', 'v6host.example.com'],
    ]),
  );

  test('host names without -n: IPv4 service cut at 33, real server at 28, IPv6 never', async () => {
    const f = emptyFormat();
    const out = await formatServiceEntry(svc(), f, new Names(resolver, false), [dest(), dest({ af: 6, addr: '2001:db8::1', port: 443 })]);
    assert.equal(
      out,
      'TCP  a-very-long-virtual-server-n wlc\n' +
        '  -> real-server-with-a-long-name Masq    1      0          0         \n' +
        '  -> [v6host.example.com]:https   Masq    1      0          0         \n',
    );
  });

  test('-S without -n saves names, uncut', async () => {
    const { api } = newApi();
    await vsadm(api, '-A -t 10.0.0.1:80'.split(' '));
    await vsadm(api, '-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m'.split(' '));
    let out = '';
    const { runVsadm } = await import('../../../src/cli/vsadm/run.js');
    await runVsadm(['-S'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => {} }, stdin: '', argv0: 'ipvsadm', resolver }, api);
    assert.equal(
      out,
      '-A -t a-very-long-virtual-server-name.example.com:http -s wlc\n' + '-a -t a-very-long-virtual-server-name.example.com:http -r real-server-with-a-long-name.example.com:http-alt -m -w 1\n',
    );
  });
});

describe('connections', () => {
  const names = new Names(testResolver, true);

  test('lines with PE data take the long form under --persistent-conn', async () => {
    const f = { ...emptyFormat(), numeric: true, persistentConn: true };
    const c = conn(17, 'UDP', 1799, ['203.0.113.5', 5060], ['10.0.0.4', 5060], ['192.168.1.7', 5060], { peName: 'sip', peData: 'abc@host' });
    assert.equal(
      connTitle(f) + (await formatConn(c, f, names)),
      'IPVS connection entries\n' +
        'pro expire state       source             virtual            destination        pe name          pe_data\n' +
        'UDP 29:59  UDP         203.0.113.5:5060   10.0.0.4:5060      192.168.1.7:5060 sip                abc@host\n',
    );
    // without --persistent-conn the PE data is not shown
    assert.equal(await formatConn(c, { ...f, persistentConn: false }, names), 'UDP 29:59  UDP         203.0.113.5:5060   10.0.0.4:5060      192.168.1.7:5060\n');
  });

  test('minutes go past two digits; IPv6 entries; names and service names without -n', async () => {
    const f = { ...emptyFormat(), numeric: true };
    const tmpl = conn(6, 'NONE', 100 * 60 + 5, ['198.18.9.0', 0], ['198.18.0.2', 443], ['198.19.0.5', 443]);
    assert.equal(await formatConn(tmpl, f, names), 'TCP 100:05 NONE        198.18.9.0:0       198.18.0.2:443     198.19.0.5:443\n');
    const v6 = conn(6, 'ESTABLISHED', 899, ['2001:db8::1', 40000], ['2001:db8::80', 80], ['2001:db8::a0a0', 80]);
    assert.equal(await formatConn(v6, f, names), 'TCP 14:59  ESTABLISHED [2001:db8::1]:40000 [2001:db8::80]:80  [2001:db8::a0a0]:80\n');
    assert.equal(await formatConn(v6, emptyFormat(), new Names(testResolver, false)), 'TCP 14:59  ESTABLISHED [2001:db8::1]:40000 [2001:db8::80]:http [2001:db8::a0a0]:http\n');
  });
});

test('daemons: master first, optional parts only when set', () => {
  assert.equal(
    formatDaemons([
      { state: 'backup', mcastIfn: 'eth1', syncid: 10, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 },
      { state: 'master', mcastIfn: 'eth0', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 },
    ]),
    'master sync daemon (mcast=eth0, syncid=0)\nbackup sync daemon (mcast=eth1, syncid=10, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
  );
});

test('-L --daemon lists what was started, with the effective values', async () => {
  const { api } = newApi();
  assert.equal((await vsadm(api, '--start-daemon backup --mcast-interface lo --syncid 9 --mcast-group 239.1.2.3 --mcast-port 9000 --mcast-ttl 3 --sync-maxlen 1000'.split(' '))).status, 0);
  assert.equal((await vsadm(api, '--start-daemon master'.split(' '))).status, 0);
  const again = await vsadm(api, '--start-daemon master --mcast-interface eth1'.split(' '));
  assert.deepEqual([again.err, again.status], ['Daemon has already run\n', 255]);
  const r = await vsadm(api, ['-L', '--daemon']);
  assert.equal(r.out, 'master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\nbackup sync daemon (mcast=lo, syncid=9, maxlen=1024, group=239.1.2.3, port=9000, ttl=3)\n');
});
