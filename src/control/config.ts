// vsd's declarative configuration (YAML or JSON; JSON is read as YAML 1.2 so errors carry a
// line number either way). The file describes the whole desired state: virtual services with
// their real servers, timeouts, sysctls, and the daemon's own settings. Loading never half
// applies: the file is parsed and validated completely, then applied by difference.
//
// See docs/config.md for the full reference.

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { IpAddr } from '../core/addr.js';
import type { DesiredService, DesiredTable } from '../core/apply.js';
import {
  FWD_DROUTE,
  FWD_MASQ,
  FWD_PROXY,
  FWD_TUNNEL,
  INT_MAX,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPVS_SVC_PERSISTENT_TIMEOUT,
  MAX_PERSISTENT_TIMEOUT,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
  SVC_F_SCHED3,
  TUN_F_CSUM,
  TUN_F_REMCSUM,
  TUN_TYPE_GRE,
  TUN_TYPE_GUE,
  TUN_TYPE_IPIP,
} from '../core/constants.js';
import type { DestSpec } from '../core/model.js';
import { defaultSysctls } from '../core/sysctl.js';

/** "addr:port", "[v6]:port" → parts; null when malformed. */
export function parseHostPort(text: string): { addr: IpAddr; port: number } | null {
  let host: string;
  let port: string;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (m) {
    host = m[1]!;
    port = m[2]!;
  } else {
    const i = text.lastIndexOf(':');
    if (i < 0 || text.indexOf(':') !== i) return null;
    host = text.slice(0, i);
    port = text.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return null;
  const addr = IpAddr.tryParse(host);
  return addr ? { addr, port: Number(port) } : null;
}

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: 'expected "address:port" (IPv6 as "[address]:port")' });

/** Forwarding method names accepted in configs, and their FWD_* values. */
export const METHODS: Record<string, number> = {
  nat: FWD_MASQ,
  masq: FWD_MASQ,
  masquerading: FWD_MASQ,
  dr: FWD_DROUTE,
  route: FWD_DROUTE,
  gatewaying: FWD_DROUTE,
  direct: FWD_DROUTE,
  tun: FWD_TUNNEL,
  tunnel: FWD_TUNNEL,
  ipip: FWD_TUNNEL,
  proxy: FWD_PROXY,
};

const realServerSchema = z
  .object({
    address: hostPort,
    method: z.enum(Object.keys(METHODS) as [string, ...string[]]).default('nat'),
    weight: z.number().int().min(0).max(INT_MAX).default(1),
    upperThreshold: z.number().int().min(0).max(INT_MAX).default(0),
    lowerThreshold: z.number().int().min(0).max(INT_MAX).default(0),
    tunnel: z
      .object({
        type: z.enum(['ipip', 'gue', 'gre']).default('ipip'),
        port: z.number().int().min(1).max(65535).optional(),
        checksum: z.enum(['none', 'csum', 'remcsum']).default('none'),
      })
      .strict()
      .optional(),
    /** Health checks of this real server (used by the health checker). */
    check: z.unknown().optional(),
  })
  .strict();

const serviceSchema = z
  .object({
    protocol: z.enum(['tcp', 'udp', 'sctp']).default('tcp'),
    address: hostPort.optional(),
    fwmark: z.number().int().min(1).max(4294967295).optional(),
    family: z.enum(['ipv4', 'ipv6']).optional(),
    scheduler: z.string().min(1).max(15).default('wlc'),
    persistent: z.union([z.boolean(), z.number().int().min(1).max(MAX_PERSISTENT_TIMEOUT)]).optional(),
    netmask: z.union([z.string(), z.number().int().min(1).max(128)]).optional(),
    ops: z.boolean().default(false),
    schedFlags: z.array(z.enum(['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'])).default([]),
    pe: z.string().max(15).optional(),
    proxyProtocol: z.enum(['none', 'v1', 'v2']).default('none'),
    realServers: z.array(realServerSchema).default([]),
    /** Health-check settings for the service (quorum, sorry server, …). */
    health: z.unknown().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!!s.address === !!s.fwmark) ctx.addIssue({ code: 'custom', message: 'a service has either "address" or "fwmark"', path: ['address'] });
    if (s.fwmark && s.protocol !== 'tcp') ctx.addIssue({ code: 'custom', message: 'a fwmark service has no protocol', path: ['protocol'] });
    for (const f of s.schedFlags) {
      if ((f.startsWith('sh-') && s.scheduler !== 'sh') || (f.startsWith('mh-') && s.scheduler !== 'mh')) {
        ctx.addIssue({ code: 'custom', message: `scheduler flag ${f} needs scheduler ${f.slice(0, 2)}`, path: ['schedFlags'] });
      }
    }
  });

const configSchema = z
  .object({
    services: z.array(serviceSchema).default([]),
    timeouts: z
      .object({ tcp: z.number().int().min(0).max(MAX_PERSISTENT_TIMEOUT).default(0), tcpfin: z.number().int().min(0).max(MAX_PERSISTENT_TIMEOUT).default(0), udp: z.number().int().min(0).max(MAX_PERSISTENT_TIMEOUT).default(0) })
      .strict()
      .optional(),
    sysctl: z.record(z.string(), z.union([z.number(), z.array(z.number())])).default({}),
    control: z
      .object({
        socket: z.string().optional(),
        http: z.object({ listen: hostPort.default('127.0.0.1:9500'), token: z.string().min(16).optional(), tokenFile: z.string().optional() }).strict().optional(),
      })
      .strict()
      .default({}),
    proxy: z
      .object({
        enabled: z.boolean().default(true),
        relay: z.enum(['auto', 'native', 'js']).default('auto'),
        /** How soon a listener that could not bind (address not here yet, port busy) is retried. */
        retrySeconds: z.number().min(0.05).max(3600).default(5),
      })
      .strict()
      .default({ enabled: true, relay: 'auto', retrySeconds: 5 }),
    log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).strict().default({ level: 'info' }),
    drainSeconds: z.number().min(0).max(3600).default(0),
    /** Sections owned by later parts of vsd (packet plane, health, metrics, web, sync). */
    packet: z.unknown().optional(),
    health: z.unknown().optional(),
    metrics: z.unknown().optional(),
    web: z.unknown().optional(),
    procDir: z.string().optional(),
    sync: z.unknown().optional(),
  })
  .strict();

export type Config = z.infer<typeof configSchema> & {
  /** Where the config came from, and the line/column of a path in it (for extensions' errors). */
  readonly source?: ConfigSource;
};

export interface ConfigSource {
  file: string;
  locate(path: (string | number)[]): { line: number; col: number };
}

/** An error about a config path, with its file and line (extensions validate their sections so). */
export function configErrorAt(cfg: Config, path: (string | number)[], problem: string): ConfigError {
  const src = cfg.source;
  const pos = src ? src.locate(path) : { line: 0, col: 0 };
  return new ConfigError(src?.file ?? '<config>', pos.line, pos.col, `${path.join('.')}: ${problem}`);
}
export type ServiceConfig = z.infer<typeof serviceSchema>;

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly problem: string,
  ) {
    super(`${file}${line ? `:${line}:${column}` : ''}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Parse and validate a config text. Throws ConfigError naming the file, line and problem. */
export function parseConfig(text: string, file = '<config>'): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new ConfigError(file, pos.line, pos.col, e.message.split('\n')[0]!);
  }
  const raw = doc.toJS() ?? {};
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path as (string | number)[];
    // Walk up to the nearest node that exists to point at its line.
    let node: unknown = null;
    for (let n = path.length; n >= 0 && !node; n--) node = doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const pos = range ? lc.linePos(range[0]) : { line: 0, col: 0 };
    const where = path.length ? `${path.join('.')}: ` : '';
    throw new ConfigError(file, pos.line, pos.col, `${where}${issue.message}`);
  }
  const locate = (path: (string | number)[]) => {
    let node: unknown = null;
    for (let n = path.length; n >= 0 && !node; n--) node = doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? lc.linePos(range[0]) : { line: 0, col: 0 };
  };
  const cfg: Config = r.data;
  Object.defineProperty(cfg, 'source', { value: { file, locate }, enumerable: false });
  // sysctls are checked against the core's own table of names and ranges.
  const known = defaultSysctls();
  for (const k of Object.keys(cfg.sysctl)) {
    if (!(k in known)) {
      const node = doc.getIn(['sysctl', k], true) as { range?: [number, number, number] } | undefined;
      const pos = node?.range ? lc.linePos(node.range[0]) : { line: 0, col: 0 };
      throw new ConfigError(file, pos.line, pos.col, `sysctl.${k}: unknown sysctl`);
    }
  }
  return cfg;
}

export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, 0, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, path);
}

const PROTO = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, sctp: IPPROTO_SCTP } as const;
const SCHED_FLAG_BITS: Record<string, number> = {
  'flag-1': SVC_F_SCHED1,
  'flag-2': SVC_F_SCHED2,
  'flag-3': SVC_F_SCHED3,
  'sh-fallback': SVC_F_SCHED1,
  'sh-port': SVC_F_SCHED2,
  'mh-fallback': SVC_F_SCHED1,
  'mh-port': SVC_F_SCHED2,
};

/** The service part of a config as the table it describes. */
export function desiredTable(cfg: Config): DesiredTable {
  const services: DesiredService[] = cfg.services.map((s) => serviceToDesired(s));
  const t = cfg.timeouts;
  return { services, ...(t ? { timeouts: { tcp: t.tcp, tcpfin: t.tcpfin, udp: t.udp } } : {}) };
}

export function serviceToDesired(s: ServiceConfig): DesiredService {
  const hp = s.address ? parseHostPort(s.address)! : null;
  const af: 4 | 6 = hp ? hp.addr.family : s.family === 'ipv6' ? 6 : 4;
  let flags = 0;
  let timeout = 0;
  if (s.persistent !== undefined && s.persistent !== false) {
    flags |= SVC_F_PERSISTENT;
    timeout = s.persistent === true ? IPVS_SVC_PERSISTENT_TIMEOUT : s.persistent;
  }
  if (s.ops) flags |= SVC_F_ONEPACKET;
  for (const f of s.schedFlags) flags |= SCHED_FLAG_BITS[f]!;
  let netmask = af === 4 ? 0xffffffff : 128;
  if (s.netmask !== undefined) {
    if (af === 4) {
      const m = typeof s.netmask === 'number' ? prefixToMask(s.netmask) : IpAddr.tryParse(s.netmask);
      if (m === null || (typeof m !== 'number' && m.family !== 4)) throw new Error(`invalid IPv4 netmask ${s.netmask}`);
      netmask = typeof m === 'number' ? m : m.w0;
    } else {
      netmask = Number(s.netmask);
    }
  }
  const dests: DestSpec[] = s.realServers.map((r) => {
    const rp = parseHostPort(r.address)!;
    const method = METHODS[r.method]!;
    const tun = r.tunnel;
    return {
      af: rp.addr.family,
      addr: rp.addr.toString(),
      // As ipvsadm does: DR and tunnel real servers of address services use the service port.
      port: (method === FWD_DROUTE || method === FWD_TUNNEL) && hp ? hp.port : rp.port,
      connFlags: method,
      weight: r.weight,
      uThreshold: r.upperThreshold,
      lThreshold: r.lowerThreshold,
      tunType: tun ? { ipip: TUN_TYPE_IPIP, gue: TUN_TYPE_GUE, gre: TUN_TYPE_GRE }[tun.type] : TUN_TYPE_IPIP,
      tunPort: tun?.port ?? 0,
      tunFlags: tun ? { none: 0, csum: TUN_F_CSUM, remcsum: TUN_F_REMCSUM }[tun.checksum] : 0,
    };
  });
  return {
    af,
    protocol: s.fwmark ? IPPROTO_TCP : PROTO[s.protocol],
    addr: hp ? hp.addr.toString() : af === 4 ? '0.0.0.0' : '::',
    port: hp ? hp.port : 0,
    fwmark: s.fwmark ?? 0,
    schedName: s.scheduler,
    flags,
    timeout,
    netmask,
    peName: s.pe ?? '',
    proxyProtocol: s.proxyProtocol === 'v1' ? 1 : s.proxyProtocol === 'v2' ? 2 : 0,
    dests,
  };
}

function prefixToMask(p: number): number | null {
  if (p < 0 || p > 32) return null;
  return p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
}
