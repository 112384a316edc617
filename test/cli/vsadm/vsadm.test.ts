// What vsadm adds when it is not installed as "ipvsadm": --json listings, --proxy, its own
// version line; and that under the name ipvsadm none of it exists.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { flavorOf } from '../../../src/cli/vsadm/run.js';
import { conn, newApi, TrafficOverlay, vsadm } from './harness.js';

const V = { argv0: 'vsadm' };

test('the name decides: ipvsadm (any directory) or vsadm', async () => {
  assert.equal(flavorOf('ipvsadm'), 'ipvsadm');
  assert.equal(flavorOf('/usr/sbin/ipvsadm'), 'ipvsadm');
  assert.equal(flavorOf('vsadm'), 'vsadm');
  assert.equal(flavorOf('/opt/tsvs/bin/vsadm.js'), 'vsadm');
  const { api } = newApi();
  assert.match((await vsadm(api, ['-v'], V)).out, /^vsadm v\d+\.\d+\.\d+ \(tsvs; ipvsadm v1\.31 2019\/12\/24 compatible, IPVS v1\.2\.1\)\n$/);
  const help = (await vsadm(api, ['-h'], V)).out;
  assert.match(help, /^ {2}vsadm -L\|l \[virtual-service\] \[options\]$/m);
  assert.match(help, /^ {2}--json {30}listings as JSON \(tsvs\)$/m);
  // ipvsadm knows neither option
  assert.deepEqual(await vsadm(api, ['-L', '--json']), { out: '', err: '--json: unknown option\n', status: 255 });
  assert.deepEqual(await vsadm(api, ['-a', '-t', '1.2.3.4:80', '-r', '10.0.0.1', '--proxy']), { out: '', err: '--proxy: unknown option\n', status: 255 });
});

describe('--json', () => {
  test('services with real servers, counters, rates and thresholds', async () => {
    const { api } = newApi();
    await vsadm(api, '-A -t 10.0.0.1:80 -s rr -p 60 -M 255.255.255.0'.split(' '), V);
    await vsadm(api, '-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 3 -x 10 -y 5'.split(' '), V);
    await vsadm(api, '-a -t 10.0.0.1:80 -r 192.168.1.2 -i --tun-type gue --tun-port 6080 --tun-csum'.split(' '), V);
    await vsadm(api, '-A -f 4294967295 -6 -s sh -b sh-port'.split(' '), V);
    const r = await vsadm(api, ['-L', '--json'], V);
    assert.equal(r.status, 0);
    assert.ok(r.out.endsWith('}\n'));
    const doc = JSON.parse(r.out);
    assert.equal(doc.version, '1.2.1');
    assert.equal(doc.connTabSize, 4096);
    // sorted as -L sorts: the mark >= 2^31 first
    assert.deepEqual(
      doc.services.map((s: { fwmark: number; address: string | null }) => [s.fwmark, s.address]),
      [
        [4294967295, null],
        [0, '10.0.0.1'],
      ],
    );
    const [fwm, tcp] = doc.services;
    assert.deepEqual(
      { af: fwm.af, scheduler: fwm.scheduler, schedFlags: fwm.schedFlags, persistent: fwm.persistent, timeout: fwm.timeout, netmask: fwm.netmask, port: fwm.port },
      { af: 6, scheduler: 'sh', schedFlags: ['sh-port'], persistent: false, timeout: null, netmask: null, port: null },
    );
    assert.deepEqual(
      { protocol: tcp.protocol, port: tcp.port, persistent: tcp.persistent, timeout: tcp.timeout, netmask: tcp.netmask, pe: tcp.pe, ops: tcp.ops },
      { protocol: 'tcp', port: 80, persistent: true, timeout: 60, netmask: '255.255.255.0', pe: null, ops: false },
    );
    assert.deepEqual(Object.keys(tcp.stats), ['conns', 'inpkts', 'outpkts', 'inbytes', 'outbytes']);
    assert.deepEqual(Object.keys(tcp.rates), ['cps', 'inpps', 'outpps', 'inbps', 'outbps']);
    assert.deepEqual(
      tcp.dests.map((d: Record<string, unknown>) => [d.address, d.port, d.forward, d.weight, d.uThreshold, d.lThreshold, d.tunnel]),
      [
        ['192.168.1.1', 8080, 'Masq', 3, 10, 5, null],
        ['192.168.1.2', 80, 'Tunnel', 1, 0, 0, { type: 'gue', port: 6080, csum: 'csum' }],
      ],
    );
    const one = JSON.parse((await vsadm(api, ['-L', '-t', '10.0.0.1:80', '--json'], V)).out);
    assert.deepEqual(Object.keys(one), ['services']);
    assert.deepEqual(one.services[0], tcp);
  });

  test('connections, timeouts, daemons', async () => {
    const { api: local } = newApi();
    const api = new TrafficOverlay(local, {
      serviceStats: {},
      serviceRates: {},
      destStats: {},
      destRates: {},
      destConns: {},
      connections: [conn(17, 'UDP', 299, ['203.0.113.5', 5060], ['10.0.0.4', 5060], ['192.168.1.7', 5060], { peName: 'sip', peData: 'abc@host' })],
    });
    api.enabled = true;
    assert.deepEqual(JSON.parse((await vsadm(api, ['-L', '-c', '--json'], V)).out), {
      connections: [
        {
          protocol: 'UDP',
          client: { address: '203.0.113.5', port: 5060 },
          virtual: { address: '10.0.0.4', port: 5060 },
          destination: { address: '192.168.1.7', port: 5060 },
          state: 'UDP',
          expires: 299,
          template: false,
          fwmark: 0,
          pe: { name: 'sip', data: 'abc@host' },
        },
      ],
    });
    assert.deepEqual(JSON.parse((await vsadm(api, ['-L', '--timeout', '--json'], V)).out), { timeouts: { tcp: 900, tcpfin: 120, udp: 300 } });
    await vsadm(api, ['--start-daemon', 'master', '--mcast-interface', 'eth1'], V);
    assert.deepEqual(JSON.parse((await vsadm(api, ['-L', '--daemon', '--json'], V)).out), {
      daemons: [{ state: 'master', mcastInterface: 'eth1', syncid: 0, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1 }],
    });
  });

  test('--json is a list option only; errors stay ipvsadm errors', async () => {
    const { api } = newApi();
    assert.deepEqual(await vsadm(api, ['-S', '--json'], V), { out: '', err: "Illegal 'json' option with the 'save' command\n", status: 2 });
    assert.deepEqual(await vsadm(api, ['-L', '-t', '1.2.3.4:80', '--json'], V), { out: '', err: 'No such service\n', status: 1 });
  });
});

test('--proxy: the full-proxy method, listed as Proxy and saved as --proxy', async () => {
  const { api } = newApi();
  await vsadm(api, '-A -t 10.0.0.1:80'.split(' '), V);
  assert.deepEqual(await vsadm(api, '-a -t 10.0.0.1:80 -r 192.168.1.1:8080 --proxy -w 2'.split(' '), V), { out: '', err: '', status: 0 });
  assert.deepEqual(await vsadm(api, '-a -t 10.0.0.1:80 -r 192.168.1.2 --proxy -m'.split(' '), V), { out: '', err: "multiple 'forwarding-method' options specified\n", status: 2 });
  const saved = (await vsadm(api, ['-S', '-n'], V)).out;
  assert.equal(saved, '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:8080 --proxy -w 2\n');
  assert.equal((await vsadm(api, ['-L', '-n'], V)).out.split('\n')[4], `  -> ${'192.168.1.1:8080'.padEnd(28)} Proxy   2      0          0         `);
  await vsadm(api, ['-C'], V);
  assert.equal((await vsadm(api, ['-R'], { ...V, stdin: saved })).status, 0);
  assert.equal((await vsadm(api, ['-S', '-n'], V)).out, saved);
});
