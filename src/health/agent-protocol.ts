// What vsagent (the load agent on each real server) reports, and how the director asks for it.
//
// HTTP:  GET /load  →  200, application/json, one AgentReport
// UDP:   a datagram "vsagent load\n" (any content is accepted)  →  one datagram, an AgentReport
//
//   { "agent": "vsagent", "version": 1, "host": "rs1", "time": 1732530000000,
//     "ncpu": 4, "cpu": 0.23, "loadavg": [0.4, 0.3, 0.2], "memory": 0.61,
//     "connections": 112, "disk": 0.05, "custom": 0.4 }
//
// cpu, memory and disk are fractions (0..1: busy CPU time, used memory, busiest disk's busy
// time) over the agent's last sampling interval; connections counts established TCP connections
// (to the ports the agent was told to watch); custom is the first number printed by the agent's
// custom command (or null). The director treats every field as untrusted input.

import { request } from 'node:http';
import { createSocket } from 'node:dgram';

export const AGENT_PROTOCOL_VERSION = 1;
export const AGENT_DEFAULT_PORT = 3262;
export const AGENT_PATH = '/load';
export const AGENT_UDP_REQUEST = 'vsagent load\n';
/** Largest report accepted (a real one is ~300 bytes). */
const MAX_REPORT_BYTES = 64 * 1024;

export interface AgentReport {
  agent: string;
  version: number;
  host?: string;
  time?: number;
  ncpu?: number;
  cpu?: number;
  loadavg?: [number, number, number];
  memory?: number;
  connections?: number;
  disk?: number;
  custom?: number | null;
}

function num(x: unknown, lo: number, hi: number): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x >= lo && x <= hi ? x : undefined;
}

/** Validate a report; throws with the reason when it is not one. */
export function parseReport(text: string): AgentReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('agent report is not JSON');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('agent report is not an object');
  const o = raw as Record<string, unknown>;
  if (typeof o.version !== 'number' || o.version < 1) throw new Error('agent report has no version');
  const r: AgentReport = { agent: typeof o.agent === 'string' ? o.agent.slice(0, 64) : 'unknown', version: o.version };
  if (typeof o.host === 'string') r.host = o.host.slice(0, 255);
  const time = num(o.time, 0, Number.MAX_SAFE_INTEGER);
  if (time !== undefined) r.time = time;
  const ncpu = num(o.ncpu, 1, 1 << 20);
  if (ncpu !== undefined) r.ncpu = ncpu;
  const cpu = num(o.cpu, 0, 1);
  if (cpu !== undefined) r.cpu = cpu;
  if (Array.isArray(o.loadavg) && o.loadavg.length === 3 && o.loadavg.every((x) => num(x, 0, 1e6) !== undefined)) r.loadavg = o.loadavg as [number, number, number];
  const memory = num(o.memory, 0, 1);
  if (memory !== undefined) r.memory = memory;
  const connections = num(o.connections, 0, 1e9);
  if (connections !== undefined) r.connections = connections;
  const disk = num(o.disk, 0, 1);
  if (disk !== undefined) r.disk = disk;
  if (o.custom === null) r.custom = null;
  else {
    const custom = num(o.custom, -1e9, 1e9);
    if (custom !== undefined) r.custom = custom;
  }
  return r;
}

export interface PollResult {
  report: AgentReport;
  /** Round-trip time of the poll, ms (the director's response-time indicator). */
  rttMs: number;
}

/** Ask an agent for its report over HTTP or UDP; rejects on timeout or a bad answer. */
export function pollAgent(host: string, port: number, protocol: 'http' | 'udp', timeoutMs: number): Promise<PollResult> {
  return protocol === 'udp' ? pollUdp(host, port, timeoutMs) : pollHttp(host, port, timeoutMs);
}

function pollHttp(host: string, port: number, timeoutMs: number): Promise<PollResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, r?: PollResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    const req = request({ host, port, path: AGENT_PATH, method: 'GET', agent: false, headers: { accept: 'application/json', connection: 'close' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new Error(`agent answered HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_REPORT_BYTES) finish(new Error('agent report too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        try {
          finish(null, { report: parseReport(Buffer.concat(chunks).toString('utf8')), rttMs: performance.now() - t0 });
        } catch (e) {
          finish(e as Error);
        }
      });
      res.on('error', (e) => finish(e));
    });
    const timer = setTimeout(() => finish(new Error(`agent did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => finish(e));
    req.end();
  });
}

function pollUdp(host: string, port: number, timeoutMs: number): Promise<PollResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const finish = (err: Error | null, r?: PollResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // already closed
      }
      if (err) reject(err);
      else resolve(r!);
    };
    const timer = setTimeout(() => finish(new Error(`agent did not answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (e) => finish(e));
    sock.on('message', (msg) => {
      try {
        finish(null, { report: parseReport(msg.subarray(0, MAX_REPORT_BYTES).toString('utf8')), rttMs: performance.now() - t0 });
      } catch (e) {
        finish(e as Error);
      }
    });
    sock.connect(port, host, () => {
      sock.send(AGENT_UDP_REQUEST, (e) => {
        if (e) finish(e);
      });
    });
  });
}
