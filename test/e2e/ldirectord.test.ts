// A real tool written for ipvsadm, unchanged: Debian's ldirectord runs `ipvsadm` (here vsadm,
// installed under that name) to build and maintain the table of a running vsd, and parses its
// `-L -n` output to follow health changes. Skipped when ldirectord is not installed.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;
const LDIRECTORD = '/usr/sbin/ldirectord';
const skip = !existsSync(LDIRECTORD) ? 'ldirectord is not installed (apt-get install ldirectord)' : process.getuid?.() !== 0 ? 'ldirectord runs as root' : false;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'tsvs-ldirectord-'));
const env = { ...process.env, TSVS_SOCKET: join(dir, 'vsd.sock'), TSVS_RUNTIME_DIR: dir };
const vip = `127.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}.7`;
const vport = 20000 + Math.floor(Math.random() * 30000);
const children: ChildProcess[] = [];
const servers = new Map<string, http.Server>();

async function realServer(name: string, port = 0): Promise<number> {
  const s = http.createServer((_q, r) => r.end(`${name}\n`));
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
  servers.set(name, s);
  return (s.address() as AddressInfo).port;
}

function stopServer(name: string): Promise<void> {
  const s = servers.get(name)!;
  servers.delete(name);
  s.closeAllConnections();
  return new Promise((r) => s.close(() => r()));
}

const ipvsadm = (...args: string[]) => spawnSync(join(dir, 'ipvsadm'), args, { env, encoding: 'utf8' }).stdout;

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${ipvsadm('-L', '-n')}`);
    await sleep(200);
  }
}

function get(): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: vip, port: vport, agent: false, timeout: 3000 }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b.trim()));
      })
      .on('error', reject);
  });
}

let p1 = 0;
let p2 = 0;

before(async () => {
  if (skip) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-deps.mjs')], { cwd: ROOT, stdio: 'ignore' });
  // ldirectord in debug mode uses ./ipvsadm when there is one: vsadm under that name.
  symlinkSync(join(ROOT, 'bin/vsadm.js'), join(dir, 'ipvsadm'));
  const vsd = spawn(process.execPath, [join(ROOT, 'bin/vsd.js'), '--log-level', 'warn'], { env, stdio: 'ignore' });
  children.push(vsd);
  await until(() => spawnSync(join(dir, 'ipvsadm'), ['-L', '-n'], { env }).status === 0, 10000, 'vsd');
  p1 = await realServer('rs1');
  p2 = await realServer('rs2');
  writeFileSync(
    join(dir, 'ldirectord.cf'),
    [
      'checktimeout=1',
      'checkinterval=1',
      'quiescent=no',
      `virtual=${vip}:${vport}`,
      `\treal=127.0.0.1:${p1} masq`,
      `\treal=127.0.0.1:${p2} masq 2`,
      '\tservice=http',
      '\tscheduler=wlc',
      '\tprotocol=tcp',
      '\tchecktype=negotiate',
      '\trequest="/"',
      '\treceive="rs"',
      '',
    ].join('\n'),
  );
  const ld = spawn(LDIRECTORD, ['-d', join(dir, 'ldirectord.cf'), 'start'], { cwd: dir, env, stdio: 'ignore' });
  children.push(ld);
});

after(async () => {
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await Promise.race([new Promise((r) => c.once('exit', r)), sleep(5000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }
  for (const name of [...servers.keys()]) await stopServer(name);
  rmSync(dir, { recursive: true, force: true });
});

test('ldirectord builds the table through vsadm-as-ipvsadm, follows failures and recoveries', { skip, timeout: 60_000 }, async () => {
  const line = (p: number) => new RegExp(`-> 127\\.0\\.0\\.1:${p}\\s+Masq`);
  await until(() => line(p1).test(ipvsadm('-L', '-n')) && line(p2).test(ipvsadm('-L', '-n')), 20000, 'both real servers added');
  assert.match(ipvsadm('-L', '-n'), new RegExp(`TCP  ${vip.replaceAll('.', '\\.')}:${vport} wlc`));
  await sleep(300); // the proxy plane's listener
  const seen = new Set<string>();
  for (let k = 0; k < 6; k++) seen.add(await get());
  assert.deepEqual([...seen].sort(), ['rs1', 'rs2']);
  // rs1 fails: ldirectord's check sees it and deletes it from the table
  await stopServer('rs1');
  await until(() => !line(p1).test(ipvsadm('-L', '-n')), 20000, 'rs1 removed');
  for (let k = 0; k < 4; k++) assert.equal(await get(), 'rs2');
  // rs1 comes back on the same port: re-added
  await realServer('rs1', p1);
  await until(() => line(p1).test(ipvsadm('-L', '-n')), 20000, 'rs1 back');
});
