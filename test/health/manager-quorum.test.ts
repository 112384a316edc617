// Quorum lost and regained with hysteresis, the sorry server taking over; established
// connections to a failed server under expire_nodest_conn and quiescence; MISC dynamic weights;
// a reload that keeps the health state.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { VERDICT_DROP } from '../../src/core/director.js';
import { TCP_ACK, TCP_PSH, TCP_SYN } from '../../src/core/proto/tcp.js';
import { Client } from '../helpers/director.js';
import { Cleanup, scoped, startVsd, TcpServer, waitFor } from './helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const tmp = mkdtempSync(join(tmpdir(), 'tsvs-quorum-'));
cleanup.add(tmp, (d) => rmSync(d, { recursive: true, force: true }));

const FAST = { delayLoop: 0.05, retry: 0, delayBeforeRetry: 0.02, connectTimeout: 0.5, warmup: 0 };

test('quorum lost: the sorry server takes over; regained only at quorum + hysteresis', async (ctx) => {
  const cleanup = scoped(ctx);
  const s1 = cleanup.add(await new TcpServer().start(), (s) => s.stop()); // weight 2
  const s2 = cleanup.add(await new TcpServer().start(), (s) => s.stop()); // weight 1
  const s3 = cleanup.add(await new TcpServer().start(), (s) => s.stop()); // weight 1
  const sorry = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const quorumUp = join(tmp, 'quorum-up');
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.20:80',
          health: { ...FAST, quorum: 3, hysteresis: 1, sorryServer: { address: `127.0.0.1:${sorry.port}` }, quorumUp: `touch ${quorumUp}` },
          realServers: [
            { address: `127.0.0.1:${s1.port}`, weight: 2, check: { type: 'tcp' } },
            { address: `127.0.0.1:${s2.port}`, weight: 1, check: { type: 'tcp' } },
            { address: `127.0.0.1:${s3.port}`, weight: 1, check: { type: 'tcp' } },
          ],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const [R1, R2, R3, S] = [s1, s2, s3, sorry].map((s) => `127.0.0.1:${s.port}`) as [string, string, string, string];
  const VS = '[127.0.0.20]:tcp:80';
  assert.deepEqual(t.table(), { [R1]: 2, [R2]: 1, [R3]: 1 }); // 4 >= 3+1: quorum at start

  await s3.stop(); // sum 3: not < 3-1, quorum holds
  await waitFor(() => !(R3 in t.table()), 2000, 'R3 removed');
  assert.deepEqual(t.table(), { [R1]: 2, [R2]: 1 });

  await s1.stop(); // sum 1 < 2: lost
  await waitFor(() => S in t.table(), 2000, 'sorry server added');
  assert.deepEqual(t.table(), { [S]: 1 }, 'alive R2 leaves the pool; the sorry server has weight 1');
  assert.ok(t.logged(/Lost quorum 3-1=2 > 1 for VS \[127.0.0.20\]:tcp:80/));
  assert.ok(t.logged(new RegExp(`Adding sorry server \\[127.0.0.1\\]:tcp:${sorry.port} to VS \\[127.0.0.20\\]:tcp:80`)));
  assert.ok(t.logged(/Removing alive servers from the pool for VS \[127.0.0.20\]:tcp:80/));
  const ann = t.health.annotateDest('tcp:127.0.0.20:80', { addr: '127.0.0.1', port: sorry.port } as never) as { health: { sorryServer: boolean; active: boolean } };
  assert.deepEqual([ann.health.sorryServer, ann.health.active], [true, true]);

  await s1.start(); // sum 3 < 3+1: still no quorum (hysteresis)
  await waitFor(() => (t.health.status() as { services: { realServers: { state: string }[] }[] }).services[0]!.realServers[0]!.state === 'up', 2000, 'R1 alive again');
  assert.deepEqual(t.table(), { [S]: 1 }, 'the sorry server still serves');

  await s3.start(); // sum 4: gained
  await waitFor(() => !(S in t.table()), 2000, 'sorry server removed');
  assert.deepEqual(t.table(), { [R1]: 2, [R2]: 1, [R3]: 1 });
  assert.ok(t.logged(new RegExp(`Gained quorum 3\\+1=4 <= 4 for VS ${VS.replace(/[[\].]/g, '\\$&')}`)));
  await waitFor(() => {
    try {
      rmSync(quorumUp);
      return true;
    } catch {
      return false;
    }
  }, 2000, 'quorum_up script run');
  assert.match(t.health.metricsText(), /tsvs_health_quorum_up\{service="tcp:127.0.0.20:80"\} 1/);
});

test('sorry_server_inhibit: the sorry server waits at weight 0 and is toggled to 1', async (ctx) => {
  const cleanup = scoped(ctx);
  const s1 = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const sorry = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.21:80',
          health: { ...FAST, sorryServer: { address: `127.0.0.1:${sorry.port}`, inhibit: true } },
          realServers: [{ address: `127.0.0.1:${s1.port}`, check: { type: 'tcp' } }],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const S = `127.0.0.1:${sorry.port}`;
  assert.equal(t.table()[S], 0);
  await s1.stop();
  await waitFor(() => t.table()[S] === 1, 2000, 'sorry server enabled');
  assert.ok(t.logged(/Enabling sorry server/));
  await s1.start();
  await waitFor(() => t.table()[S] === 0, 2000, 'sorry server disabled');
});

/** A vsd whose director we drive as a data plane would (Client from the core's test helpers). */
async function connTest(inhibit: boolean, expireNodest: number) {
  const a = await new TcpServer().start();
  const b = await new TcpServer().start();
  const t = await startVsd({
    sysctl: { expire_nodest_conn: expireNodest },
    services: [
      {
        protocol: 'tcp',
        address: '127.0.0.22:80',
        scheduler: 'rr',
        health: FAST,
        realServers: [
          { address: `127.0.0.1:${a.port}`, check: { inhibitOnFailure: inhibit, checkers: [{ type: 'tcp' }] } },
          { address: `127.0.0.1:${b.port}`, check: { type: 'tcp' } },
        ],
      },
    ],
  });
  // open connections until one lands on A
  let conn: Client | null = null;
  for (let i = 0; i < 4 && !conn; i++) {
    const c = new Client(t.vsd.director, `198.51.100.7:${40000 + i}`, '127.0.0.22:80');
    if (c.open() === `127.0.0.1:${a.port}`) conn = c;
  }
  assert.ok(conn, 'a connection to A');
  await a.stop();
  await waitFor(() => inhibit ? t.table()[`127.0.0.1:${a.port}`] === 0 : !(`127.0.0.1:${a.port}` in t.table()), 2000, 'A failed');
  const r = { t, conn: conn!, a, b, cleanup: async () => {
    await t.stop();
    await b.stop();
  } };
  return r;
}

test('established connections: a removed server drops them (expire_nodest_conn=0), as IPVS does', async (ctx) => {
  const cleanup = scoped(ctx);
  const x = await connTest(false, 0);
  cleanup.add(x, (y) => y.cleanup());
  assert.equal(x.conn.in(TCP_ACK | TCP_PSH), VERDICT_DROP);
});

test('established connections: expire_nodest_conn=1 expires them; a new SYN is scheduled again', async (ctx) => {
  const cleanup = scoped(ctx);
  const x = await connTest(false, 1);
  cleanup.add(x, (y) => y.cleanup());
  // the entry is expired (dropped at once, or already flushed by the timer: then the packet
  // matches nothing and is not IPVS's), never carried to the removed server
  assert.ok(x.conn.in(TCP_ACK | TCP_PSH) < 0);
  assert.ok(x.conn.in(TCP_SYN) >= 0);
  assert.equal(x.conn.server(), `127.0.0.1:${x.b.port}`);
});

test('established connections: with inhibit_on_failure (weight 0) they go on; new ones go elsewhere', async (ctx) => {
  const cleanup = scoped(ctx);
  const x = await connTest(true, 0);
  cleanup.add(x, (y) => y.cleanup());
  assert.ok(x.conn.in(TCP_ACK | TCP_PSH) >= 0, 'quiescent: the established connection continues');
  assert.equal(x.conn.server(), `127.0.0.1:${x.a.port}`);
  const fresh = new Client(x.t.vsd.director, '198.51.100.8:50000', '127.0.0.22:80');
  assert.equal(fresh.open(), `127.0.0.1:${x.b.port}`);
});

test('MISC_CHECK misc_dynamic: exit 2..255 sets weight exit−2, 0 restores it, 1 takes the server down', async (ctx) => {
  const cleanup = scoped(ctx);
  const code = join(tmp, 'code');
  writeFileSync(code, '0');
  const script = join(tmp, 'dyn.sh');
  writeFileSync(script, `#!/bin/sh\nexit $(cat ${code})\n`);
  chmodSync(script, 0o755);
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.23:80',
          // (misc_timeout defaults to delay_loop: too short for spawning a shell on a busy machine)
          health: { ...FAST, inhibitOnFailure: true },
          realServers: [{ address: '127.0.0.1:9', weight: 7, check: { type: 'misc', command: script, dynamic: true, timeout: 3 } }],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const R = '127.0.0.1:9';
  await waitFor(() => !!t.logged(/succeeded/), 2000, 'first run');
  assert.equal(t.table()[R], 7);
  writeFileSync(code, '12');
  await waitFor(() => t.table()[R] === 10, 2000, 'weight 10');
  assert.ok(t.logged(/Changing weight from 7 to 10 for active service \[127.0.0.1\]:tcp:9 of VS \[127.0.0.23\]:tcp:80/), JSON.stringify(t.logs.map((l) => l.msg)));
  writeFileSync(code, '1');
  await waitFor(() => t.table()[R] === 0, 2000, 'down (inhibit: weight 0)');
  writeFileSync(code, '0');
  await waitFor(() => t.table()[R] === 7, 2000, 'back at the configured weight');
  const st = t.health.annotateDest('tcp:127.0.0.23:80', { addr: '127.0.0.1', port: 9 } as never) as { health: { changes: { from: number; to: number; reason: string }[] } };
  assert.ok(st.health.changes.some((c) => c.from === 7 && c.to === 10 && /dynamic: MISC_CHECK exited 12/.test(c.reason)));
});

test('reload keeps the health state: a down server stays out, the sorry server stays in', async (ctx) => {
  const cleanup = scoped(ctx);
  const s1 = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const s2 = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const sorry = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const file = join(tmp, 'vsd.yaml');
  const cfg = (extra: string) => `
services:
  - protocol: tcp
    address: 127.0.0.24:80
    health: { delayLoop: 0.05, retry: 0, connectTimeout: 0.5, warmup: 0, quorum: 1, sorryServer: { address: "127.0.0.1:${sorry.port}" } }
    realServers:
      - { address: "127.0.0.1:${s1.port}", weight: 3, check: { type: tcp } }
${extra}`;
  writeFileSync(file, cfg(''));
  const t = cleanup.add(await startVsd(cfg(''), { configPath: file }), (x) => x.stop());
  const [R1, R2, S] = [s1, s2, sorry].map((s) => `127.0.0.1:${s.port}`) as [string, string, string];
  await s1.stop();
  await waitFor(() => S in t.table(), 2000, 'sorry server in');
  assert.deepEqual(t.table(), { [S]: 1 });
  t.vsd.reload(); // same file
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(t.table(), { [S]: 1 }, 'unchanged by a reload');
  // a reload that adds a healthy server: quorum comes back with it
  writeFileSync(file, cfg(`      - { address: "127.0.0.1:${s2.port}", weight: 2, check: { type: tcp } }`));
  t.vsd.reload();
  await waitFor(() => t.table()[R2] === 2 && !(S in t.table()), 2000, 'R2 in, sorry server out');
  assert.equal(R1 in t.table(), false, 'R1 is still down');
  await s1.start();
  await waitFor(() => t.table()[R1] === 3, 2000, 'R1 back');
  // a reload with a broken file changes nothing
  writeFileSync(file, 'services: [ { address: nonsense } ]');
  assert.throws(() => t.vsd.reload());
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(t.table(), { [R1]: 3, [R2]: 2 });
});
