// The control endpoints: bad requests get an error that names the problem and change nothing;
// the HTTP API refuses requests without the token and foreign Host names.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/client.js';
import { LocalApi } from '../../src/control/local-api.js';
import { ControlServer } from '../../src/control/server.js';
import { IpvsError } from '../../src/core/errors.js';
import { makeDirector } from '../helpers/director.js';

const silent = { info() {}, warn() {}, error() {} };
const TOKEN = 'test-token-0123456789abcdef';

describe('control server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-ctl-'));
  const sock = join(dir, 'vsd.sock');
  const { d } = makeDirector();
  const api = new LocalApi(d);
  const dispatch = (op: string, args: unknown[]) => (api as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op]!.apply(api, args);
  const server = new ControlServer(dispatch, silent);
  let httpPort = 0;

  before(async () => {
    await server.listenUnix(sock);
    httpPort = (await server.listenHttp('127.0.0.1', 0, TOKEN)).port;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Send raw lines, collect as many reply lines. */
  function raw(lines: string[]): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const s = createConnection(sock);
      let buf = '';
      const out: unknown[] = [];
      s.on('data', (c) => {
        buf += c.toString();
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          out.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
        }
        if (out.length === lines.length) {
          s.end();
          resolve(out);
        }
      });
      s.on('error', reject);
      s.write(lines.map((l) => `${l}\n`).join(''));
    });
  }

  test('the socket is private to its owner (mode 0600)', () => {
    assert.equal(statSync(sock).mode & 0o777, 0o600);
  });

  test('malformed JSON, unknown operations and bad arguments are refused with a reason', async () => {
    const replies = (await raw([
      '{not json',
      '{"id":2,"op":"dropTables"}',
      '{"id":3,"op":"addService","args":[{"af":4}]}',
      '{"id":4,"op":"addService","args":"nope"}',
      '{"id":5,"op":"addDest","args":[{"af":4,"protocol":6,"addr":"198.18.0.1","port":80,"fwmark":0},{"af":4,"addr":"198.19.0.2","port":99999,"connFlags":0,"weight":1,"uThreshold":0,"lThreshold":0}]}',
      '[1,2,3]',
    ])) as { id: number; ok: boolean; error: { errno: string; message: string } }[];
    assert.ok(replies.every((r) => !r.ok));
    assert.match(replies[0]!.error.message, /malformed JSON/);
    assert.match(replies[1]!.error.message, /unknown operation "dropTables"/);
    assert.match(replies[2]!.error.message, /addService: argument 1\.protocol/);
    assert.match(replies[3]!.error.message, /"args" must be an array/);
    assert.match(replies[4]!.error.message, /argument 2\.port/);
    assert.equal(d.table.size, 0);
  });

  test('a client gets kernel errors as IpvsError with the errno', async () => {
    const c = await ControlClient.connect(sock);
    try {
      const key = { af: 4 as const, protocol: 6, addr: '198.18.0.1', port: 80, fwmark: 0 };
      await c.addService({ ...key, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff });
      await assert.rejects(c.addService({ ...key, schedName: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff }), (e: unknown) => e instanceof IpvsError && e.errno === 'EEXIST');
      assert.equal((await c.getServices()).length, 1);
      await c.delService(key);
    } finally {
      c.close();
    }
  });

  function http(path: string, opts: { method?: string; token?: string; host?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: httpPort,
          path,
          method: opts.method ?? 'GET',
          headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), host: opts.host ?? `127.0.0.1:${httpPort}` },
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  test('HTTP API: no token, wrong token → 401; right token → data', async () => {
    assert.equal((await http('/api/v1/services')).status, 401);
    assert.equal((await http('/api/v1/services', { token: 'wrong-token-0123456789abc' })).status, 401);
    const ok = await http('/api/v1/services', { token: TOKEN });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { id: 0, ok: true, result: [] });
  });

  test('HTTP API: calls go through the same checks; a foreign Host is refused', async () => {
    const bad = await http('/api/v1/call', { method: 'POST', token: TOKEN, body: '{"op":"setTimeouts","args":[{"tcp":"x"}]}' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /setTimeouts: argument 1\.tcp/);
    const good = await http('/api/v1/call', { method: 'POST', token: TOKEN, body: '{"op":"setTimeouts","args":[{"tcp":1000,"tcpfin":0,"udp":0}]}' });
    assert.equal(good.status, 200);
    assert.equal(d.getTimeouts().tcp, 1000);
    assert.equal((await http('/api/v1/services', { token: TOKEN, host: 'evil.example:80' })).status, 421);
    assert.equal((await http('/nope', { token: TOKEN })).status, 404);
  });

  test('a second server on the same socket is refused while the first answers', async () => {
    const other = new ControlServer(dispatch, silent);
    await assert.rejects(other.listenUnix(sock), /another vsd is already running/);
  });
});
