// The vsadm program itself: a separate process talking to a control socket, as installed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ControlServer } from '../../../src/control/server.js';
import { newApi } from './harness.js';

const ENTRY = new URL('../../../src/cli/vsadm.ts', import.meta.url).pathname;
const ROOT = new URL('../../../', import.meta.url).pathname;

function run(argv0: string, args: string[], env: Record<string, string>, stdin = ''): Promise<{ out: string; err: string; status: number | null }> {
  const script = `import { main } from ${JSON.stringify(ENTRY)}; process.exitCode = await main(${JSON.stringify(args)}, ${JSON.stringify(argv0)});`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (status) => resolve({ out, err, status }));
    child.stdin.end(stdin);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'vsadm-entry-'));
const socket = join(dir, 'vsd.sock');
const { api } = newApi();
const calls = api as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
const server = new ControlServer((op, args) => calls[op]!.apply(api, args), { info() {}, warn() {}, error() {} });

before(() => server.listenUnix(socket));
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('commands, -R from stdin and listings go through the socket', async () => {
  const env = { TSVS_SOCKET: socket };
  assert.deepEqual(await run('ipvsadm', ['-A', '-t', '10.0.0.1:80', '-s', 'rr'], env), { out: '', err: '', status: 0 });
  assert.deepEqual(await run('ipvsadm', ['-R'], env, '-a -t 10.0.0.1:80 -r 192.168.1.1 -m\n-A -t 10.0.0.1:80\n'), { out: '', err: 'Service already exists\n', status: 255 });
  const r = await run('ipvsadm', ['-L', '-n'], env);
  assert.equal(
    r.out,
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
      'TCP  10.0.0.1:80 rr\n' +
      `  -> ${'192.168.1.1:80'.padEnd(28)} Masq    1      0          0         \n`,
  );
  assert.equal(r.status, 0);
});

test('no daemon to talk to', async () => {
  const missing = join(dir, 'nobody.sock');
  assert.deepEqual(await run('ipvsadm', ['-L', '-n'], { TSVS_SOCKET: missing }), {
    out: '',
    err: `Can't initialize ipvs: ENOENT on ${missing}\nAre you sure that IP Virtual Server is built in the kernel or as module?\n`,
    status: 2,
  });
  assert.deepEqual(await run('vsadm', ['-L', '-n'], { TSVS_SOCKET: missing }), { out: '', err: `vsadm: cannot reach vsd (ENOENT on ${missing}): is vsd running?\n`, status: 2 });
});
