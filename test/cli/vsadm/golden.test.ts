// Replays the golden ipvsadm cases (what the real ipvsadm 1.31 printed on kernel 6.12, captured
// in test/fixtures/golden/ipvsadm) in their recorded order against a fresh director: the
// cases build on each other, so the table-building commands the recording script ran without
// capturing them are replayed too, at the same points. Each case must give the same stdout,
// stderr and exit status, byte for byte.
//
// What the director cannot produce in-process comes from an injected snapshot (TrafficOverlay):
// the recording sent real traffic before the `list` case, so from there on the real servers
// carry the connection counts, counters and rates of that traffic, and `-L -c` lists its
// entries. Zeroing and flushing act on the snapshot as the kernel acted on the real counters.
//
// Compared as sets of lines (the kernel prints them in hash order, which changes every boot):
//   conn, conn_persistent, conn_exact   connection entries (kernel hash order)
//   list_nosort                          services in kernel hash order (each service's block
//                                        compared exactly: real servers newest first)
// Skipped, with the reason:
//   proc_ip_vs_empty, proc_ip_vs, proc_ip_vs_stats, proc_ip_vs_stats_percpu, proc_ip_vs_conn,
//   proc_ip_vs_conn_sync, proc_ip_vs_app — `cat /proc/net/ip_vs*` is not an ipvsadm command
//   (the /proc text views belong to the metrics module and are tested there).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { ControlClient } from '../../../src/control/client.js';
import type { IpvsApi } from '../../../src/control/ipvs-api.js';
import { ControlServer } from '../../../src/control/server.js';
import { conn, newApi, type TrafficSnapshot, TrafficOverlay, vsadm } from './harness.js';
import { GOLDEN_IPVSADM, GOLDEN_IPVSADM_SETUP as SETUP } from '../../helpers/golden.js';

const DIR = GOLDEN_IPVSADM;
const HAVE_GOLDENS = existsSync(`${DIR}INDEX.tsv`);


/** Uncaptured commands the script ran right after a case. */
const AFTER: Record<string, string[]> = {
  // twos exists from kernel 6.2: the script removes the service so later cases see one table
  err_sched_twos: ['-D -t 198.18.0.98:80'],
  restore_fwmark_signed: ['-D -f 4294967295'],
};

/** The golden run's traffic, as the recorded listings show it (list_stats, list_rate, list_persistent, conn). */
const TRAFFIC: TrafficSnapshot = {
  serviceStats: {
    'tcp:198.18.0.1:80': [6, 36, 0, 2160, 0],
    'tcp:198.18.0.2:443': [3, 18, 0, 1080, 0],
    'udp:198.18.0.3:53': [277, 277, 0, 35456, 0],
  },
  serviceRates: {
    'tcp:198.18.0.1:80': [0, 3, 0, 208, 0],
    'tcp:198.18.0.2:443': [0, 2, 0, 104, 0],
    'udp:198.18.0.3:53': [27, 27, 0, 3440, 0],
  },
  destStats: {
    'tcp:198.18.0.1:80|198.18.9.9:80': [2, 12, 0, 720, 0],
    'tcp:198.18.0.1:80|198.19.0.2:80': [1, 6, 0, 360, 0],
    'tcp:198.18.0.1:80|198.19.0.4:8080': [3, 18, 0, 1080, 0],
    'tcp:198.18.0.2:443|198.19.0.5:443': [3, 18, 0, 1080, 0],
    'udp:198.18.0.3:53|198.19.0.53:5353': [277, 277, 0, 35456, 0],
  },
  destRates: {
    'tcp:198.18.0.1:80|198.18.9.9:80': [0, 1, 0, 69, 0],
    'tcp:198.18.0.1:80|198.19.0.2:80': [0, 1, 0, 35, 0],
    'tcp:198.18.0.1:80|198.19.0.4:8080': [0, 2, 0, 104, 0],
    'tcp:198.18.0.2:443|198.19.0.5:443': [0, 2, 0, 104, 0],
    'udp:198.18.0.3:53|198.19.0.53:5353': [27, 27, 0, 3440, 0],
  },
  destConns: {
    'tcp:198.18.0.1:80|198.18.9.9:80': [2, 0, 0],
    'tcp:198.18.0.1:80|198.19.0.2:80': [1, 0, 0],
    'tcp:198.18.0.1:80|198.19.0.4:8080': [3, 0, 0],
    'tcp:198.18.0.2:443|198.19.0.5:443': [3, 0, 1],
  },
  connections: [
    ...[40006, 40007, 40008].map((p) => conn(6, 'SYN_RECV', 54, ['198.18.9.9', p], ['198.18.0.2', 443], ['198.19.0.5', 443])),
    conn(6, 'SYN_RECV', 54, ['198.18.9.9', 40005], ['198.18.0.1', 80], ['198.18.9.9', 80]),
    conn(6, 'SYN_RECV', 54, ['198.18.9.9', 40002], ['198.18.0.1', 80], ['198.19.0.2', 80]),
    ...[40001, 40003, 40004].map((p) => conn(6, 'SYN_RECV', 54, ['198.18.9.9', p], ['198.18.0.1', 80], ['198.19.0.4', 8080])),
    conn(6, 'SYN_RECV', 54, ['198.18.9.9', 40000], ['198.18.0.1', 80], ['198.18.9.9', 80]),
    conn(6, 'NONE', 349, ['198.18.9.0', 0], ['198.18.0.2', 443], ['198.19.0.5', 443], { flags: 0x1000 }),
  ],
};

/**
 * The UDP burst was still being counted while the cases ran: these listings saw 283 datagrams
 * (128 bytes each on the wire), the others 277.
 */
const UDP_DATAGRAMS: Record<string, number> = { list_stats_X: 283, list_stats_rate: 283 };

function setUdpBurst(datagrams: number): void {
  const v: [number, number, number, number, number] = [datagrams, datagrams, 0, datagrams * 128, 0];
  TRAFFIC.serviceStats['udp:198.18.0.3:53'] = v;
  TRAFFIC.destStats['udp:198.18.0.3:53|198.19.0.53:5353'] = v;
}

const SKIP: Record<string, string> = {};
for (const p of ['proc_ip_vs_empty', 'proc_ip_vs', 'proc_ip_vs_stats', 'proc_ip_vs_stats_percpu', 'proc_ip_vs_conn', 'proc_ip_vs_conn_sync', 'proc_ip_vs_app']) {
  SKIP[p] = 'cat /proc/net/ip_vs*: not an ipvsadm command (the /proc views are tested with the metrics module)';
}

const AS_LINE_SET = new Set(['conn', 'conn_persistent', 'conn_exact']);
const AS_BLOCK_SET = new Set(['list_nosort']);

function sortedLines(s: string): string[] {
  return s.split('\n').sort();
}

/** Header lines exactly, then the service blocks (service line + its real servers) as a set. */
function blocks(s: string): { head: string[]; blocks: string[] } {
  const lines = s.split('\n');
  const head = lines.slice(0, 3);
  const out: string[] = [];
  for (const l of lines.slice(3)) {
    if (l.startsWith('  ->') && out.length) out[out.length - 1] += `\n${l}`;
    else out.push(l);
  }
  return { head, blocks: out.sort() };
}

interface Case {
  name: string;
  status: number;
  command: string;
}

function readCases(): Case[] {
  return readFileSync(`${DIR}INDEX.tsv`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name, status, command] = l.split('\t');
      return { name: name!, status: Number(status), command: command! };
    });
}

async function replay(t: TestContext, director: IpvsApi): Promise<void> {
  const api = new TrafficOverlay(director, TRAFFIC);
  const counts = { exact: 0, sets: 0, skipped: 0, errCases: 0 };

  for (const c of readCases()) {
    if (c.name === 'list') {
      for (const line of SETUP) {
        const r = await vsadm(api, line.split(' '));
        assert.deepEqual(r, { out: '', err: '', status: 0 }, `setup: ipvsadm ${line}`);
      }
      api.enabled = true;
    }
    if (SKIP[c.name]) {
      counts.skipped++;
      await t.test(c.name, { skip: SKIP[c.name] }, () => {});
      continue;
    }
    setUdpBurst(UDP_DATAGRAMS[c.name] ?? 277);
    const words = c.command.split(' ');
    assert.equal(words[0], 'ipvsadm', c.command);
    const lt = words.indexOf('<');
    const args = words.slice(1, lt >= 0 ? lt : undefined);
    const stdin = lt >= 0 ? readFileSync(`${DIR}${words[lt + 1]}`, 'utf8') : '';
    const r = await vsadm(api, args, { stdin });
    const want = {
      out: readFileSync(`${DIR}${c.name}.out`, 'utf8'),
      err: readFileSync(`${DIR}${c.name}.err`, 'utf8'),
      status: Number(readFileSync(`${DIR}${c.name}.rc`, 'utf8').trim()),
    };
    await t.test(`${c.name}: ${c.command}`, () => {
      assert.equal(r.status, want.status, 'exit status');
      assert.equal(r.err, want.err, 'stderr');
      if (AS_LINE_SET.has(c.name)) assert.deepEqual(sortedLines(r.out), sortedLines(want.out), 'stdout (as a set of lines)');
      else if (AS_BLOCK_SET.has(c.name)) assert.deepEqual(blocks(r.out), blocks(want.out), 'stdout (as a set of service blocks)');
      else assert.equal(r.out, want.out, 'stdout');
    });
    if (AS_LINE_SET.has(c.name) || AS_BLOCK_SET.has(c.name)) counts.sets++;
    else counts.exact++;
    if (c.name.startsWith('err_')) counts.errCases++;
    for (const line of AFTER[c.name] ?? []) await vsadm(api, line.split(' '));
  }
  assert.equal(counts.errCases, 77, 'every err_* case is compared');
  t.diagnostic(`compared exactly: ${counts.exact}, as sets: ${counts.sets}, skipped: ${counts.skipped}`);
}

const SKIP_ALL = HAVE_GOLDENS ? false : `no goldens at ${DIR}`;

test('golden ipvsadm cases, in-process (LocalApi over a Director)', { skip: SKIP_ALL }, async (t) => {
  await replay(t, newApi().api);
});

test("golden ipvsadm cases, through vsd's control socket", { skip: SKIP_ALL }, async (t) => {
  const { api: local } = newApi();
  const calls = local as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const quiet = { info() {}, warn() {}, error() {} };
  const server = new ControlServer((op, args) => calls[op]!.apply(local, args), quiet);
  const dir = mkdtempSync(join(tmpdir(), 'vsadm-golden-'));
  await server.listenUnix(join(dir, 'vsd.sock'));
  const client = await ControlClient.connect(join(dir, 'vsd.sock'));
  try {
    await replay(t, client);
  } finally {
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
