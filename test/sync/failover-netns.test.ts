// Fail-over end to end (root only): two real vsd processes in their own network namespaces on
// one bridge, syncing over an IPv6 multicast group on eth0, both started from their config's
// `sync` section; real UDP clients and servers in other namespaces. Traffic goes through the
// master's proxy plane; then the master stops and the VIP moves to the backup, whose entries
// (learnt from sync) send every flow to the real server it had — where a fresh scheduler would
// send most of them elsewhere. Addresses only from 198.18.0.0/15 and 2001:2::/48.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectApi } from '../../src/control/client.js';
import { formatDaemons } from '../../src/cli/vsadm/format.js';
import { type Netns, netnsSkipReason, type NsProcess, Topology } from '../helpers/netns.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const VIP = '198.18.0.100';
const SERVERS = ['198.18.0.21', '198.18.0.22', '198.18.0.23'];
const FLOWS = 6;

/** vsd from source (its config makes the proxy plane retry listeners quickly: the VIP moves). */
function vsdScript(args: string[]): string {
  return [`import { main } from ${JSON.stringify(`${ROOT}src/cli/vsd.ts`)};`, `process.exitCode = await main(${JSON.stringify(args)});`].join('\n');
}

/** UDP servers on each address that answer with their own address. */
const RS_SCRIPT = `
const dgram = require('node:dgram');
for (const a of ${JSON.stringify(SERVERS)}) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send('rs ' + a, r.port, r.address));
  s.bind(5300, a);
}
setTimeout(() => process.stdout.write('ready\\n'), 200);
`;

/** A client: flows from fixed source ports, 3 datagrams each, prints "port server". */
function clientScript(order: number[]): string {
  return `
const dgram = require('node:dgram');
const order = ${JSON.stringify(order)};
let done = 0;
const socks = [];
for (const i of order) {
  const s = dgram.createSocket('udp4');
  socks.push(s);
  let got = false;
  s.on('message', (m) => { if (!got) { got = true; process.stdout.write((41000 + i) + ' ' + m.toString().slice(3) + '\\n'); if (++done === order.length) process.exit(0); } });
  s.bind(41000 + i, '198.18.0.10', () => { for (let k = 0; k < 3; k++) s.send('x' + k, 53, '${VIP}'); });
}
setTimeout(() => process.exit(3), 5000);
`;
}

async function runClient(ns: Netns, order: number[]): Promise<Map<number, string>> {
  // one flow at a time would be slower; all at once keeps the order of first datagrams
  const p = ns.spawn(process.execPath, ['-e', clientScript(order)]);
  const code = await p.exited;
  assert.equal(code, 0, `client failed: ${p.stderr}${p.stdout}`);
  return new Map(
    p.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([port, srv]) => [Number(port), srv!]),
  );
}

function config(role: 'master' | 'backup'): string {
  return JSON.stringify({
    services: [{ protocol: 'udp', address: `${VIP}:53`, scheduler: 'rr', realServers: SERVERS.map((a) => ({ address: `${a}:5300`, method: 'nat' })) }],
    sync: { [role]: { interface: 'eth0', syncid: 7, group: 'ff02::51' } },
    log: { level: 'info' },
    proxy: { relay: 'js', retrySeconds: 0.1 },
  });
}

async function until<T>(f: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  for (let waited = 0; ; waited += 100) {
    const v = await f();
    if (v !== undefined) return v;
    if (waited >= ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('fail-over between two vsd processes: the backup keeps every UDP flow on its real server', { skip: netnsSkipReason(), timeout: 90_000 }, async (t) => {
  const topo = Topology.create('sync');
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-sync-'));
  const procs: NsProcess[] = [];
  t.after(async () => {
    for (const p of procs) await p.stop(1000);
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const sw = topo.namespace('sw');
  topo.bridge(sw, 'br0');
  const ns = { client: topo.namespace('client'), m: topo.namespace('master'), b: topo.namespace('backup'), rs: topo.namespace('rs') };
  for (const n of Object.values(ns)) topo.bridgePort(sw, 'br0', n, 'eth0', { offloads: true });
  topo.addr(ns.client, 'eth0', '198.18.0.10/24');
  topo.addr(ns.m, 'eth0', '198.18.0.1/24');
  topo.addr(ns.m, 'eth0', '2001:2::1/64');
  topo.addr(ns.b, 'eth0', '198.18.0.2/24');
  topo.addr(ns.b, 'eth0', '2001:2::2/64');
  for (const a of SERVERS) topo.addr(ns.rs, 'eth0', `${a}/24`);
  topo.addr(ns.m, 'eth0', `${VIP}/24`);

  const rs = ns.rs.spawn(process.execPath, ['-e', RS_SCRIPT]);
  procs.push(rs);
  await rs.waitForOutput((s) => s.includes('ready'), 10_000);

  const start = (role: 'master' | 'backup', n: Netns): { proc: NsProcess; socket: string } => {
    const cfg = join(dir, `${role}.json`);
    writeFileSync(cfg, config(role));
    const socket = join(dir, `${role}.sock`);
    const proc = n.spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', vsdScript(['--config', cfg, '--socket', socket])]);
    procs.push(proc);
    return { proc, socket };
  };
  const m = start('master', ns.m);
  const b = start('backup', ns.b);
  for (const x of [m, b]) await x.proc.waitForOutput((s) => s.includes('"extension":"sync"'), 60_000);

  // both daemons as `ipvsadm -L --daemon` shows them
  const mApi = await connectApi(m.socket);
  const bApi = await connectApi(b.socket);
  t.after(() => {
    mApi.close();
    bApi.close();
  });
  assert.equal(formatDaemons(await mApi.getDaemons()), 'master sync daemon (mcast=eth0, syncid=7, maxlen=1452, group=ff02::51, port=8848, ttl=1)\n');
  assert.equal(formatDaemons(await bApi.getDaemons()), 'backup sync daemon (mcast=eth0, syncid=7, maxlen=1452, group=ff02::51, port=8848, ttl=1)\n');

  // traffic through the master: flows 0..5 in order, rr spreads them over the three servers
  await until(async () => ((await mApi.getServices())[0] as { servedBy?: string[] }).servedBy?.length || undefined, 10_000, 'master plane listening');
  const before = await runClient(ns.client, [0, 1, 2, 3, 4, 5]);
  assert.equal(before.size, FLOWS);
  assert.equal(new Set(before.values()).size, 3);

  // the backup learns them: same real servers, state and timeout
  const view = (c: { caddr: string; cport: number; daddr: string; dport: number; state: string; timeout: number }) => `${c.caddr}:${c.cport} -> ${c.daddr}:${c.dport} ${c.state} ${c.timeout}`;
  const mConns = (await mApi.getConnections()).map(view).sort();
  assert.equal(mConns.length, FLOWS);
  const bConns = await until(
    async () => {
      const list = (await bApi.getConnections()).map(view).sort();
      return list.length === FLOWS ? list : undefined;
    },
    10_000,
    'backup entries',
  );
  assert.deepEqual(bConns, mConns);

  // fail-over: the master goes away, the VIP moves, the client forgets the old MAC
  await m.proc.stop(2000);
  ns.m.ip('addr', 'del', `${VIP}/24`, 'dev', 'eth0');
  ns.b.ip('addr', 'add', `${VIP}/24`, 'dev', 'eth0');
  ns.client.ip('neigh', 'flush', 'all');
  await until(async () => ((await bApi.getServices())[0] as { servedBy?: string[] }).servedBy?.length || undefined, 10_000, 'backup plane listening');
  // flows again, in reverse order: a scheduler starting afresh would move most of them
  const after = await runClient(ns.client, [5, 4, 3, 2, 1, 0]);
  assert.deepEqual([...after.entries()].sort(), [...before.entries()].sort());
});
