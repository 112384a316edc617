// `npm run bench:core`: the core's figures in one run — scheduler decisions per second at 3,
// 100 and 10,000 real servers (against the kernel's linear wlc scan as the peer), the Maglev
// table build, and the connection table at one million entries (memory, lookups, expiry
// pauses). Prints each figure with its target and writes bench/results/core.json.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchSchedulers, type SchedulerFigures } from './schedulers.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The connection-table figures, measured in a child with --expose-gc for honest memory. */
function connTable(): Record<string, number> {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '-e', `import('${here}conntable.ts').then(m => process.stdout.write(JSON.stringify(m.benchConnTable())))`], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`conntable bench failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

interface Check {
  what: string;
  value: number;
  target: string;
  ok: boolean;
}

async function main(): Promise<void> {
  console.log('== schedulers ==');
  const sched = (await benchSchedulers()) as unknown as SchedulerFigures;
  console.log('\n== connection table (1,000,000 live entries) ==');
  const ct = connTable();
  console.log(ct);

  const dps = sched.decisionsPerSecond;
  const checks: Check[] = [];
  for (const name of ['rr', 'wrr', 'sh', 'dh', 'mh']) {
    for (const size of [3, 100, 10_000]) {
      const v = dps[name]?.[size] ?? 0;
      checks.push({ what: `${name} @ ${size}`, value: v, target: '>= 10,000,000 decisions/s', ok: v >= 10e6 });
    }
  }
  for (const name of ['lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'lblc', 'lblcr', 'twos']) {
    const v = dps[name]?.[10_000] ?? 0;
    checks.push({ what: `${name} @ 10000`, value: v, target: '>= 1,000,000 decisions/s', ok: v >= 1e6 });
  }
  checks.push({ what: 'mh build M=131071, 1000 servers (min ms)', value: sched.mhBuild.minMs, target: '<= 5 ms', ok: sched.mhBuild.minMs <= 5 });
  checks.push({ what: 'bytes per connection entry', value: ct.bytesPerEntry!, target: '<= 128', ok: ct.bytesPerEntry! <= 128 });
  checks.push({ what: 'heap+buffers for 1M entries (MB)', value: Math.round((ct.heapBytes! + ct.arrayBufferBytes!) / 1e6), target: '<= 128 MB', ok: ct.heapBytes! + ct.arrayBufferBytes! <= 128e6 });
  checks.push({ what: 'lookups per second', value: ct.lookupsPerSecond!, target: '>= 3,000,000', ok: ct.lookupsPerSecond! >= 3e6 });
  checks.push({ what: 'longest pause expiring 1M entries (ms)', value: ct.expireMaxPauseMs!, target: '<= 10 ms', ok: ct.expireMaxPauseMs! <= 10 });

  // The peer for the least-connection family: the kernel's own linear scan, same loop.
  const ratios: Record<string, number> = {};
  const linear = dps['wlc-linear'] ?? {};
  for (const name of ['lc', 'wlc', 'sed', 'nq']) {
    for (const size of [3, 100, 10_000]) {
      const l = linear[size];
      if (l && dps[name]?.[size]) ratios[`${name}@${size} / kernel linear wlc`] = Number((dps[name]![size]! / l).toFixed(2));
    }
  }

  console.log('\n== targets ==');
  for (const c of checks) console.log(`${c.ok ? 'ok  ' : 'MISS'} ${c.what.padEnd(44)} ${c.value.toLocaleString('en').padStart(14)}   (${c.target})`);
  console.log('\n== ratios to the kernel-style linear scan ==');
  for (const [k, v] of Object.entries(ratios)) console.log(`${k.padEnd(36)} ${v}x`);

  const cpu = cpus();
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? '?', kernel: release(), node: process.version, loadAverage: loadavg().map((x) => Number(x.toFixed(2))) },
    figures: { schedulers: sched, connTable: ct },
    peers: { 'wlc-linear (the kernel algorithm, same harness)': linear },
    ratios,
    targets: checks,
  };
  mkdirSync(`${here}results`, { recursive: true });
  writeFileSync(`${here}results/core.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${here}results/core.json`);
}

await main();
