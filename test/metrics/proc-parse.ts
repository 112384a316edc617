// Readers of the /proc-format files, written from the kernel's formats (not from our renderer),
// so the tests can parse what tsvs wrote and compare it with the director's own snapshots.
// The address-line reader follows node_exporter's procfs rules (fields split on blanks, hex
// address:port, "->" lines with at least six fields).

import { IpAddr } from '../../src/core/addr.js';

export interface ParsedDest {
  addr: string;
  port: number;
  forward: string;
  weight: number;
  active: number;
  inactive: number;
}

export interface ParsedService {
  proto: string;
  addr: string;
  port: number;
  fwmark: number;
  sched: string;
  ops: boolean;
  persistentJiffies?: number;
  netmaskHex?: string;
  dests: ParsedDest[];
}

/** "C6120001:0050" or "[2001:0db8:...]:0050" → address text and port. */
export function parseHexAddrPort(s: string): { addr: string; port: number } {
  const m = /^\[([0-9a-f:]{39})\]:([0-9A-F]{4})$/.exec(s);
  if (m) return { addr: IpAddr.parse(m[1]!).toString(), port: Number.parseInt(m[2]!, 16) };
  const v4 = /^([0-9A-F]{8}):([0-9A-F]{4})$/.exec(s);
  if (!v4) throw new Error(`not a /proc address:port: ${JSON.stringify(s)}`);
  return { addr: IpAddr.v4(Number.parseInt(v4[1]!, 16)).toString(), port: Number.parseInt(v4[2]!, 16) };
}

export function parseIpVs(text: string): { version: string; size: number; services: ParsedService[] } {
  const lines = text.split('\n');
  const head = /^IP Virtual Server version (\S+) \(size=(\d+)\)$/.exec(lines[0]!);
  if (!head) throw new Error('bad first line');
  if (lines[1] !== 'Prot LocalAddress:Port Scheduler Flags') throw new Error('bad second line');
  if (lines[2] !== '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn') throw new Error('bad third line');
  if (lines.at(-1) !== '') throw new Error('no final newline');
  const services: ParsedService[] = [];
  for (const line of lines.slice(3, -1)) {
    const f = line.trim().split(/\s+/);
    if (f[0] === '->') {
      const { addr, port } = parseHexAddrPort(f[1]!);
      services.at(-1)!.dests.push({ addr, port, forward: f[2]!, weight: Number(f[3]), active: Number(f[4]), inactive: Number(f[5]) });
      continue;
    }
    const s: ParsedService = { proto: f[0]!, addr: '', port: 0, fwmark: 0, sched: f[2]!, ops: false, dests: [] };
    if (f[0] === 'FWM') s.fwmark = Number.parseInt(f[1]!, 16);
    else Object.assign(s, parseHexAddrPort(f[1]!));
    let k = 3;
    if (f[k] === 'ops') {
      s.ops = true;
      k++;
    }
    if (f[k] === 'persistent') {
      s.persistentJiffies = Number(f[k + 1]);
      s.netmaskHex = f[k + 2];
    }
    services.push(s);
  }
  return { version: head[1]!, size: Number(head[2]), services };
}

export interface ParsedConn {
  proto: string;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  state: string;
  expires: number;
  origin?: string;
  pe?: string;
}

function hexAddr(s: string): string {
  if (s.includes(':')) return IpAddr.parse(s).toString();
  return IpAddr.v4(Number.parseInt(s, 16)).toString();
}

/** ip_vs_conn or ip_vs_conn_sync (told apart by the header). */
export function parseIpVsConn(text: string): ParsedConn[] {
  const lines = text.split('\n');
  const sync = lines[0]!.includes('Origin');
  const out: ParsedConn[] = [];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const f = line.split(/\s+/);
    const c: ParsedConn = {
      proto: f[0]!,
      caddr: hexAddr(f[1]!),
      cport: Number.parseInt(f[2]!, 16),
      vaddr: hexAddr(f[3]!),
      vport: Number.parseInt(f[4]!, 16),
      daddr: hexAddr(f[5]!),
      dport: Number.parseInt(f[6]!, 16),
      state: f[7]!,
      expires: Number(sync ? f[9] : f[8]),
    };
    if (sync) c.origin = f[8]!;
    else if (f.length > 9) c.pe = f.slice(9).join(' ');
    out.push(c);
  }
  return out;
}

export interface ParsedStats {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
  rates: number[];
}

/** ip_vs_stats: node_exporter reads line 3 (five hex fields); the rates are on line 6. */
export function parseIpVsStats(text: string): ParsedStats {
  const lines = text.split('\n');
  const v = lines[2]!.trim().split(/\s+/).map((x) => Number.parseInt(x, 16));
  const r = lines[5]!.trim().split(/\s+/).map((x) => Number.parseInt(x, 16));
  if (v.length !== 5 || r.length !== 5) throw new Error('ip_vs_stats: expected five fields');
  return { conns: v[0]!, inpkts: v[1]!, outpkts: v[2]!, inbytes: v[3]!, outbytes: v[4]!, rates: r };
}
