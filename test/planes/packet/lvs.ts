// Root-test helpers for the packet plane: real servers (HTTP and UDP echo, run by node inside
// their namespaces), curl and UDP clients run asynchronously in the client namespace (the plane
// runs in this process: a blocking spawnSync would stop it forwarding), and the plane itself
// attached to a topology's director namespace.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Director } from '../../../src/core/director.js';
import '../../../src/core/schedulers/index.js';
import { FWD_MASQ, IPPROTO_TCP, IPPROTO_UDP } from '../../../src/core/constants.js';
import { monotonicClock } from '../../../src/core/clock.js';
import type { DestSpec } from '../../../src/core/model.js';
import { frameIoAvailable } from '../../../src/planes/packet/frame-io.js';
import { PacketPlane, type PacketPlaneOptions } from '../../../src/planes/packet/plane.js';
import { commandExists, type LvsTopology, type Netns, netnsSkipReason, type NsProcess } from '../../helpers/netns.js';

/** Why the root tests cannot run here (undefined when they can). On CI a missing addon fails. */
export function packetSkipReason(tools: string[] = ['curl', 'nft']): string | undefined {
  const ns = netnsSkipReason();
  if (ns) return ns;
  const fio = frameIoAvailable();
  if (!fio.ok) {
    if (process.env.CI) throw new Error(fio.reason);
    return fio.reason;
  }
  for (const t of tools) if (!commandExists(t)) return `needs ${t} (apt-get install ${t === 'tshark' ? 'tshark' : t === 'nft' ? 'nftables' : t})`;
  return undefined;
}

// An HTTP server answering who it is (GET /), N bytes of a known pattern (GET /bytes/N, at an
// optional rate limit), and the length and SHA-256 of what is posted.
const HTTP_SERVER = `
const [name, port] = process.argv.slice(1);
const http = require('node:http');
const crypto = require('node:crypto');
const pattern = (n) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + 13) & 255; return b; };
const srv = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (req.method === 'POST') {
    const h = crypto.createHash('sha256'); let n = 0;
    req.on('data', (d) => { h.update(d); n += d.length; });
    req.on('end', () => res.end(name + ' ' + n + ' ' + h.digest('hex') + '\\n'));
    return;
  }
  const m = /^\\/bytes\\/(\\d+)$/.exec(u.pathname);
  if (m) {
    const body = pattern(Number(m[1]));
    const rate = Number(u.searchParams.get('rate') || 0);
    res.writeHead(200, { 'content-length': body.length, 'x-server': name });
    if (!rate) return res.end(body);
    let off = 0;
    const tick = () => { if (off >= body.length) return res.end(); const c = body.subarray(off, off + Math.ceil(rate / 20)); off += c.length; res.write(c); setTimeout(tick, 50); };
    return tick();
  }
  res.end(name + ' ' + req.socket.remoteAddress + '\\n');
});
srv.keepAliveTimeout = 1000;
srv.listen(Number(port), '::', () => process.stdout.write('ready\\n'));
`;

// DR and TUN real servers answer from the VIP: their echo sockets are bound to it (a socket on
// the wildcard address would answer from the server's own address, which the client rejects).
const UDP_ECHO = `
const [name, port, ...addrs] = process.argv.slice(1);
const dgram = require('node:dgram');
let up = 0;
for (const a of addrs) {
  const s = dgram.createSocket({ type: a.includes(':') ? 'udp6' : 'udp4', ipv6Only: a.includes(':') });
  s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from(name + ':'), m]), r.port, r.address));
  s.bind(Number(port), a, () => { if (++up === addrs.length) process.stdout.write('ready\\n'); });
}
`;

export interface Servers {
  procs: NsProcess[];
  stop(): Promise<void>;
}

/** An HTTP server (node) on every real server, on all addresses (the VIP on lo included). */
export async function httpServers(lvs: LvsTopology, port = 80): Promise<Servers> {
  const procs = lvs.servers.map((s, i) => s.ns.spawn(process.execPath, ['-e', HTTP_SERVER, `rs${i + 1}`, String(port)]));
  await Promise.all(procs.map((p) => p.waitForOutput((o) => o.includes('ready'), 10_000)));
  return { procs, stop: async () => void (await Promise.all(procs.map((p) => p.stop()))) };
}

/** A UDP echo server (node) on every real server: answers "rsN:" + the datagram. */
export async function udpEchoServers(lvs: LvsTopology, port = 5353, addrs: string[] = ['0.0.0.0', '::']): Promise<Servers> {
  const procs = lvs.servers.map((s, i) => s.ns.spawn(process.execPath, ['-e', UDP_ECHO, `rs${i + 1}`, String(port), ...addrs]));
  await Promise.all(procs.map((p) => p.waitForOutput((o) => o.includes('ready'), 10_000)));
  return { procs, stop: async () => void (await Promise.all(procs.map((p) => p.stop()))) };
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command in a namespace without blocking this thread; kills it after timeoutMs. */
export function runAsync(ns: Netns, cmd: string, args: string[], timeoutMs = 20_000, input?: Buffer): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 65536) err += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (input) child.stdin!.end(input);
  });
}

/** curl in ns: body and exit code (0 on success). */
export function curl(ns: Netns, url: string, extra: string[] = [], timeoutMs = 20_000): Promise<RunResult> {
  return runAsync(ns, 'curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '--connect-timeout', '5', ...extra, url], timeoutMs + 5000);
}

/** The pattern the HTTP server sends for /bytes/N. */
export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 13) & 255;
  return b;
}

// A UDP client: sends each argument as a datagram from one socket, prints each answer (or
// "timeout"), and reports an ICMP error as "error CODE".
const UDP_CLIENT = `
const [host, port, wait, ...msgs] = process.argv.slice(1);
const s = require('node:dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
let i = 0; let timer;
const next = () => {
  if (i >= msgs.length) { s.close(); return; }
  const m = msgs[i++];
  timer = setTimeout(() => { process.stdout.write('timeout\\n'); next(); }, Number(wait));
  s.send(m);
};
s.on('message', (m) => { clearTimeout(timer); process.stdout.write(m.toString() + '\\n'); next(); });
s.on('error', (e) => { clearTimeout(timer); process.stdout.write('error ' + e.code + '\\n'); next(); });
s.connect(Number(port), host, next);
`;

/** Sends datagrams from one socket to host:port in ns; returns one line per datagram. */
export async function udpExchange(ns: Netns, host: string, port: number, msgs: string[], waitMs = 2000): Promise<string[]> {
  const r = await runAsync(ns, process.execPath, ['-e', UDP_CLIENT, host, String(port), String(waitMs), ...msgs], waitMs * msgs.length + 10_000);
  return r.stdout.toString().trim().split('\n').filter(Boolean);
}

export interface PlaneSetup {
  director: Director;
  plane: PacketPlane;
  close(): Promise<void>;
}

/** A director and a packet plane attached to the topology's director namespace. */
export async function attachPlane(lvs: LvsTopology, opts: Partial<PacketPlaneOptions> = {}): Promise<PlaneSetup> {
  const director = new Director({ now: monotonicClock, connCapacity: 4096 });
  const d = lvs.director;
  const interfaces = d.clientIf === d.serverIf ? [d.clientIf] : [d.clientIf, d.serverIf];
  const plane = new PacketPlane(director, { interfaces, netns: d.ns.name, routeRefreshMs: 500, ...opts });
  await plane.start();
  const timer = setInterval(() => director.advance(), 50);
  return {
    director,
    plane,
    close: async () => {
      clearInterval(timer);
      await plane.close();
    },
  };
}

/** Adds a service with the given real servers (method per server) and waits for the guard. */
export async function addService(
  s: PlaneSetup,
  vip: string,
  port: number,
  dests: Array<Partial<DestSpec> & { addr: string }>,
  o: { protocol?: 'tcp' | 'udp'; sched?: string; flags?: number; timeout?: number } = {},
): Promise<{ af: 4 | 6; protocol: number; addr: string; port: number; fwmark: number }> {
  const key = { af: (vip.includes(':') ? 6 : 4) as 4 | 6, protocol: o.protocol === 'udp' ? IPPROTO_UDP : IPPROTO_TCP, addr: vip, port, fwmark: 0 };
  s.director.addService({ ...key, schedName: o.sched ?? 'rr', flags: o.flags ?? 0, timeout: o.timeout ?? 0, netmask: key.af === 4 ? 0xffffffff : 128 });
  for (const d of dests) s.director.addDest(key, { af: d.addr.includes(':') ? 6 : 4, port, connFlags: FWD_MASQ, weight: 1, uThreshold: 0, lThreshold: 0, ...d });
  await s.plane.settle();
  return key;
}

/** A scratch directory removed by the returned function. */
export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-pkt-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const VSRS = new URL('../../../src/cli/vsrs.ts', import.meta.url).pathname;

/** vsrs (from sources, through tsx) on a real server; resolves once it decapsulates. */
export async function startVsrs(ns: Netns, args: string[]): Promise<NsProcess> {
  const code = `import(${JSON.stringify(VSRS)}).then(async (m) => { process.exitCode = await m.main(${JSON.stringify(args)}); })`;
  const p = ns.spawn(process.execPath, ['--import', 'tsx', '-e', code]);
  await p.waitForOutput((o) => o.includes('decapsulating'), 15_000);
  return p;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One-arm NAT: real servers must send their replies to the (on-link) client through the director. */
export function natOneArmRoutes(lvs: LvsTopology): void {
  for (const r of lvs.servers) {
    r.ns.ip('route', 'add', `${lvs.client.v4}/32`, 'via', lvs.director.serverV4);
    r.ns.ip('-6', 'route', 'add', `${lvs.client.v6}/128`, 'via', lvs.director.serverV6);
  }
}

export interface Capture {
  file: string;
  stop(): Promise<void>;
  /** tshark -r FILE with more arguments; stdout lines. */
  read(args: string[]): Promise<string[]>;
  /** Deletes the capture file. */
  dispose(): void;
}

/** A capture on ns:ifname into a file until stop(), read back with tshark. */
export async function capture(ns: Netns, ifname: string, filter = ''): Promise<Capture> {
  const scratch = scratchDir();
  const file = join(scratch.dir, 'cap.pcap');
  // dumpcap itself (what tshark runs to capture), writing every packet out at once (-P pcap, no buffering surprises at stop).
  const p = ns.spawn('dumpcap', ['-i', ifname, '-w', file, '-q', '-P', ...(filter ? ['-f', filter] : [])]);
  const deadline = Date.now() + 10_000;
  while (!existsSync(file) && Date.now() < deadline && p.running) await sleep(50);
  await sleep(300);
  return {
    file,
    stop: async () => {
      await sleep(200);
      // SIGINT: dumpcap flushes the file and exits cleanly.
      p.signal('SIGINT');
      const t = setTimeout(() => p.signal('SIGKILL'), 5000);
      await p.exited;
      clearTimeout(t);
    },
    read: async (args) => {
      const r = await runAsync(ns, 'tshark', ['-r', file, ...args], 30_000);
      return r.stdout.toString().split('\n').filter(Boolean);
    },
    dispose: scratch.remove,
  };
}

/** Names the real server that answered (the HTTP server's first word). */
export function who(body: Buffer | string): string {
  return body.toString().split(' ')[0] ?? '';
}

// A client that keeps sending (an HTTP upload, 256 KiB every 20 ms) for up to `seconds`, and
// says how it ended: "done", "error ECONNRESET", "timeout" (stalled: megabytes not taken by the
// kernel, whose send buffer stops growing when nothing is acknowledged).
const TCP_UPLOAD = `
const [host, port, seconds] = process.argv.slice(1);
const net = require('node:net');
const s = net.connect(Number(port), host);
const chunk = Buffer.alloc(262144, 120);
const end = Date.now() + Number(seconds) * 1000;
let timer;
const finish = (why) => { clearInterval(timer); process.stdout.write(why + '\\n'); s.destroy(); process.exit(0); };
s.on('connect', () => {
  process.stdout.write('connected ' + s.localPort + '\\n');
  s.write('POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1000000000\\r\\n\\r\\n');
  timer = setInterval(() => {
    if (Date.now() > end) return finish(s.writableLength > 1048576 ? 'timeout' : 'done');
    if (s.writableLength < 2097152) s.write(chunk);
  }, 20);
});
s.on('error', (e) => finish('error ' + e.code));
`;

/** Starts an upload that runs until it ends; resolves with how it ended. */
export function tcpUpload(ns: Netns, host: string, port: number, seconds: number): { connected: Promise<number>; result: Promise<string> } {
  const p = ns.spawn(process.execPath, ['-e', TCP_UPLOAD, host, String(port), String(seconds)]);
  return {
    connected: p.waitForOutput((o) => /connected \d+/.test(o), 5000).then(() => Number(/connected (\d+)/.exec(p.stdout)![1])),
    result: p.exited.then(() => p.stdout.trim().split('\n').pop() ?? ''),
  };
}

export interface MethodContext {
  lvs: LvsTopology;
  s: PlaneSetup;
  key: { af: 4 | 6; protocol: number; addr: string; port: number; fwmark: number };
  method: number;
  /** Extra dest fields (tunnel type...). */
  dest?: Partial<DestSpec>;
}

/** Weight 0 drains: new requests avoid the server, its running transfer completes. Throws on failure. */
export async function checkDrain(ctx: MethodContext, fail: (msg: string) => never): Promise<void> {
  const { lvs, s, key, method } = ctx;
  const n = 600_000;
  const long = curl(lvs.client.ns, `http://${lvs.vip4}/bytes/${n}?rate=300000`, [], 30_000);
  await sleep(600);
  const c = s.director.connInfos().find((x) => x.vport === 80 && x.state === 'ESTABLISHED' && x.af === 4);
  if (!c) fail('the running transfer has no entry');
  const spec = (weight: number): DestSpec => ({ af: 4, addr: c.daddr, port: 80, connFlags: method, weight, uThreshold: 0, lThreshold: 0, ...ctx.dest });
  s.director.editDest(key, spec(0));
  const drainedName = `rs${lvs.servers.findIndex((x) => x.v4 === c.daddr) + 1}`;
  for (let i = 0; i < 4; i++) {
    const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
    if (r.code !== 0) fail(`request during the drain failed: ${r.stderr}`);
    if (who(r.stdout) === drainedName) fail('a new request went to the drained server');
  }
  const done = await long;
  if (done.code !== 0 || !done.stdout.equals(pattern(n))) fail(`the drained server's transfer did not complete: ${done.code} ${done.stderr}`);
  s.director.editDest(key, spec(1));
}

/** Deleting a real server follows expire_nodest_conn: 0 stalls its connections, 1 resets them. */
export async function checkDelete(ctx: MethodContext, fail: (msg: string) => never): Promise<void> {
  const { lvs, s, key, method } = ctx;
  for (const expire of [0, 1]) {
    s.director.setSysctl('expire_nodest_conn', expire);
    // An upload: the client keeps sending, so the director sees its packets after the deletion.
    const up = tcpUpload(lvs.client.ns, lvs.vip4, 80, 3);
    const cport = await up.connected;
    await sleep(400);
    const c = s.director.connInfos().find((x) => x.vport === 80 && x.cport === cport);
    if (!c) fail('running transfer without an entry');
    const t0 = Date.now();
    s.director.delDest(key, { af: 4, addr: c.daddr, port: 80 });
    const how = await up.result;
    if (expire) {
      // The entry goes; the client's next segment has none: the director resets it.
      if (how !== 'error ECONNRESET') fail(`expire_nodest_conn=1: expected a reset, got ${how}`);
      if (Date.now() - t0 > 2000) fail('expire_nodest_conn=1: the reset took more than 2 s');
    } else {
      // The entry stays until it times out; the client's segments are dropped silently.
      if (how !== 'timeout') fail(`expire_nodest_conn=0: expected a stall, got ${how}`);
      if (s.director.drops.destUnavailable === 0) fail('expire_nodest_conn=0: no drop counted');
    }
    const again = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
    if (again.code !== 0) fail(`a new request after the deletion failed: ${again.stderr}`);
    s.director.addDest(key, { af: 4, addr: c.daddr, port: 80, connFlags: method, weight: 1, uThreshold: 0, lThreshold: 0, ...ctx.dest });
  }
  s.director.setSysctl('expire_nodest_conn', 0);
}

/** The round-robin spread: six requests, each server twice, in a repeating order. */
export async function checkSpread(lvs: LvsTopology, url: string, fail: (msg: string) => never): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await curl(lvs.client.ns, url);
    if (r.code !== 0) fail(`request ${i} failed: ${r.stderr}`);
    seen.push(who(r.stdout));
  }
  const first = [...seen.slice(0, 3)].sort().join(',');
  if (first !== lvs.servers.map((_, i) => `rs${i + 1}`).join(',')) fail(`not spread over every server: ${seen.join(' ')}`);
  if (seen.slice(3).join() !== seen.slice(0, 3).join()) fail(`round robin order does not repeat: ${seen.join(' ')}`);
}
