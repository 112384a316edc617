// PROXY protocol toward real servers, both relays: the exact bytes (v1 text, v2 binary; IPv4
// and IPv6), sent before any client byte even when the server speaks first; and nginx's
// proxy_protocol listener as an independent witness when nginx is installed.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IpAddr } from '../../../src/core/addr.js';
import { loadNativeRelay, proxyHeaderV1, proxyHeaderV2 } from '../../../src/planes/proxy/index.js';
import { Harness, randomPort, randomVip, type RelayKind, sleep, until, withTimeout } from './helpers.js';

const nativeMissing = loadNativeRelay() ? false : 'native relay addon not built';
const hasNginx = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).status === 0;

/** A real server that records every byte it receives per connection, greeting first if asked. */
async function captureServer(h: Harness, host: string, greet: boolean): Promise<{ port: number; got: Buffer[][] }> {
  const got: Buffer[][] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    got.push(chunks);
    s.on('error', () => {});
    if (greet) s.write('hi\n');
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => srv.listen(0, host, () => r()));
  h.onClose(() => new Promise<void>((r) => srv.close(() => r())));
  return { port: (srv.address() as net.AddressInfo).port, got };
}

async function exchange(host: string, port: number, payload: string, waitGreeting: boolean): Promise<{ localPort: number }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const c = net.connect({ host, port, allowHalfOpen: true });
      c.on('error', reject);
      c.on('connect', () => {
        if (!waitGreeting) c.end(payload);
      });
      c.once('data', () => {
        if (waitGreeting) c.end(payload);
      });
      c.on('close', () => resolve({ localPort: (c as net.Socket & { _lp?: number })._lp ?? 0 }));
      c.on('connect', () => {
        (c as net.Socket & { _lp?: number })._lp = c.localPort;
      });
      c.resume();
    }),
    5000,
    'exchange',
  );
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((r) => {
    const c = net.connect({ host, port });
    c.on('connect', () => {
      c.destroy();
      r(true);
    });
    c.on('error', () => r(false));
  });
}

for (const relay of ['js', 'native'] as RelayKind[]) {
  describe(`PROXY protocol (${relay} relay)`, { skip: relay === 'native' && nativeMissing, timeout: 60_000 }, () => {
    for (const version of [1, 2] as const) {
      for (const v6 of [false, true]) {
        for (const greet of [false, true]) {
          it(`v${version} ${v6 ? 'IPv6' : 'IPv4'}${greet ? ', server speaks first' : ''}: exact header, then the client's bytes`, async () => {
            const h = new Harness(relay);
            try {
              const host = v6 ? '::1' : '127.0.0.1';
              const vip = v6 ? '::1' : randomVip();
              const port = randomPort();
              const key = h.service('tcp', vip, port, { proxyProtocol: version });
              const cap = await captureServer(h, host, greet);
              h.dest(key, host, cap.port);
              await h.start();
              const { localPort } = await exchange(vip, port, 'payload', greet);
              await until(() => cap.got.length === 1 && Buffer.concat(cap.got[0]!).length > 7, 3000, 'bytes at the server');
              const client = IpAddr.parse(host);
              const virt = IpAddr.parse(vip);
              const hdr = version === 1 ? proxyHeaderV1(client, localPort, virt, port) : proxyHeaderV2('stream', client, localPort, virt, port);
              assert.deepEqual(Buffer.concat(cap.got[0]!), Buffer.concat([hdr, Buffer.from('payload')]));
              if (version === 1) assert.equal(hdr.toString(), `PROXY ${v6 ? 'TCP6' : 'TCP4'} ${host} ${vip} ${localPort} ${port}\r\n`);
            } finally {
              await h.close();
            }
          });
        }
      }
    }

    it('nginx (proxy_protocol listener) sees the client address and port, v1 and v2', { skip: !hasNginx && 'nginx not installed' }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tsvs-pp-'));
      const nginxPort = await freePort();
      writeFileSync(
        join(dir, 'nginx.conf'),
        `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${nginxPort} proxy_protocol; location / { return 200 "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port\\n"; } } }
`,
      );
      const ngx: ChildProcess = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
      const h = new Harness(relay);
      try {
        for (let i = 0; !(await canConnect('127.0.0.1', nginxPort)); i++) {
          if (i > 100 || ngx.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
          await sleep(50);
        }
        for (const version of [1, 2] as const) {
          const vip = randomVip();
          const port = randomPort();
          const key = h.service('tcp', vip, port, { proxyProtocol: version });
          h.dest(key, '127.0.0.1', nginxPort);
          await h.synced();
          await h.start();
          const body = await withTimeout(
            new Promise<{ text: string; lport: number }>((resolve, reject) => {
              const c = net.connect({ host: vip, port, localAddress: '127.0.5.9' });
              let t = '';
              let lport = 0;
              c.on('connect', () => {
                lport = c.localPort!;
                c.write(`GET / HTTP/1.0\r\nHost: x\r\n\r\n`);
              });
              c.on('data', (d) => {
                t += d;
              });
              c.on('end', () => resolve({ text: t, lport }));
              c.on('error', reject);
            }),
            5000,
            'nginx answer',
          );
          assert.match(body.text, /^HTTP\/1\.1 200/);
          assert.equal(body.text.split('\r\n\r\n')[1], `127.0.5.9 ${body.lport} ${vip} ${port}\n`);
        }
      } finally {
        await h.close();
        if (ngx.pid && ngx.exitCode === null) process.kill(ngx.pid, 'SIGTERM');
        await sleep(50);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
