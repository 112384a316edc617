// The config file: errors name file, line and problem; the table it describes; reload by
// difference through a running vsd keeps untouched services' connections.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { ConfigError, desiredTable, loadConfigFile, parseConfig } from '../../src/control/config.js';
import { Vsd } from '../../src/control/daemon.js';
import { FWD_DROUTE, FWD_MASQ, SVC_F_PERSISTENT, SVC_F_SCHED2 } from '../../src/core/constants.js';
import { ManualClock } from '../../src/core/clock.js';
import { Client } from '../helpers/director.js';

function problem(text: string): ConfigError {
  try {
    parseConfig(text, 'tsvs.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('no error');
}

test('errors name the file, the line and the problem', () => {
  let e = problem('services:\n  - address: 198.18.0.1:80\n    realServers:\n      - address: 198.19.0.2:80\n        weight: -3\n');
  assert.equal(e.line, 5);
  assert.match(e.message, /^tsvs\.yaml:5:\d+: services\.0\.realServers\.0\.weight: /);
  e = problem('services:\n  - address: 198.18.0.1\n');
  assert.match(e.message, /tsvs\.yaml:2:\d+: services\.0\.address: expected "address:port"/);
  e = problem('services: [\n');
  assert.match(e.message, /^tsvs\.yaml:2:/);
  e = problem('servics: []\n');
  assert.match(e.message, /Unrecognized key/);
  e = problem('sysctl:\n  expire_nodest: 1\n');
  assert.match(e.message, /tsvs\.yaml:2:\d+: sysctl\.expire_nodest: unknown sysctl/);
  e = problem('services:\n  - address: 198.18.0.1:80\n    scheduler: sh\n    schedFlags: [mh-port]\n');
  assert.match(e.message, /needs scheduler mh/);
  assert.throws(() => loadConfigFile('/nonexistent/tsvs.yaml'), /cannot read: ENOENT/);
});

test('the table a config describes, with ipvsadm defaults and rules', () => {
  const cfg = parseConfig(`
services:
  - address: 198.18.0.1:80
    scheduler: sh
    persistent: true
    netmask: 24
    schedFlags: [sh-port]
    realServers:
      - { address: "198.19.0.2:8080", method: dr }
      - { address: "198.19.0.3:8080", weight: 3 }
  - protocol: udp
    address: "[2001:2::1]:53"
    realServers: [{ address: "[2001:2::5]:5353" }]
timeouts: { tcp: 1000 }
`);
  const t = desiredTable(cfg);
  const [a, b] = t.services;
  assert.equal(a!.flags, SVC_F_PERSISTENT | SVC_F_SCHED2);
  assert.equal(a!.timeout, 360);
  assert.equal(a!.netmask, 0xffffff00);
  assert.deepEqual(
    a!.dests.map((d) => [d.addr, d.port, d.connFlags, d.weight]),
    [
      ['198.19.0.2', 80, FWD_DROUTE, 1], // DR: the service port, as ipvsadm forces it
      ['198.19.0.3', 8080, FWD_MASQ, 3],
    ],
  );
  assert.equal(b!.af, 6);
  assert.equal(b!.protocol, 17);
  assert.equal(b!.netmask, 128);
  assert.deepEqual(t.timeouts, { tcp: 1000, tcpfin: 0, udp: 0 });
});

test('reload applies only the difference; a bad file changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-reload-'));
  const file = join(dir, 'tsvs.yaml');
  const write = (weight: number, extra = '') =>
    writeFileSync(
      file,
      `services:\n  - address: 198.18.0.1:80\n    scheduler: rr\n    realServers:\n      - { address: "198.19.0.2:80", weight: 1 }\n      - { address: "198.19.0.3:80", weight: ${weight} }\n${extra}`,
    );
  write(1);
  const clock = new ManualClock(0);
  const vsd = new Vsd({ logger: pino({ level: 'silent' }), config: loadConfigFile(file), configPath: file, loadConfig: () => loadConfigFile(file), socketPath: join(dir, 'vsd.sock'), clock: clock.now });
  await vsd.start();
  try {
    const c = new Client(vsd.director, '198.18.5.5:40000', '198.18.0.1:80');
    const server = c.open();
    write(4, '  - address: 198.18.0.2:80\n');
    const report = vsd.reload();
    assert.deepEqual(report.addedServices, ['tcp:198.18.0.2:80']);
    assert.equal(report.editedDests.length, 1);
    assert.equal(report.unchanged, 1);
    assert.equal(vsd.director.conns.count, 1); // the established connection survived
    assert.equal(c.server(), server);
    writeFileSync(file, 'services:\n  - address: nope\n');
    assert.throws(() => vsd.reload(), /bad config: .*tsvs\.yaml:2/);
    assert.equal(vsd.director.table.size, 2);
  } finally {
    await vsd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
