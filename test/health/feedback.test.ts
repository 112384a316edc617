// Dynamic feedback: the LVS design's formula and bounds, the indicators, the agent's /proc
// parsing and its wire protocol; then the whole loop in vsd with real agents: a loaded server's
// weight falls while an idle one's rises, step by step as the formula says; an agent that stops
// answering takes its server to weight 0 until it is back.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LoadSampler, startAgent } from '../../src/cli/vsagent.js';
import { parseReport, pollAgent } from '../../src/health/agent-protocol.js';
import { aggregateLoad, clampWeight, indicatorValues, inputShares, nextWeight, worthWriting } from '../../src/health/feedback.js';
import { Cleanup, scoped, startVsd, TcpServer, waitFor } from './helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const tmp = mkdtempSync(join(tmpdir(), 'tsvs-feedback-'));
cleanup.add(tmp, (d) => rmSync(d, { recursive: true, force: true }));

const F = { adjust: 5, target: 0.95, scale: 10, minWeight: 1 };

test('the formula: w ← w + A·∛(target − load), bounded by [minWeight, scale × default]', () => {
  assert.equal(nextWeight(10, 10, 0.95, F), 10, 'unchanged at the target');
  assert.ok(Math.abs(nextWeight(10, 10, 0.2, F) - (10 + 5 * Math.cbrt(0.75))) < 1e-12);
  assert.ok(Math.abs(nextWeight(10, 10, 2, F) - (10 - 5 * Math.cbrt(1.05))) < 1e-12, 'the cube root of a negative number is negative');
  assert.equal(nextWeight(99, 10, 0, F), 100, 'capped at scale × default');
  assert.equal(nextWeight(2, 10, 5, F), 1, 'floored at minWeight');
  assert.equal(nextWeight(3, 0, 0, F), 3, 'a server whose default weight is 0 is left alone');
  assert.equal(clampWeight(5, 0.1, { scale: 10, minWeight: 2 }), 1, 'the floor never exceeds the cap');
  assert.equal(worthWriting(11, 10, 0), true);
  assert.equal(worthWriting(11, 10, 1), false, 'not more than the threshold');
  assert.equal(worthWriting(12, 10, 1), true);
});

test('indicators and the aggregate load', () => {
  const v = indicatorValues({ agent: 'x', version: 1, ncpu: 4, cpu: 0.5, loadavg: [2, 1, 1], memory: 0.25, connections: 500, disk: 0.1, custom: 0.3 }, 250, 1.5, { connections: 1000, responseMs: 1000 });
  assert.deepEqual(v, { input: 1.5, cpu: 0.5, loadavg: 0.5, memory: 0.25, connections: 0.5, response: 0.25, disk: 0.1, custom: 0.3 });
  const a = aggregateLoad(v, { input: 0.1, cpu: 0.3, disk: 0.1, memory: 0.1, connections: 0.1, response: 0.3 });
  assert.ok(Math.abs(a.load - (0.15 + 0.15 + 0.01 + 0.025 + 0.05 + 0.075)) < 1e-12);
  assert.deepEqual(a.missing, []);
  const m = aggregateLoad({ cpu: 1 }, { cpu: 0.5, custom: 0.5 });
  assert.deepEqual([m.load, m.missing], [0.5, ['custom']]);
  assert.deepEqual(inputShares([10, 30, 20]), [0.5, 1.5, 1]);
  assert.deepEqual(inputShares([0, 0]), [undefined, undefined]);
});

test('agent reports are validated: out-of-range or missing fields are dropped, junk rejected', () => {
  assert.deepEqual(parseReport('{"agent":"vsagent","version":1,"cpu":0.5,"memory":7,"connections":-1,"custom":null,"loadavg":[1,2]}'), { agent: 'vsagent', version: 1, cpu: 0.5, custom: null });
  assert.throws(() => parseReport('nope'), /not JSON/);
  assert.throws(() => parseReport('[1]'), /not an object/);
  assert.throws(() => parseReport('{"cpu":1}'), /no version/);
});

test('vsagent: /proc parsing (stat, loadavg, meminfo, net/tcp, diskstats) and rates between samples', async () => {
  const proc = join(tmp, 'proc');
  mkdirSync(join(proc, 'net'), { recursive: true });
  const stat = (busy: number, idle: number) => `cpu  ${busy} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\ncpu1 1 0 0 1 0 0 0 0 0 0\nintr 1\n`;
  writeFileSync(join(proc, 'stat'), stat(100, 900));
  writeFileSync(join(proc, 'loadavg'), '1.50 0.75 0.25 2/300 4242\n');
  writeFileSync(join(proc, 'meminfo'), 'MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n');
  const tcpHead = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  writeFileSync(
    join(proc, 'net/tcp'),
    `${tcpHead}   0: 0100007F:0050 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1\n   1: 0100007F:0050 0100007F:C351 06 00000000:00000000 00:00000000 00000000     0        0 2\n   2: 0100007F:1F90 0100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 3\n   3: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4\n`,
  );
  writeFileSync(join(proc, 'net/tcp6'), tcpHead);
  const disk = (ticks: number) => `   7       0 loop0 1 0 0 0 0 0 0 0 0 99999 0\n   8       0 sda 10 0 0 0 0 0 0 0 0 ${ticks} 0\n`;
  writeFileSync(join(proc, 'diskstats'), disk(1000));
  const s = new LoadSampler({ procDir: proc, ports: [80] });
  await s.sample(10_000);
  writeFileSync(join(proc, 'stat'), stat(400, 1000)); // +300 busy of +400
  writeFileSync(join(proc, 'diskstats'), disk(1250)); // 250 ms busy in 1000 ms
  await s.sample(11_000);
  const r = s.report();
  assert.equal(r.ncpu, 2);
  assert.equal(r.cpu, 0.75);
  assert.deepEqual(r.loadavg, [1.5, 0.75, 0.25]);
  assert.equal(r.memory, 0.6);
  assert.equal(r.connections, 1, 'established, to local port 80 only');
  assert.equal(r.disk, 0.25, 'loop devices are left out');
  const all = new LoadSampler({ procDir: proc });
  await all.sample();
  assert.equal(all.report().connections, 2);
  assert.equal(LoadSampler.parseMemory('MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 10 kB\nCached: 30 kB\n'), 0.5);
});

test('vsagent: HTTP and UDP polls; a custom command; the CLI as a process', async (ctx) => {
  const cleanup = scoped(ctx);
  const sampler = new LoadSampler({ custom: 'echo load: 0.42' });
  sampler.start(100);
  cleanup.add(sampler, (s) => s.stop());
  const srv = await startAgent(sampler, { host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 });
  cleanup.add(srv, (s) => s.close());
  await waitFor(() => sampler.report().custom === 0.42 && sampler.report().connections !== undefined, 3000, 'custom value and connections sampled');
  const h = await pollAgent('127.0.0.1', srv.httpPort, 'http', 1000);
  assert.equal(h.report.agent, 'vsagent');
  assert.equal(h.report.custom, 0.42);
  assert.ok(typeof h.report.memory === 'number' && typeof h.report.connections === 'number' && h.report.loadavg?.length === 3);
  const u = await pollAgent('127.0.0.1', srv.udpPort!, 'udp', 1000);
  assert.equal(u.report.custom, 0.42);
  await assert.rejects(pollAgent('127.0.0.1', srv.httpPort + 0, 'udp', 150), /did not answer|ECONNREFUSED/);

  // the real CLI, started and killed by pid
  const run = "import('./src/cli/vsagent.ts').then((m) => m.main(process.argv.slice(1))).then((c) => process.exit(c))";
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', run, '--', '--listen', '127.0.0.1:0', '--interval', '0.1', '--ports', '80'], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.add(child, (c) => c.exitCode === null && process.kill(c.pid!, 'SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\/load/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`vsagent exited ${c}`)));
  });
  const p = await pollAgent('127.0.0.1', port, 'http', 2000);
  assert.equal(p.report.version, 1);
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  process.kill(child.pid!, 'SIGTERM');
  assert.equal(await exited, 0, 'stops cleanly on SIGTERM');
});

/** An agent whose custom value a file sets ("how loaded am I"). */
async function fileAgent(name: string, value: string) {
  const file = join(tmp, name);
  writeFileSync(file, value);
  const sampler = new LoadSampler({ custom: `cat ${file}`, connections: false });
  sampler.start(20);
  const srv = await startAgent(sampler, { host: '127.0.0.1', port: 0 });
  await waitFor(() => sampler.report().custom === Number(value), 2000, `${name} sampled`);
  return { file, sampler, srv, stop: async () => {
    sampler.stop();
    await srv.close();
  } };
}

test('feedback loop: the loaded server’s weight falls, the idle one’s rises, one formula step per interval', async (ctx) => {
  const cleanup = scoped(ctx);
  const busy = cleanup.add(await fileAgent('busy', '2'), (a) => a.stop());
  const idle = cleanup.add(await fileAgent('idle', '0.2'), (a) => a.stop());
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.30:80',
          scheduler: 'wlc',
          health: { feedback: { interval: 0.15, coefficients: { custom: 1 }, timeout: 0.5, scale: 3 } },
          realServers: [
            { address: '127.0.0.1:1001', weight: 10, check: { feedback: { agent: `127.0.0.1:${busy.srv.httpPort}` } } },
            { address: '127.0.0.1:1002', weight: 10, check: { feedback: { agent: `127.0.0.1:${idle.srv.httpPort}` } } },
          ],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const B = '127.0.0.1:1001';
  const I = '127.0.0.1:1002';
  assert.deepEqual(t.table(), { [B]: 10, [I]: 10 });
  // step 1: busy 10 − 5·∛1.05 = 4.92 → 5; idle 10 + 5·∛0.75 = 14.54 → 15
  await waitFor(() => t.table()[B] === 5 && t.table()[I] === 15, 2000, 'first step');
  // step 2: busy 4.92 − 5.08 → floor 1; idle 19.09 → 19
  await waitFor(() => t.table()[B] === 1 && t.table()[I] === 19, 2000, 'second step');
  assert.ok(t.logged(/Changing weight from 10 to 5 for active service \[127.0.0.1\]:tcp:1001 of VS \[127.0.0.30\]:tcp:80 \(feedback: load 2.000 = 1.00·custom 2.000\)/));
  assert.ok(t.logged(/Changing weight from 15 to 19 for active service \[127.0.0.1\]:tcp:1002/));
  // the idle server climbs to scale × default and stays there
  await waitFor(() => t.table()[I] === 30, 3000, 'idle at the cap');
  // the busy server recovers when its load drops below the target
  writeFileSync(busy.file, '0.45'); // +5·∛0.5 = +3.97 per step
  await waitFor(() => (t.table()[B] ?? 0) >= 9, 3000, 'busy recovering');
  const ann = t.health.annotateDest('tcp:127.0.0.30:80', { addr: '127.0.0.1', port: 1002 } as never) as { health: { feedback: { aggregateLoad: number; weight: number; agentUp: boolean; formula: string }; reason: string } };
  assert.equal(ann.health.feedback.agentUp, true);
  assert.equal(ann.health.feedback.aggregateLoad, 0.2);
  assert.equal(ann.health.feedback.weight, 30);
  assert.match(ann.health.reason, /^feedback: aggregate load 0.200 → weight 30/);
  assert.match(ann.health.feedback.formula, /w ← w \+ 5·∛\(0.95 − load\), within \[1, 3×10\]/);
  assert.match(t.health.metricsText(), /tsvs_feedback_aggregate_load\{service="tcp:127.0.0.30:80",real_server="127.0.0.1:1002"\} 0.2/);
});

test('feedback loop: real connections load a server (indicator "connections"); a silent agent means weight 0', async (ctx) => {
  const cleanup = scoped(ctx);
  const rsA = cleanup.add(await new TcpServer(() => {}).start(), (s) => s.stop());
  const rsB = cleanup.add(await new TcpServer(() => {}).start(), (s) => s.stop());
  const mk = async (port: number) => {
    const s = new LoadSampler({ ports: [port] });
    s.start(150);
    const srv = await startAgent(s, { host: '127.0.0.1', port: 0 });
    return { s, srv, stop: async () => {
      s.stop();
      await srv.close();
    } };
  };
  const agA = cleanup.add(await mk(rsA.port), (a) => a.stop());
  const agB = cleanup.add(await mk(rsB.port), (a) => a.stop());
  const socks: Socket[] = [];
  cleanup.add(socks, (l) => {
    for (const s of l) s.destroy();
  });
  for (let i = 0; i < 40; i++) socks.push(connect(rsA.port, '127.0.0.1').on('error', () => {}));
  await waitFor(() => agA.s.report().connections === 40, 3000, `40 connections seen by A’s agent (seen: ${agA.s.report().connections})`);
  const t = cleanup.add(
    await startVsd({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.31:80',
          health: { feedback: { interval: 0.1, coefficients: { connections: 1 }, capacity: { connections: 20 }, timeout: 0.3 } },
          realServers: [
            { address: `127.0.0.1:${rsA.port}`, weight: 4, check: { feedback: { agent: `127.0.0.1:${agA.srv.httpPort}` } } },
            { address: `127.0.0.1:${rsB.port}`, weight: 4, check: { feedback: { agent: `127.0.0.1:${agB.srv.httpPort}` } } },
          ],
        },
      ],
    }),
    (x) => x.stop(),
  );
  const A = `127.0.0.1:${rsA.port}`;
  const B = `127.0.0.1:${rsB.port}`;
  // A: load 40/20 = 2 → falls to the floor; B: load 0 → rises to 10 × 4
  await waitFor(() => t.table()[A] === 1 && t.table()[B] === 40, 3000, 'A at 1, B at 40');
  // B's agent stops answering: weight 0 until it answers again, then the loop's weight is back
  await agB.srv.close();
  await waitFor(() => t.table()[B] === 0, 2000, 'B at 0 without its agent');
  assert.ok(t.logged(/feedback: agent of \[127.0.0.1\]:tcp:\d+ does not answer/));
  const again = await startAgent(agB.s, { host: '127.0.0.1', port: agB.srv.httpPort });
  cleanup.add(again, (s) => s.close());
  await waitFor(() => t.table()[B] === 40, 2000, 'B back at 40');
});
