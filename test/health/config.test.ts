// The health sections of the YAML config: short forms, keepalived's defaults and inheritance,
// errors with file and line; and `via: virtual` checks (a pinned path from the data plane,
// bindto with policy routing, or a stated fallback to a direct check).

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/control/config.js';
import { resolveHealth } from '../../src/health/config.js';
import { HealthManager } from '../../src/health/manager.js';
import { registerVirtualPathProvider, type VirtualPathRequest } from '../../src/health/via-virtual.js';
import { Cleanup, scoped, startVsd, TcpServer, waitFor } from './helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

function health(yaml: string) {
  return resolveHealth(parseConfig(yaml, 'vsd.yaml'));
}

function configError(yaml: string): ConfigError {
  try {
    new HealthManager().checkConfig(parseConfig(yaml, 'vsd.yaml'));
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

test('keepalived defaults: delay_loop 60, connect_timeout 5, retry 1 (DNS 3, MISC 0), delay_before_retry 1 s (HTTP 3 s, DNS delay_loop), warmup = delay_loop', () => {
  const h = health(`
services:
  - address: 10.0.0.1:80
    realServers:
      - address: 10.0.1.1:80
        check:
          - { type: tcp }
          - { type: http, urls: [{ path: / }] }
          - { type: dns }
          - { type: misc, command: /bin/true }
          - { type: smtp, connectPort: 25 }
`);
  const t = h.services[0]!.realServers[0]!.checkers.map((c) => [c.kind, c.timing.delayLoop, c.timing.connectTimeout, c.timing.retry, c.timing.delayBeforeRetry, c.timing.warmup]);
  assert.deepEqual(t, [
    ['tcp', 60000, 5000, 1, 1000, 60000],
    ['http', 60000, 5000, 1, 3000, 60000],
    ['dns', 60000, 5000, 3, 60000, 60000],
    ['misc', 60000, 5000, 0, 1000, 60000],
    ['smtp', 60000, 5000, 1, 1000, 60000],
  ]);
  assert.deepEqual(h.services[0]!.realServers[0]!.checkers[4]!.target, { host: '10.0.1.1', port: 25, family: 4 });
});

test('inheritance: checker > real server > service; quorum and hysteresis corrected as keepalived does', () => {
  const h = health(`
services:
  - address: 10.0.0.1:80
    health: { delayLoop: 6, retry: 3, connectTimeout: 2, inhibitOnFailure: true, quorum: 9, hysteresis: 9, virtualhost: vs.example }
    realServers:
      - address: 10.0.1.1:80
        weight: 2
        check: { delayLoop: 4, checkers: [ { type: tcp, retry: 0 }, { type: http, urls: [{ path: / }] } ] }
      - address: 10.0.1.2:80
        check: { inhibitOnFailure: false, virtualhost: rs.example, checkers: [ { type: http, urls: [{ path: / }] } ] }
`);
  const s = h.services[0]!;
  const [r1, r2] = s.realServers as [(typeof s.realServers)[0], (typeof s.realServers)[0]];
  assert.deepEqual([r1.checkers[0]!.timing.delayLoop, r1.checkers[0]!.timing.retry, r1.checkers[0]!.timing.connectTimeout], [4000, 0, 2000]);
  assert.deepEqual([r1.checkers[1]!.timing.retry, r1.checkers[1]!.virtualhost], [3, 'vs.example']);
  assert.equal(r2.checkers[0]!.virtualhost, 'rs.example');
  assert.deepEqual([r1.inhibit, r2.inhibit], [true, false]);
  assert.deepEqual([s.quorum, s.hysteresis], [3, 2]);
  assert.deepEqual(s.warnings, [
    'Warning - quorum 9 for [10.0.0.1]:tcp:80 exceeds total weight of real servers 3, reducing quorum to 3',
    'Virtual server [10.0.0.1]:tcp:80: hysteresis 9 >= quorum 3; setting hysteresis to 2',
  ]);
});

test('errors name the file, the line and the problem', () => {
  const e1 = configError(`
services:
  - address: 10.0.0.1:80
    realServers:
      - address: 10.0.1.1:80
        check:
          type: htttp
`);
  assert.equal(e1.file, 'vsd.yaml');
  assert.equal(e1.line, 7);
  assert.match(e1.message, /^vsd.yaml:7:\d+: services.0.realServers.0.check.type: /);
  const e2 = configError(`
services:
  - address: 10.0.0.1:80
    realServers:
      - address: 10.0.1.1:80
        check:
          - type: http
            urls:
              - path: /
                digest: abc
`);
  assert.equal(e2.line, 10);
  assert.match(e2.problem, /digest: expected 32 hex digits/);
  const e3 = configError(`
services:
  - address: 10.0.0.1:80
    health:
      sorryServer: { address: nowhere }
    realServers: [ { address: 10.0.1.1:80 } ]
`);
  assert.equal(e3.line, 5);
  const e4 = configError(`
services:
  - address: 10.0.0.1:80
    realServers:
      - address: 10.0.1.1:80
        method: nat
        check: { type: tcp, via: virtual }
`);
  assert.match(e4.problem, /via: virtual is for direct-routing and tunnel real servers/);
  const e5 = configError(`
health: { feedback: { coefficients: { cpu: 1, gpu: 2 } } }
`);
  assert.equal(e5.line, 2);
  const e6 = configError(`
services:
  - address: 10.0.0.1:80
    realServers:
      - address: 10.0.1.1:80
        check: { checkers: [ { type: http, urls: [ { path: /, regex: "(" } ] } ] }
`);
  assert.match(e6.problem, /invalid regular expression/);
});

test('via: virtual — a path pinned by the data plane, bindto with policy routing, or a stated direct fallback', async (ctx) => {
  const cleanup = scoped(ctx);
  // Loopback stands in for the networks: the VIP is 127.0.0.1 (a server there records the
  // probe's source), the real server 127.0.0.50 (nothing listens: a direct check fails).
  const seen: string[] = [];
  const vip = cleanup.add(
    await new TcpServer((c) => {
      seen.push(c.remoteAddress ?? '');
      c.end();
    }).start(),
    (s) => s.stop(),
  );
  const yaml = (extra: string) => `
services:
  - protocol: tcp
    address: 127.0.0.1:${vip.port}
    health: { delayLoop: 0.05, retry: 0, connectTimeout: 0.5, warmup: 0 }
    realServers:
      - address: 127.0.0.50:${vip.port}
        method: dr
        check: { type: tcp, via: virtual${extra} }
`;
  // 1. no provider, no bindto: checked directly (the real server's own address), and said so
  const t1 = cleanup.add(await startVsd(yaml('')), (x) => x.stop());
  await waitFor(() => !!t1.logged(/via: virtual check of 127.0.0.50:\d+ runs directly/), 2000, 'fallback warning');
  const a1 = t1.health.annotateDest(`tcp:127.0.0.1:${vip.port}`, { addr: '127.0.0.50', port: vip.port } as never) as { health: { checkers: { via: string }[] } };
  assert.match(a1.health.checkers[0]!.via, /^direct \(no data-plane path/);
  await t1.stop();

  // 2. bindto: the probe goes to the VIP from that source (the operator's routing picks the server)
  seen.length = 0;
  const t2 = cleanup.add(await startVsd(yaml(', bindto: 127.0.0.42')), (x) => x.stop());
  await waitFor(() => seen.length > 0, 2000, 'probe at the VIP');
  assert.equal(seen[0], '127.0.0.42');
  await t2.stop();

  // 3. a provider (what the packet plane registers): asked for a path to exactly this server
  seen.length = 0;
  const asked: VirtualPathRequest[] = [];
  let released = 0;
  registerVirtualPathProvider({
    name: 'test-plane',
    open(req) {
      asked.push(req);
      return { bind: { address: '127.0.0.43' }, release: () => released++ };
    },
  });
  cleanup.add(null, () => registerVirtualPathProvider(null));
  const t3 = await startVsd(yaml(''));
  await waitFor(() => seen.length > 0, 2000, 'probe through the provider');
  assert.equal(seen[0], '127.0.0.43');
  assert.deepEqual(asked[0], { service: { af: 4, protocol: 6, addr: '127.0.0.1', port: vip.port, fwmark: 0 }, dest: { af: 4, addr: '127.0.0.50', port: vip.port }, method: 3 /* FWD_DROUTE */, protocol: 'tcp' });
  const a3 = t3.health.annotateDest(`tcp:127.0.0.1:${vip.port}`, { addr: '127.0.0.50', port: vip.port } as never) as { health: { checkers: { via: string; up: boolean }[] } };
  assert.equal(a3.health.checkers[0]!.via, 'virtual (test-plane)');
  await t3.stop();
  assert.equal(released, 1, 'the path is released when the checker stops');
  registerVirtualPathProvider(null);
});

test('via: virtual — a provider that cannot open a path: the check runs directly, says why, warns once; a tunnel goes with the request', async (ctx) => {
  const cleanup = scoped(ctx);
  // The real server is 127.0.0.1 itself here (a direct check passes).
  const rs = cleanup.add(await new TcpServer((c) => c.end()).start(), (s) => s.stop());
  const asked: VirtualPathRequest[] = [];
  registerVirtualPathProvider({
    name: 'test-plane',
    open(req) {
      asked.push(req);
      throw new Error('the virtual address is configured on this host');
    },
  });
  cleanup.add(null, () => registerVirtualPathProvider(null));
  const t = cleanup.add(
    await startVsd(`
services:
  - protocol: tcp
    address: 127.0.0.2:${rs.port}
    health: { delayLoop: 0.05, retry: 0, connectTimeout: 0.5, warmup: 0 }
    realServers:
      - address: 127.0.0.1:${rs.port}
        method: tun
        tunnel: { type: gue, port: 6080 }
        check: { type: tcp, via: virtual }
`),
    (x) => x.stop(),
  );
  await waitFor(() => asked.length >= 4, 3000, 'several attempts');
  assert.deepEqual(asked[0]!.tunnel, { type: 1, port: 6080, flags: 0 });
  const warnings = t.logs.filter((l) => /via: virtual check of 127\.0\.0\.1:\d+ runs directly: test-plane cannot open a path: the virtual address is configured on this host$/.test(l.msg));
  assert.equal(warnings.length, 1, 'said once');
  const a = t.health.annotateDest(`tcp:127.0.0.2:${rs.port}`, { addr: '127.0.0.1', port: rs.port } as never) as { health: { checkers: { via: string; up: boolean }[] } };
  assert.equal(a.health.checkers[0]!.via, 'direct (test-plane cannot open a path: the virtual address is configured on this host)');
  assert.equal(a.health.checkers[0]!.up, true);
  registerVirtualPathProvider(null);
});
