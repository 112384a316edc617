// vsd's `sync` config section: validation with file and line, daemons started from it with
// vsd, changed on reload (only the roles the config owns), and a start-up that fails loudly
// when the interface does not exist.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/control/config.js';
import type { Vsd } from '../../src/control/daemon.js';
import { syncSettings } from '../../src/sync/config.js';
import { SyncDaemons } from '../../src/sync/daemon.js';
import { SyncExtension } from '../../src/sync/extension.js';
import { startVsd } from '../metrics/vsd-harness.js';

const port = 30000 + (process.pid % 15000) * 2;

test('the sync section: daemon specs, defaults, and errors that name the line', () => {
  const cfg = parseConfig(['sync:', '  master:', '    interface: eth0', '    syncid: 10', '    maxlen: 1400', '  backup:', '    interface: eth1', '    group: ff02::51', '    port: 9000', '    ttl: 2'].join('\n'), 'vsd.yaml');
  assert.deepEqual(syncSettings(cfg), {
    master: { state: 'master', mcastIfn: 'eth0', syncid: 10, syncMaxlen: 1400 },
    backup: { state: 'backup', mcastIfn: 'eth1', syncid: 0, mcastGroup: 'ff02::51', mcastPort: 9000, mcastTtl: 2 },
  });
  assert.deepEqual(syncSettings(parseConfig('services: []', 'x.yaml')), {});
  const bad: Array<[string, RegExp]> = [
    ['sync:\n  master:\n    interface: eth0\n    group: 198.18.0.1\n', /^vsd\.yaml:4:\d+: sync\.master\.group: expected an IPv4/],
    ['sync:\n  master:\n    interface: eth0\n    syncid: 256\n', /^vsd\.yaml:4:\d+: sync\.master\.syncid/],
    ['sync:\n  backup:\n    interface: a-very-long-interface\n', /^vsd\.yaml:3:\d+: sync\.backup\.interface/],
    ['sync:\n  slave:\n    interface: eth0\n', /^vsd\.yaml:\d+:\d+: sync/],
    ['sync:\n  master:\n    syncid: 1\n', /^vsd\.yaml:\d+:\d+: sync\.master\.interface/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => syncSettings(parseConfig(text, 'vsd.yaml')),
      (e: Error) => e instanceof ConfigError && re.test(e.message),
      text,
    );
  }
});

test('vsd starts the configured daemons, changes only its own roles on reload, stops them all on exit', async () => {
  const text = `sync:\n  master:\n    interface: lo\n    syncid: 5\n    port: ${port}\n`;
  // vsd.ts hands the daemons its director through a closure; here an extension started
  // first catches the Vsd the same way (extensions start in order).
  let vsd!: Vsd;
  const daemons = new SyncDaemons({ director: () => vsd.director });
  const catcher = { name: 'catch', start: async (v: Vsd) => void (vsd = v), stop: async () => {} };
  const run = await startVsd({ config: text, extensions: [catcher, new SyncExtension(daemons)] });
  try {
    const ext = (run.vsd as unknown as { extensions: SyncExtension[] }).extensions[1]!;
    assert.deepEqual(
      daemons.list().map((d) => `${d.state} ${d.mcastIfn} ${d.syncid} ${d.mcastPort}`),
      [`master lo 5 ${port}`],
    );
    // a backup started by hand stays when the config does not name the backup role
    daemons.start({ state: 'backup', mcastIfn: 'lo', syncid: 5, mcastPort: port + 1 });
    ext.configure(parseConfig(`sync:\n  master:\n    interface: lo\n    syncid: 6\n    port: ${port}\n`, 'vsd.yaml'));
    assert.deepEqual(
      daemons.list().map((d) => `${d.state} ${d.syncid}`),
      ['master 6', 'backup 5'],
    );
    // the same section again changes nothing; dropping it stops the config's master only
    const master = daemons.list()[0];
    ext.configure(parseConfig(`sync:\n  master:\n    interface: lo\n    syncid: 6\n    port: ${port}\n`, 'vsd.yaml'));
    assert.deepEqual(daemons.list()[0], master);
    ext.configure(parseConfig('services: []', 'vsd.yaml'));
    assert.deepEqual(
      daemons.list().map((d) => d.state),
      ['backup'],
    );
    // a reload naming a missing interface does not throw (the table still applies)
    ext.configure(parseConfig('sync:\n  master:\n    interface: nosuch0\n', 'vsd.yaml'));
    assert.deepEqual(
      daemons.list().map((d) => d.state),
      ['backup'],
    );
  } finally {
    await run.stop();
  }
  assert.deepEqual(daemons.list(), []);
  assert.equal(run.vsd.director.syncMaster, null);
});

test('vsd refuses to start when the configured interface does not exist', async () => {
  await assert.rejects(
    startVsd({
      config: 'sync:\n  backup:\n    interface: nosuch0\n',
      extensions: [new SyncExtension(new SyncDaemons({ director: () => ({ table: { services: () => [] }, sysctl: { sync_ports: 1 } }) as never }))],
    }),
    (e: Error & { errno?: string }) => e.errno === 'ENODEV',
  );
});
