// End to end through the real binaries: a `vsd` process started from bin/vsd.js with a config,
// driven by bin/vsadm.js, carrying real TCP and UDP on loopback through its proxy plane to real
// servers this test runs. What a user of the quick start and of ipvsadm scripts meets.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A real server that answers with its name; `hold` keeps the response open until released. */
class NamedServer {
  readonly server: http.Server;
  port = 0;
  private held: http.ServerResponse[] = [];
  constructor(readonly name: string) {
    this.server = http.createServer((req, res) => {
      if (req.url === '/hold') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`${name}\n`);
        this.held.push(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
      res.end(`${name}\n`);
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  release(): void {
    for (const r of this.held.splice(0)) r.end('done\n');
  }
  close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** GET with a fresh connection, optionally from a given source address. */
function get(host: string, port: number, path = '/', localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, ...(localAddress ? { localAddress } : {}), timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body.trim()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A held request: resolves `first` with the first line, `done` when the server releases it. */
function hold(host: string, port: number): { first: Promise<string>; done: Promise<string> } {
  let firstResolve!: (s: string) => void;
  const first = new Promise<string>((r) => (firstResolve = r));
  const done = new Promise<string>((resolve, reject) => {
    const req = http.get({ host, port, path: '/hold', agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
        if (body.includes('\n')) firstResolve(body.split('\n')[0]!);
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { first, done };
}

describe('vsd and vsadm, the real binaries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-e2e-'));
  const socket = join(dir, 'vsd.sock');
  const config = join(dir, 'tsvs.yaml');
  const env = { ...process.env, TSVS_SOCKET: socket, TSVS_RUNTIME_DIR: dir };
  const vip = `127.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}.1`;
  const port = 20000 + Math.floor(Math.random() * 30000);
  const servers = [new NamedServer('rs1'), new NamedServer('rs2'), new NamedServer('rs3')];
  let vsd: ChildProcess;
  let vsdErr = '';

  const vsadm = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/vsadm.js'), ...args], { env, encoding: 'utf8' });
  const writeConfig = (weights: number[], extra = '') =>
    writeFileSync(
      config,
      `services:\n  - address: ${vip}:${port}\n    scheduler: wrr\n    realServers:\n${servers.map((s, i) => `      - { address: "127.0.0.1:${s.port}", method: nat, weight: ${weights[i]} }\n`).join('')}${extra}`,
    );

  before(async () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/ensure-deps.mjs')], { cwd: ROOT, stdio: 'ignore' });
    for (const s of servers) await s.start();
    writeConfig([3, 2, 1]);
    vsd = spawn(process.execPath, [join(ROOT, 'bin/vsd.js'), '--config', config, '--socket', socket, '--log-level', 'warn'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    vsd.stderr!.on('data', (d) => (vsdErr += d));
    for (let k = 0; k < 100; k++) {
      if (vsadm('-L', '-n').status === 0) break;
      await sleep(100);
    }
    await sleep(200); // the proxy plane's listeners
  });

  after(async () => {
    if (vsd.exitCode === null) {
      vsd.kill('SIGTERM');
      await new Promise((r) => vsd.once('exit', r));
    }
    for (const s of servers) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('wrr 3:2:1 over 60 connections, counted as ipvsadm counts them', async () => {
    const got: Record<string, number> = {};
    for (let k = 0; k < 60; k++) {
      const who = await get(vip, port);
      got[who] = (got[who] ?? 0) + 1;
    }
    assert.deepEqual(got, { rs1: 30, rs2: 20, rs3: 10 });
    const stats = vsadm('-L', '-n', '--stats').stdout;
    assert.match(stats, new RegExp(`TCP  ${vip.replaceAll('.', '\\.')}:${port}\\s+60 `));
    const list = vsadm('-L', '-n', '-t', `${vip}:${port}`);
    assert.equal(list.status, 0, vsdErr);
    assert.match(list.stdout, new RegExp(`-> 127\\.0\\.0\\.1:${servers[0]!.port}\\s+Masq\\s+3\\s+0\\s+30`));
  });

  test('weight 0 drains: a running transfer completes, new connections go elsewhere', async () => {
    const h = hold(vip, port);
    const owner = await h.first;
    const s = servers.find((x) => x.name === owner)!;
    assert.equal(vsadm('-e', '-t', `${vip}:${port}`, '-r', `127.0.0.1:${s.port}`, '-m', '-w', '0').status, 0);
    for (let k = 0; k < 12; k++) assert.notEqual(await get(vip, port), owner);
    s.release();
    assert.match(await h.done, /done/);
    assert.equal(vsadm('-e', '-t', `${vip}:${port}`, '-r', `127.0.0.1:${s.port}`, '-m', '-w', String(3 - servers.indexOf(s))).status, 0);
  });

  test('persistence with a netmask: one client network, one real server', async () => {
    const svc = `${vip}:${port + 1}`;
    assert.equal(vsadm('-A', '-t', svc, '-s', 'rr', '-p', '60', '-M', '255.255.255.0').status, 0);
    for (const s of servers) assert.equal(vsadm('-a', '-t', svc, '-r', `127.0.0.1:${s.port}`, '-m').status, 0);
    await sleep(200);
    const a = new Set<string>();
    for (let k = 2; k < 8; k++) a.add(await get(vip, port + 1, '/', `127.0.42.${k}`));
    assert.equal(a.size, 1);
    const b = await get(vip, port + 1, '/', '127.0.43.2');
    assert.notEqual(b, [...a][0]);
    const conns = vsadm('-L', '-c', '-n').stdout;
    assert.match(conns, /TCP \S+\s+ASSURED\s+127\.0\.42\.0:0\s/); // the template, assured once a connection was established
    assert.equal(vsadm('-D', '-t', svc).status, 0);
  });

  test('thresholds: a real server at its upper threshold takes no new connections', async () => {
    const svc = `${vip}:${port + 2}`;
    assert.equal(vsadm('-A', '-t', svc, '-s', 'rr').status, 0);
    assert.equal(vsadm('-a', '-t', svc, '-r', `127.0.0.1:${servers[0]!.port}`, '-m', '-x', '2').status, 0);
    assert.equal(vsadm('-a', '-t', svc, '-r', `127.0.0.1:${servers[1]!.port}`, '-m').status, 0);
    await sleep(200);
    const held = [hold(vip, port + 2), hold(vip, port + 2), hold(vip, port + 2), hold(vip, port + 2)];
    const firsts = await Promise.all(held.map((h) => h.first));
    assert.equal(firsts.filter((x) => x === 'rs1').length, 2);
    assert.match(vsadm('-L', '-n', '--thresholds', '-t', svc).stdout, /2\s+0\s+2\s+0/);
    for (let k = 0; k < 4; k++) assert.equal(await get(vip, port + 2), 'rs2');
    servers[0]!.release();
    servers[1]!.release();
    await Promise.all(held.map((h) => h.done));
    assert.equal(vsadm('-D', '-t', svc).status, 0);
  });

  test('UDP: every datagram of one socket reaches one real server until the timeout expires', async () => {
    const echo = await Promise.all(
      ['u1', 'u2'].map(
        (name) =>
          new Promise<{ sock: dgram.Socket; port: number }>((resolve) => {
            const sock = dgram.createSocket('udp4');
            sock.on('message', (_m, r) => sock.send(`${name}`, r.port, r.address));
            sock.bind(0, '127.0.0.1', () => resolve({ sock, port: sock.address().port }));
          }),
      ),
    );
    const svc = `${vip}:${port + 3}`;
    assert.equal(vsadm('-A', '-u', svc, '-s', 'rr').status, 0);
    for (const e of echo) assert.equal(vsadm('-a', '-u', svc, '-r', `127.0.0.1:${e.port}`, '-m').status, 0);
    assert.equal(vsadm('--set', '0', '0', '2').status, 0);
    await sleep(200);
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const ask = () =>
      new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no UDP reply')), 2000);
        client.once('message', (m, rinfo) => {
          clearTimeout(t);
          assert.equal(`${rinfo.address}:${rinfo.port}`, `${vip}:${port + 3}`); // from the virtual address
          resolve(m.toString());
        });
        client.send('hi', port + 3, vip);
      });
    const first = await ask();
    for (let k = 0; k < 5; k++) assert.equal(await ask(), first);
    await sleep(3000); // the entry expires (UDP timeout 2 s)
    assert.notEqual(await ask(), first); // rr moved on
    client.close();
    for (const e of echo) e.sock.close();
    assert.equal(vsadm('--set', '0', '0', '300').status, 0);
    assert.equal(vsadm('-D', '-u', svc).status, 0);
  });

  test('-S output fed to -R reproduces the table', () => {
    const saved = vsadm('-S', '-n');
    assert.equal(saved.status, 0);
    assert.equal(vsadm('-C').status, 0);
    assert.equal(vsadm('-S', '-n').stdout, '');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/vsadm.js'), '-R'], { env, input: saved.stdout, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(vsadm('-S', '-n').stdout, saved.stdout);
  });

  test('vsadm errors from a live daemon are ipvsadm\'s', () => {
    const r1 = vsadm('-A', '-t', `${vip}:${port}`);
    assert.deepEqual([r1.status, r1.stderr], [255, 'Service already exists\n']);
    const r2 = vsadm('-a', '-t', `${vip}:${port + 9}`, '-r', '127.0.0.1:1');
    assert.deepEqual([r2.status, r2.stderr], [255, 'Service not defined\n']);
    const r3 = vsadm('-L', '-n', '-t', `${vip}:${port + 9}`);
    assert.deepEqual([r3.status, r3.stderr], [1, 'No such service\n']);
    const r4 = vsadm('-n', '-L');
    assert.equal(r4.status, 255);
  });

  test('reload under load: SIGHUP with changed weights and a new service, no failed request', async () => {
    // The table as the config says again (the earlier tests edited it through vsadm).
    writeConfig([3, 2, 1]);
    vsd.kill('SIGHUP');
    await sleep(300);
    let failed = 0;
    let ok = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        try {
          await get(vip, port);
          ok++;
        } catch {
          failed++;
        }
      }
    })();
    for (let k = 0; k < 6; k++) {
      writeConfig(k % 2 ? [3, 2, 1] : [1, 1, 5], k % 2 ? '' : `  - address: ${vip}:${port + 4}\n    realServers: [{ address: "127.0.0.1:${servers[0]!.port}" }]\n`);
      vsd.kill('SIGHUP');
      await sleep(250);
    }
    running = false;
    await load;
    assert.equal(failed, 0);
    assert.ok(ok > 20, `only ${ok} requests`);
  });

  test('SIGTERM stops vsd cleanly and removes its socket', async () => {
    vsd.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => vsd.once('exit', (c) => r(c)));
    assert.equal(code, 0, vsdErr);
    const r = vsadm('-L', '-n');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /cannot reach vsd/);
  });
});
