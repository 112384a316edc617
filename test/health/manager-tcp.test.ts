// Real servers in their own processes, killed and restarted under TCP_CHECK: removed after
// exactly retry+1 failed attempts spaced delay_before_retry apart, back at the first success,
// kept at weight 0 with inhibit_on_failure; reported in the logs and annotations.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../../src/control/client.js';
import { ChildServer, Cleanup, scoped, startVsd, TcpServer, waitFor } from './helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const DELAY_LOOP = 0.2;
const DBR = 0.1;
const RETRY = 2;
/** Scheduling slack on a busy 2-core machine. */
const SLACK = 120;

test('TCP_CHECK: a killed server leaves the table after retry+1 failures, and comes back when restarted', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new ChildServer().start(), (s) => s.kill());
  const b = cleanup.add(await new ChildServer().start(), (s) => s.kill());
  const vip = await new TcpServer().start(); // only to reserve a free port number for the VIP
  const vport = vip.port;
  await vip.stop();
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: `127.0.0.1:${vport}`,
          scheduler: 'wrr',
          health: { delayLoop: DELAY_LOOP, retry: RETRY, delayBeforeRetry: DBR, connectTimeout: 0.5, warmup: 0, logAllFailures: true },
          realServers: [
            { address: `127.0.0.1:${a.port}`, weight: 3, check: { type: 'tcp' } },
            { address: `127.0.0.1:${b.port}`, weight: 2, check: [{ type: 'tcp' }] },
          ],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const A = `127.0.0.1:${a.port}`;
  const B = `127.0.0.1:${b.port}`;
  assert.deepEqual(t.table(), { [A]: 3, [B]: 2 });
  // let a few good checks pass
  await waitFor(() => !!t.logged(/TCP_CHECK on service .* succeeded/), 2000, 'first successful checks');

  const killedAt = Date.now();
  await a.kill();
  const downAt = await waitFor(() => !(A in t.table()), 3000, 'A removed');
  assert.deepEqual(t.table(), { [B]: 2 });
  // keepalived's rule: the first failure comes at the next check (≤ delay_loop), then `retry`
  // more spaced delay_before_retry; the server leaves at the retry+1-th.
  const failures = t.logs.filter((l) => l.time >= killedAt && l.realServer === `[127.0.0.1]:tcp:${a.port}` && /TCP_CHECK on service .*: ECONNREFUSED/.test(l.msg));
  assert.equal(failures.length, RETRY + 1, 'retry+1 failed attempts before removal');
  for (let i = 1; i < failures.length; i++) {
    const gap = failures[i]!.time - failures[i - 1]!.time;
    assert.ok(gap >= DBR * 1000 - 5 && gap <= DBR * 1000 + SLACK, `attempts ${DBR * 1000} ms apart (got ${gap})`);
  }
  assert.ok(failures[0]!.time - killedAt <= DELAY_LOOP * 1000 + SLACK, 'first failure within a delay_loop');
  assert.ok(downAt - killedAt >= RETRY * DBR * 1000 - 5, `not before retry × delay_before_retry (${downAt - killedAt} ms)`);
  assert.ok(downAt - killedAt <= (DELAY_LOOP + RETRY * DBR) * 1000 + SLACK, `within delay_loop + retry × delay_before_retry (${downAt - killedAt} ms)`);
  assert.ok(t.logged(new RegExp(`Removing service \\[127.0.0.1\\]:tcp:${a.port} from VS \\[127.0.0.1\\]:tcp:${vport}`)));
  assert.ok(t.logged(new RegExp(`TCP_CHECK on service \\[127.0.0.1\\]:tcp:${a.port} failed after ${RETRY} retries`)));

  // The annotation of B says why it has its weight; A is in status() with the reason it is out.
  const st = t.health.status() as { services: { realServers: { address: string; state: string; weight: number | null; reason: string }[] }[] };
  const aStatus = st.services[0]!.realServers.find((r) => r.address === A)!;
  assert.equal(aStatus.state, 'down');
  assert.equal(aStatus.weight, null);
  assert.match(aStatus.reason, /^down \(TCP_CHECK: ECONNREFUSED\); removed$/);

  await a.start(); // same port
  const restartedAt = Date.now(); // (listening by now: start() waits for the child to say so)
  const upAt = await waitFor(() => t.table()[A] === 3, 3000, 'A back');
  // While down the checker keeps trying (delay_before_retry, then delay_loop): the first
  // attempt after the restart succeeds and brings it back at its configured weight.
  assert.ok(upAt - restartedAt <= DELAY_LOOP * 1000 + SLACK, `back within a delay_loop (${upAt - restartedAt} ms)`);
  assert.ok(t.logged(new RegExp(`Adding service \\[127.0.0.1\\]:tcp:${a.port} to VS`), restartedAt));
});

test('inhibit_on_failure: the failed server stays at weight 0 and gets its configured weight back', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new ChildServer().start(), (s) => s.kill());
  const b = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.2:80',
          health: { delayLoop: 0.1, retry: 0, connectTimeout: 0.5, warmup: 0 },
          realServers: [
            { address: `127.0.0.1:${a.port}`, weight: 5, check: { inhibitOnFailure: true, checkers: [{ type: 'tcp' }] } },
            { address: `127.0.0.1:${b.port}`, weight: 1, check: { type: 'tcp' } },
          ],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const A = `127.0.0.1:${a.port}`;
  await a.kill();
  await waitFor(() => t.table()[A] === 0, 2000, 'A at weight 0');
  assert.ok(t.logged(/Disabling service \[127.0.0.1\]:tcp:\d+ from VS \[127.0.0.2\]:tcp:80/));
  const ann = t.health.annotateDest('tcp:127.0.0.2:80', { addr: '127.0.0.1', port: a.port } as never) as { health: { state: string; weight: number; configuredWeight: number; reason: string } };
  assert.equal(ann.health.state, 'down');
  assert.equal(ann.health.weight, 0);
  assert.equal(ann.health.configuredWeight, 5);
  assert.match(ann.health.reason, /inhibit_on_failure/);
  // what vsadm -L --json gets over the control socket
  const client = await ControlClient.connect(join(t.dir, 'vsd.sock'));
  const [svc] = await client.getServices();
  client.close();
  const dest = svc!.dests.find((d) => d.port === a.port) as unknown as { weight: number; configuredWeight: number; weightReason: string; health: { state: string } };
  assert.deepEqual([dest.weight, dest.configuredWeight, dest.health.state], [0, 5, 'down']);
  // The reason is the failure that took it down: a probe connected when the process died reads
  // ECONNRESET, one that came after it ECONNREFUSED.
  assert.match(dest.weightReason, /^down \(TCP_CHECK: ECONN(REFUSED|RESET)\); kept at weight 0 \(inhibit_on_failure\)$/);
  await a.start();
  await waitFor(() => t.table()[A] === 5, 2000, 'A back at weight 5');
  assert.ok(t.logged(/Enabling service \[127.0.0.1\]:tcp:\d+ to VS/));
});

test('alpha: servers start out of the pool and join at their first successful check', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const b = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  await b.stop(); // b never answers
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.3:80',
          health: { alpha: true, delayLoop: 0.1, warmup: 0.05, connectTimeout: 0.5 },
          realServers: [
            { address: `127.0.0.1:${a.port}`, check: { type: 'tcp' } },
            { address: `127.0.0.1:${b.port}`, check: { inhibitOnFailure: true, checkers: [{ type: 'tcp' }] } },
          ],
        },
      ],
    }),
    (x) => x.stop(),
  );
  // At start: a is not in the table (alpha), b is there at weight 0 (alpha + inhibit).
  assert.deepEqual(t.table(), { [`127.0.0.1:${b.port}`]: 0 });
  await waitFor(() => t.table()[`127.0.0.1:${a.port}`] === 1, 2000, 'a added after its first success');
  assert.equal(t.table()[`127.0.0.1:${b.port}`], 0);
});
