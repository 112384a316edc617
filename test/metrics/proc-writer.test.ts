// The /proc-format directory a running vsd keeps current: contents parsed back against the
// director, rewritten soon after a change made through the control API (as vsadm makes it),
// replaced atomically under concurrent readers, removed on stop; and vsd's command line
// (--proc-dir, --metrics, --web) in a real vsd process.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlClient } from '../../src/control/client.js';
import { parseConfig } from '../../src/control/config.js';
import { procDirSetting } from '../../src/metrics/config.js';
import { ProcExtension } from '../../src/metrics/extension.js';
import { PROC_FILES } from '../../src/metrics/proc-writer.js';
import { Client } from '../helpers/director.js';
import { parseIpVs, parseIpVsConn, parseIpVsStats } from './proc-parse.js';
import { playTcp, pump, startVsd, TABLE_YAML } from './vsd-harness.js';

const ROOT = new URL('../../', import.meta.url).pathname;

test('the directory holds what the director holds: table, totals, entries (parsed back)', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-proc-'));
  // what a crashed vsd could leave: a read-only temporary file
  mkdirSync(join(dir, 'p', 'net'), { recursive: true });
  writeFileSync(join(dir, 'p', 'net', '.ip_vs_conn.tmp-999999'), 'half a file', { mode: 0o444 });
  const proc = new ProcExtension();
  const r = await startVsd({ config: `${TABLE_YAML}\nprocDir: ${dir}/p\n`, extensions: [proc], dir });
  try {
    const open = playTcp(r, 4, 2);
    pump(open.slice(0, 4), 2);
    new Client(r.vsd.director, '[2001:db8:9::1]:5000', '[2001:db8::53]:53', 17).datagram();
    r.estimate(2);
    await proc.refresh();
    const net = join(dir, 'p', 'net');
    assert.deepEqual(readdirSync(net).sort(), [...PROC_FILES].sort(), 'no temporary files left');
    const d = r.vsd.director;

    const t = parseIpVs(readFileSync(join(net, 'ip_vs'), 'utf8'));
    const infos = d.serviceInfos();
    assert.equal(t.services.length, infos.length);
    for (const s of infos) {
      const p = t.services.find((x) => (s.fwmark ? x.fwmark === s.fwmark : x.addr === s.addr && x.port === s.port));
      assert.ok(p);
      assert.deepEqual(
        p.dests.map((x) => [x.addr, x.port, x.weight, x.active, x.inactive]),
        s.dests.map((x) => [x.addr, x.port, x.weight, x.activeConns, x.inactConns]),
      );
    }
    const st = parseIpVsStats(readFileSync(join(net, 'ip_vs_stats'), 'utf8'));
    const c = d.totalStats.counters();
    const rt = d.totalStats.rates();
    assert.deepEqual([st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes], [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]);
    assert.deepEqual(st.rates, [rt.cps, rt.inpps, rt.outpps, rt.inbps, rt.outbps]);

    const conns = parseIpVsConn(readFileSync(join(net, 'ip_vs_conn'), 'utf8'));
    const want = d.connInfos();
    assert.equal(conns.length, want.length);
    assert.deepEqual(
      conns.map((x) => `${x.caddr}|${x.cport}|${x.daddr}|${x.dport}|${x.state}|${x.expires}`).sort(),
      want.map((x) => `${x.caddr}|${x.cport}|${x.daddr}|${x.dport}|${x.state}|${Math.floor(x.expiresMs / 1000)}`).sort(),
    );
    const sync = parseIpVsConn(readFileSync(join(net, 'ip_vs_conn_sync'), 'utf8'));
    assert.equal(sync.length, want.length);
    assert.equal(readFileSync(join(net, 'ip_vs_app'), 'utf8'), 'prot port    usecnt name\n');
    assert.match(readFileSync(join(net, 'ip_vs_stats_percpu'), 'utf8'), /^CPU {4}Conns/m);
  } finally {
    await r.stop();
  }
  assert.deepEqual(readdirSync(join(dir, 'p', 'net')), [], 'stop removes the files');
  rmSync(dir, { recursive: true, force: true });
});

test('a weight changed through the control API shows in ip_vs without waiting for the interval', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-proc-'));
  const proc = new ProcExtension({ intervalMs: 60_000 });
  const r = await startVsd({ config: `${TABLE_YAML}\nprocDir: ${dir}/p\n`, extensions: [proc], dir });
  const client = await ControlClient.connect(r.socketPath);
  try {
    const svc = { af: 4 as const, protocol: 6, addr: '10.0.0.1', port: 80, fwmark: 0 };
    const d = (await client.getService(svc)).dests.find((x) => x.addr === '10.0.1.2')!;
    await client.editDest(svc, { ...d, weight: 9 });
    const file = join(dir, 'p', 'net', 'ip_vs');
    let seen = '';
    for (let i = 0; i < 100 && !/-> 0A000102:1F90 {6}Masq {4}9 /.test(seen); i++) {
      await new Promise((res) => setTimeout(res, 20));
      seen = readFileSync(file, 'utf8');
    }
    assert.match(seen, /-> 0A000102:1F90 {6}Masq {4}9 /);
  } finally {
    client.close();
    await r.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('files are replaced atomically: concurrent readers never see a partial file', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-proc-'));
  const proc = new ProcExtension({ intervalMs: 60_000 });
  const r = await startVsd({ config: `${TABLE_YAML}\nprocDir: ${dir}/p\n`, extensions: [proc], dir });
  try {
    const file = join(dir, 'p', 'net', 'ip_vs_conn');
    const counts = new Set<number>([0]);
    let reads = 0;
    for (let round = 0; round < 4; round++) {
      // 6000 more entries each round: the file is written in several slices
      for (let i = 0; i < 6000; i++) new Client(r.vsd.director, `198.51.${round}.${(i >> 8) & 255}:${10000 + (i & 255)}`, '10.0.0.1:80').in(2);
      counts.add(r.vsd.director.conns.count);
      const writing = proc.refresh();
      let done = false;
      void writing.then(() => (done = true));
      while (!done) {
        const text = readFileSync(file, 'utf8');
        reads++;
        assert.ok(text.startsWith('Pro FromIP   FPrt ToIP'), 'header first');
        assert.ok(text.endsWith('\n'), 'whole lines only');
        const lines = text.split('\n').length - 2;
        assert.ok(counts.has(lines), `a whole table (${lines} entries)`);
        await new Promise((res) => setImmediate(res));
      }
      await writing;
      assert.equal(readFileSync(file, 'utf8').split('\n').length - 2, r.vsd.director.conns.count);
    }
    assert.ok(reads > 4, `readers ran while writing (${reads} reads)`);
  } finally {
    await r.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('procDir must be an absolute path outside /proc (file:line errors)', () => {
  assert.throws(() => procDirSetting(parseConfig('services: []\nprocDir: relative/dir\n', 'vsd.yaml')), { message: /^vsd\.yaml:2:\d+: procDir: expected an absolute directory path$/ });
  assert.throws(() => procDirSetting(parseConfig('procDir: /proc/net\n', 'vsd.yaml')), { message: /procDir: not under \/proc/ });
  assert.equal(procDirSetting(parseConfig('procDir: /run/tsvs/proc\n')), '/run/tsvs/proc');
});

test('vsd --proc-dir --metrics --web: a real vsd process keeps the files, serves metrics and the page', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-cli-'));
  const cfg = join(dir, 'vsd.yaml');
  writeFileSync(cfg, TABLE_YAML);
  writeFileSync(join(dir, 'main.mts'), `import { main } from ${JSON.stringify(join(ROOT, 'src/cli/vsd.ts'))};\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', join(dir, 'main.mts'), '--config', cfg, '--socket', join(dir, 'vsd.sock'), '--no-proxy', '--proc-dir', join(dir, 'proc'), '--metrics', '127.0.0.1:0', '--web', '127.0.0.1:0'], {
    cwd: ROOT,
    env: { ...process.env, TSVS_RUNTIME_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (err += b));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const url = async (msg: string): Promise<string> => {
      for (let i = 0; i < 300; i++) {
        for (const line of out.split('\n')) {
          if (!line.startsWith('{')) continue;
          const j = JSON.parse(line);
          if (typeof j.msg === 'string' && j.msg.startsWith(msg)) return j.url;
        }
        if (child.exitCode !== null) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`vsd did not log "${msg}"; stdout: ${out}; stderr: ${err}`);
    };
    const metricsUrl = await url('metrics endpoint listening');
    const webUrl = await url('web dashboard listening');
    const text = await (await fetch(metricsUrl)).text();
    assert.match(text, /^node_ipvs_backend_weight\{local_address="10\.0\.0\.1",local_mark="",local_port="80",proto="TCP",remote_address="10\.0\.1\.1",remote_port="8080"\} 3$/m);
    const page = await fetch(webUrl);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>tsvs director<\/title>/);
    assert.ok(existsSync(join(dir, 'web-token')), 'a generated web token in the runtime directory');
    const ipvs = parseIpVs(readFileSync(join(dir, 'proc', 'net', 'ip_vs'), 'utf8'));
    assert.equal(ipvs.services.length, 3);
  } finally {
    if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  }
  // a vsd that does not stop on SIGTERM fails the test, and is not left running
  const killer = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 15_000);
  try {
    assert.equal(await exited, 0, err);
    assert.equal(existsSync(join(dir, 'proc', 'net', 'ip_vs')), false, 'files removed when vsd stops');
  } finally {
    clearTimeout(killer);
    rmSync(dir, { recursive: true, force: true });
  }
});
