// The health sections of vsd's config: `services[].realServers[].check` (the checkers of one
// real server and its failure policy), `services[].health` (timing defaults, quorum, sorry server,
// dynamic feedback) and the top-level `health`. config.ts leaves them as unknown; they are
// validated here (HealthManager.checkConfig) with file:line errors, and resolved into the plain
// model the manager runs: every timing inherited checker → real server → service → keepalived's
// defaults, in milliseconds.
//
// See docs/health.md for the reference with examples.

import { z } from 'zod';
import { IpAddr } from '../core/addr.js';
import type { DesiredService } from '../core/apply.js';
import { FWD_DROUTE, FWD_MASQ, FWD_TUNNEL, INT_MAX } from '../core/constants.js';
import type { DestSpec, ServiceKeySpec } from '../core/model.js';
import { type Config, configErrorAt, METHODS, parseHostPort, serviceToDesired } from '../control/config.js';

// ---------------------------------------------------------------------------------------------
// Schemas (camelCase, times in seconds as keepalived's TIMER: fractions allowed)

const MAX_SECONDS = 31 * 86400;
const seconds = z.number().min(0).max(MAX_SECONDS);
const positiveSeconds = z.number().min(0.000001).max(MAX_SECONDS);
const port = z.number().int().min(1).max(65535);
const ipAddress = z.string().refine((s) => IpAddr.tryParse(s) !== null, { message: 'expected an IP address' });
const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: 'expected "address:port" (IPv6 as "[address]:port")' });

/** Timing and start-up options every level may set (a checker's own value wins). */
const timingFields = {
  delayLoop: positiveSeconds.optional(),
  connectTimeout: positiveSeconds.optional(),
  retry: z.number().int().min(0).max(1_000_000).optional(),
  delayBeforeRetry: seconds.optional(),
  warmup: seconds.optional(),
  alpha: z.boolean().optional(),
  logAllFailures: z.boolean().optional(),
};

/** Where a network checker connects (defaults: the real server's address and port). */
const connFields = {
  connectIp: ipAddress.optional(),
  connectPort: port.optional(),
  bindto: ipAddress.optional(),
  bindPort: port.optional(),
  /** 'virtual': connect to the VIP through the data plane, as clients do (DR/TUN services). */
  via: z.enum(['direct', 'virtual']).optional(),
};

const hexString = z.string().refine((s) => /^[0-9a-fA-FxX\s]*$/.test(s), { message: 'expected hex digits (spaces allowed, x as a wildcard nibble)' });
const statusCode = z.union([z.number().int().min(100).max(599), z.string().regex(/^\d{3}(\s*-\s*\d{3})?$/, 'expected a status code or a range "200-299"')]);

const urlSchema = z
  .object({
    path: z.string().min(1),
    /** MD5 of the response body, as keepalived's genhash prints it. */
    digest: z
      .string()
      .regex(/^[0-9a-fA-F]{32}$/, 'expected 32 hex digits (an MD5)')
      .optional(),
    /** Accepted status codes (default 200-299). */
    status: z.array(statusCode).min(1).optional(),
    virtualhost: z.string().min(1).optional(),
    /** A JavaScript regular expression the body must match (PCRE in keepalived). */
    regex: z.string().min(1).optional(),
    regexNoMatch: z.boolean().optional(),
  })
  .strict();

const httpFields = {
  urls: z.array(urlSchema).min(1),
  virtualhost: z.string().min(1).optional(),
  /** keepalived's http_protocol: 1.0 (default), 1.0C (1.0 with Connection: close), 1.1 */
  protocol: z.enum(['1.0', '1.0C', '1.0c', '1.1']).optional(),
  fastRecovery: z.boolean().optional(),
  /** HTTPS: send SNI (true: the virtualhost; a string: that name). */
  sni: z.union([z.boolean(), z.string().min(1)]).optional(),
  /** HTTPS: verify the server certificate (keepalived does not). */
  verifyCertificate: z.boolean().optional(),
};

const checkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('tcp'), ...timingFields, ...connFields }).strict(),
  z.object({ type: z.literal('http'), ...timingFields, ...connFields, ...httpFields }).strict(),
  z.object({ type: z.literal('https'), ...timingFields, ...connFields, ...httpFields }).strict(),
  z
    .object({
      type: z.literal('udp'),
      ...timingFields,
      ...connFields,
      payload: hexString.optional(),
      /** true: any reply; hex: the reply must match it (x = any nibble). */
      requireReply: z.union([z.boolean(), hexString]).optional(),
      minReplyLength: z.number().int().min(0).max(65535).optional(),
      maxReplyLength: z.number().int().min(0).max(65535).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('dns'),
      ...timingFields,
      ...connFields,
      query: z.enum(['A', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'AAAA', 'SRV', 'RRSIG', 'DNSKEY']).optional(),
      name: z.string().min(1).max(253).optional(),
      /** Values that must all be among the answers (addresses, names, text). */
      expect: z.array(z.string().min(1)).min(1).optional(),
    })
    .strict(),
  z.object({ type: z.literal('smtp'), ...timingFields, ...connFields, helo: z.string().min(1).optional() }).strict(),
  z
    .object({
      type: z.literal('misc'),
      ...timingFields,
      /** The command line (split like a shell would, not run by one) or its argv. */
      command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
      timeout: positiveSeconds.optional(),
      /** Exit code 2..255 sets the weight to code − 2 (keepalived's misc_dynamic). */
      dynamic: z.boolean().optional(),
      uid: z.number().int().min(0).optional(),
      gid: z.number().int().min(0).optional(),
    })
    .strict(),
]);
export type CheckerConfig = z.infer<typeof checkerSchema>;

export const INDICATORS = ['input', 'cpu', 'loadavg', 'memory', 'connections', 'response', 'disk', 'custom'] as const;
export type Indicator = (typeof INDICATORS)[number];

const feedbackSchema = z
  .object({
    enabled: z.boolean().optional(),
    /** Seconds between two weight adjustments (the LVS design suggests 5–20). */
    interval: positiveSeconds.optional(),
    agentPort: port.optional(),
    agentProtocol: z.enum(['http', 'udp']).optional(),
    /** How long to wait for an agent's report. */
    timeout: positiveSeconds.optional(),
    /** R_i of the aggregate load; normalised so they sum to 1. */
    coefficients: z.partialRecord(z.enum(INDICATORS), z.number().min(0).max(1000)).optional(),
    /** Aggregate load the loop steers to (0.95 in the LVS design). */
    target: z.number().min(0).max(100).optional(),
    /** A, the scale of one adjustment: w ← w + A·∛(target − load). */
    adjust: z.number().min(0).max(1_000_000).optional(),
    /** Weights stay within [minWeight, scale × configured weight]. */
    scale: z.number().min(1).max(1_000_000).optional(),
    minWeight: z.number().int().min(0).max(INT_MAX).optional(),
    /** Write a new weight only when it differs from the current one by more than this. */
    threshold: z.number().int().min(0).max(INT_MAX).optional(),
    /** What counts as fully loaded (1.0) for the indicators that are not fractions. */
    capacity: z
      .object({ connections: z.number().min(1).optional(), responseMs: z.number().min(0.001).optional() })
      .strict()
      .optional(),
    /** An agent that does not answer: weight 0 until it answers (LVS design) or keep the weight. */
    onAgentFailure: z.enum(['zero', 'keep']).optional(),
  })
  .strict();
export type FeedbackConfig = z.infer<typeof feedbackSchema>;

const rsCheckSchema = z
  .object({
    checkers: z.array(checkerSchema).default([]),
    ...timingFields,
    inhibitOnFailure: z.boolean().optional(),
    virtualhost: z.string().min(1).optional(),
    notifyUp: z.string().min(1).optional(),
    notifyDown: z.string().min(1).optional(),
    feedback: z
      .object({
        enabled: z.boolean().optional(),
        /** The agent's "address:port" (default: the real server's address and feedback.agentPort). */
        agent: hostPort.optional(),
        capacity: z
          .object({ connections: z.number().min(1).optional(), responseMs: z.number().min(0.001).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RsCheckConfig = z.infer<typeof rsCheckSchema>;

const serviceHealthSchema = z
  .object({
    ...timingFields,
    virtualhost: z.string().min(1).optional(),
    inhibitOnFailure: z.boolean().optional(),
    omega: z.boolean().optional(),
    quorum: z.number().int().min(1).max(4294967295).optional(),
    hysteresis: z.number().int().min(0).max(4294967295).optional(),
    quorumUp: z.string().min(1).optional(),
    quorumDown: z.string().min(1).optional(),
    sorryServer: z
      .object({
        address: hostPort,
        method: z.enum(['nat', 'masq', 'masquerading', 'dr', 'route', 'gatewaying', 'direct', 'tun', 'tunnel', 'ipip', 'proxy']).optional(),
        /** Keep it in the table at weight 0 while not needed (sorry_server_inhibit). */
        inhibit: z.boolean().optional(),
      })
      .strict()
      .optional(),
    feedback: feedbackSchema.optional(),
  })
  .strict();
export type ServiceHealthConfig = z.infer<typeof serviceHealthSchema>;

const globalHealthSchema = z
  .object({
    enabled: z.boolean().optional(),
    logAllFailures: z.boolean().optional(),
    /** Defaults for every service's feedback section. */
    feedback: feedbackSchema.optional(),
  })
  .strict();

// ---------------------------------------------------------------------------------------------
// The resolved model

export type CheckerKind = CheckerConfig['type'];

export interface ResolvedTiming {
  delayLoop: number;
  connectTimeout: number;
  retry: number;
  delayBeforeRetry: number;
  warmup: number;
  alpha: boolean;
  logAllFailures: boolean;
}

/** One checker of one real server, ready to run (times in ms). */
export interface ResolvedChecker {
  kind: CheckerKind;
  timing: ResolvedTiming;
  /** Where to connect (network checkers). */
  target: { host: string; port: number; family: 4 | 6 };
  bind?: { address?: string; port?: number };
  via: 'direct' | 'virtual';
  /** For via: virtual, the service and the real server the path must pin. */
  pin?: { service: ServiceKeySpec; dest: { af: 4 | 6; addr: string; port: number }; method: number; tunnel?: { type: number; port: number; flags: number } };
  /** For via: virtual, where to check when no path to the real server can be had. */
  directTarget?: { host: string; port: number; family: 4 | 6 };
  /** The checker's own options (urls, payload, command …), as configured. */
  options: CheckerConfig;
  /** Default Host for HTTP (url > checker > real server > service). */
  virtualhost?: string;
  /** Stable identity: same key = same probe (shared across services, kept over reloads). */
  key: string;
}

export interface ResolvedFeedback {
  interval: number;
  agentHost: string;
  agentPort: number;
  agentProtocol: 'http' | 'udp';
  timeout: number;
  coefficients: Partial<Record<Indicator, number>>;
  target: number;
  adjust: number;
  scale: number;
  minWeight: number;
  threshold: number;
  capacity: { connections: number; responseMs: number };
  onAgentFailure: 'zero' | 'keep';
}

export interface ResolvedRealServer {
  /** "<service key>|<addr>|<port>" */
  key: string;
  dest: DestSpec;
  /** keepalived's log form: [192.168.1.2]:tcp:80 */
  label: string;
  configuredWeight: number;
  inhibit: boolean;
  alpha: boolean;
  notifyUp?: string;
  notifyDown?: string;
  checkers: ResolvedChecker[];
  feedback?: ResolvedFeedback;
}

export interface ResolvedService {
  key: string;
  spec: ServiceKeySpec;
  label: string;
  method: number;
  quorum: number;
  hysteresis: number;
  quorumUp?: string;
  quorumDown?: string;
  omega: boolean;
  alpha: boolean;
  sorry?: { dest: DestSpec; label: string; inhibit: boolean };
  realServers: ResolvedRealServer[];
  /** Problems worth a warning that do not stop the config (keepalived's semantic warnings). */
  warnings: string[];
}

export interface ResolvedHealth {
  enabled: boolean;
  logAllFailures: boolean;
  services: ResolvedService[];
}

// keepalived's defaults (check_data.c / check_api.c as summarised in the spec, §2.4–2.7)
const DEFAULT_DELAY_LOOP = 60;
const DEFAULT_CONNECT_TIMEOUT = 5;
const DEFAULT_RETRY: Record<CheckerKind, number> = { tcp: 1, http: 1, https: 1, udp: 1, dns: 3, smtp: 1, misc: 0 };
const DEFAULT_DELAY_BEFORE_RETRY: Record<CheckerKind, number | 'delay_loop'> = { tcp: 1, http: 3, https: 3, udp: 1, dns: 'delay_loop', smtp: 1, misc: 1 };

export const FEEDBACK_DEFAULTS = {
  interval: 5,
  agentPort: 3262,
  agentProtocol: 'http' as const,
  timeout: 2,
  // The LVS design's example for web clusters: {input, load, disk, memory, process, response}.
  coefficients: { input: 0.1, cpu: 0.3, disk: 0.1, memory: 0.1, connections: 0.1, response: 0.3 } as Partial<Record<Indicator, number>>,
  target: 0.95,
  adjust: 5,
  scale: 10,
  minWeight: 1,
  threshold: 0,
  capacity: { connections: 1000, responseMs: 1000 },
  onAgentFailure: 'zero' as const,
};

function protoName(p: number): string {
  return p === 17 ? 'udp' : p === 132 ? 'sctp' : 'tcp';
}

/** keepalived's names: VS "[10.0.0.1]:tcp:80" or "FWM 1", RS "[192.168.1.2]:tcp:80". */
export function vsLabel(s: ServiceKeySpec): string {
  return s.fwmark ? `FWM ${s.fwmark >>> 0}` : `[${s.addr}]:${protoName(s.protocol)}:${s.port}`;
}
export function rsLabel(s: ServiceKeySpec, d: Pick<DestSpec, 'addr' | 'port'>): string {
  return `[${d.addr}]:${s.fwmark ? 'tcp' : protoName(s.protocol)}:${d.port}`;
}

/** The real server's identity inside a service (canonical address text). */
export function rsKey(serviceKey: string, addr: string, port: number): string {
  return `${serviceKey}|${IpAddr.tryParse(addr)?.toString() ?? addr}|${port}`;
}

export function serviceKeyOf(s: ServiceKeySpec): string {
  if (s.fwmark) return `fwm${s.af}:${s.fwmark >>> 0}`;
  const a = IpAddr.tryParse(s.addr)?.toString() ?? s.addr;
  return s.af === 6 ? `${protoName(s.protocol)}:[${a}]:${s.port}` : `${protoName(s.protocol)}:${a}:${s.port}`;
}

/** A `check` value in any of its short forms → the object form. */
function normalizeCheck(raw: unknown): unknown {
  if (raw === undefined || raw === null) return undefined;
  if (Array.isArray(raw)) return { checkers: raw };
  if (typeof raw === 'object' && raw !== null && 'type' in raw) return { checkers: [raw] };
  return raw;
}

/** A path in the normalised `check` → the same place in what the user wrote (short forms). */
function shortFormPath(raw: unknown, path: (string | number)[]): (string | number)[] {
  if (path[0] !== 'checkers') return path;
  if (Array.isArray(raw)) return path.slice(1);
  if (raw && typeof raw === 'object' && 'type' in raw) return path.slice(2);
  return path;
}

function zodProblem(err: z.ZodError): { path: (string | number)[]; message: string } {
  const issue = err.issues[0]!;
  return { path: issue.path as (string | number)[], message: issue.message };
}

/**
 * Validate the health sections of a config and resolve them. Throws ConfigError (file:line)
 * for the first problem found.
 */
export function resolveHealth(cfg: Config): ResolvedHealth {
  const g = globalHealthSchema.safeParse(cfg.health ?? {});
  if (!g.success) {
    const p = zodProblem(g.error);
    throw configErrorAt(cfg, ['health', ...p.path], p.message);
  }
  const global = g.data;
  const services: ResolvedService[] = [];
  cfg.services.forEach((svc, si) => {
    const h = serviceHealthSchema.safeParse(svc.health ?? {});
    if (!h.success) {
      const p = zodProblem(h.error);
      throw configErrorAt(cfg, ['services', si, 'health', ...p.path], p.message);
    }
    const sh = h.data;
    const desired: DesiredService = serviceToDesired(svc);
    const spec: ServiceKeySpec = { af: desired.af, protocol: desired.protocol, addr: desired.addr, port: desired.port, fwmark: desired.fwmark };
    const key = serviceKeyOf(spec);
    const warnings: string[] = [];
    const realServers: ResolvedRealServer[] = [];
    const method = desired.dests[0]?.connFlags ?? FWD_MASQ;
    svc.realServers.forEach((rsCfg, ri) => {
      const dest = desired.dests[ri]!;
      const r = rsCheckSchema.safeParse(normalizeCheck(rsCfg.check) ?? {});
      if (!r.success) {
        const p = zodProblem(r.error);
        throw configErrorAt(cfg, ['services', si, 'realServers', ri, 'check', ...shortFormPath(rsCfg.check, p.path)], p.message);
      }
      const rc = r.data;
      const checkers = rc.checkers.map((c, ci) => {
        const where = ['services', si, 'realServers', ri, 'check', 'checkers', ci];
        return resolveChecker(cfg, where, c, rc, sh, spec, dest);
      });
      const rsAlpha = rc.alpha ?? sh.alpha ?? false;
      const out: ResolvedRealServer = {
        key: rsKey(key, dest.addr, dest.port),
        dest,
        label: rsLabel(spec, dest),
        configuredWeight: dest.weight,
        inhibit: rc.inhibitOnFailure ?? sh.inhibitOnFailure ?? false,
        alpha: rsAlpha,
        checkers,
        ...(rc.notifyUp ? { notifyUp: rc.notifyUp } : {}),
        ...(rc.notifyDown ? { notifyDown: rc.notifyDown } : {}),
      };
      const fbCfg = sh.feedback ?? global.feedback;
      if (fbCfg && (fbCfg.enabled ?? true) && (rc.feedback?.enabled ?? true)) {
        out.feedback = resolveFeedback({ ...global.feedback, ...sh.feedback }, dest, rc.feedback);
      }
      realServers.push(out);
    });
    let quorum = sh.quorum ?? 1;
    let hysteresis = sh.hysteresis ?? 0;
    const total = realServers.reduce((n, r) => n + r.configuredWeight, 0);
    // keepalived's own corrections, with its messages (check_data.c)
    if (realServers.length && quorum > total) {
      warnings.push(`Warning - quorum ${quorum} for ${vsLabel(spec)} exceeds total weight of real servers ${total}, reducing quorum to ${total}`);
      quorum = Math.max(total, 1);
    }
    if (hysteresis >= quorum) {
      warnings.push(`Virtual server ${vsLabel(spec)}: hysteresis ${hysteresis} >= quorum ${quorum}; setting hysteresis to ${quorum - 1}`);
      hysteresis = quorum - 1;
    }
    let sorry: ResolvedService['sorry'];
    if (sh.sorryServer) {
      const hp = parseHostPort(sh.sorryServer.address)!;
      const m = sh.sorryServer.method ? METHODS[sh.sorryServer.method]! : method;
      const port = (m === FWD_DROUTE || m === FWD_TUNNEL) && !spec.fwmark ? spec.port : hp.port;
      const sdest: DestSpec = { af: hp.addr.family, addr: hp.addr.toString(), port, connFlags: m, weight: 1, uThreshold: 0, lThreshold: 0 };
      if (realServers.some((r) => rsKey(key, r.dest.addr, r.dest.port) === rsKey(key, sdest.addr, sdest.port))) {
        throw configErrorAt(cfg, ['services', si, 'health', 'sorryServer', 'address'], 'the sorry server is also a real server of this service');
      }
      sorry = { dest: sdest, label: rsLabel(spec, sdest), inhibit: sh.sorryServer.inhibit ?? false };
    }
    services.push({
      key,
      spec,
      label: vsLabel(spec),
      method,
      quorum,
      hysteresis,
      omega: sh.omega ?? false,
      alpha: sh.alpha ?? false,
      realServers,
      warnings,
      ...(sh.quorumUp ? { quorumUp: sh.quorumUp } : {}),
      ...(sh.quorumDown ? { quorumDown: sh.quorumDown } : {}),
      ...(sorry ? { sorry } : {}),
    });
  });
  return { enabled: global.enabled ?? true, logAllFailures: global.logAllFailures ?? false, services };
}

function resolveChecker(
  cfg: Config,
  where: (string | number)[],
  c: CheckerConfig,
  rc: RsCheckConfig,
  sh: ServiceHealthConfig,
  svc: ServiceKeySpec,
  dest: DestSpec,
): ResolvedChecker {
  const pick = <K extends keyof ResolvedTiming & keyof typeof timingFields>(k: K) => (c as Record<string, unknown>)[k] ?? rc[k] ?? sh[k];
  const delayLoop = (pick('delayLoop') as number | undefined) ?? DEFAULT_DELAY_LOOP;
  const dbrDefault = DEFAULT_DELAY_BEFORE_RETRY[c.type];
  const timing: ResolvedTiming = {
    delayLoop: delayLoop * 1000,
    connectTimeout: ((pick('connectTimeout') as number | undefined) ?? DEFAULT_CONNECT_TIMEOUT) * 1000,
    retry: (pick('retry') as number | undefined) ?? DEFAULT_RETRY[c.type],
    delayBeforeRetry: ((pick('delayBeforeRetry') as number | undefined) ?? (dbrDefault === 'delay_loop' ? delayLoop : dbrDefault)) * 1000,
    warmup: ((pick('warmup') as number | undefined) ?? delayLoop) * 1000,
    alpha: (pick('alpha') as boolean | undefined) ?? false,
    logAllFailures: (pick('logAllFailures') as boolean | undefined) ?? false,
  };
  const co = c as Partial<Record<keyof typeof connFields, unknown>>;
  const via = (co.via as 'direct' | 'virtual' | undefined) ?? 'direct';
  let host = (co.connectIp as string | undefined) ?? dest.addr;
  let port = (co.connectPort as number | undefined) ?? dest.port;
  let pin: ResolvedChecker['pin'];
  let directTarget: ResolvedChecker['directTarget'];
  if (c.type !== 'misc' && via === 'virtual') {
    const m = dest.connFlags & 7;
    if (m !== FWD_DROUTE && m !== FWD_TUNNEL) throw configErrorAt(cfg, [...where, 'via'], 'via: virtual is for direct-routing and tunnel real servers (NAT and proxy checks already see what clients see)');
    if (svc.fwmark && !co.connectIp) throw configErrorAt(cfg, [...where, 'via'], 'a fwmark service has no virtual address: give connectIp (and connectPort) with via: virtual');
    host = (co.connectIp as string | undefined) ?? svc.addr;
    port = (co.connectPort as number | undefined) ?? (svc.port || dest.port);
    pin = { service: svc, dest: { af: dest.af, addr: dest.addr, port: dest.port }, method: m };
    if (m === FWD_TUNNEL && dest.tunType !== undefined) pin.tunnel = { type: dest.tunType, port: dest.tunPort ?? 0, flags: dest.tunFlags ?? 0 };
    directTarget = { host: dest.addr, port: dest.port, family: dest.af };
  }
  if (c.type !== 'misc' && port === 0) throw configErrorAt(cfg, [...where, 'connectPort'], 'the real server has no port: give connectPort');
  const family = IpAddr.tryParse(host)?.family ?? 4;
  const bind = co.bindto || co.bindPort ? { ...(co.bindto ? { address: co.bindto as string } : {}), ...(co.bindPort ? { port: co.bindPort as number } : {}) } : undefined;
  if (c.type === 'udp' && c.maxReplyLength !== undefined && c.minReplyLength !== undefined && c.minReplyLength > c.maxReplyLength) {
    throw configErrorAt(cfg, [...where, 'minReplyLength'], 'minReplyLength is larger than maxReplyLength');
  }
  if ((c.type === 'http' || c.type === 'https') && c.urls) {
    c.urls.forEach((u, ui) => {
      if (u.regex) {
        try {
          new RegExp(u.regex);
        } catch (e) {
          throw configErrorAt(cfg, [...where, 'urls', ui, 'regex'], `invalid regular expression: ${(e as Error).message}`);
        }
      }
      for (const [si, s] of (u.status ?? []).entries()) {
        if (typeof s === 'string') {
          const [a, b] = s.split('-').map((x) => Number(x.trim()));
          if (a! < 100 || a! > 599 || (b !== undefined && (b < a! || b > 599))) throw configErrorAt(cfg, [...where, 'urls', ui, 'status', si], `invalid status code range ${s}`);
        }
      }
    });
  }
  const virtualhost = (c as { virtualhost?: string }).virtualhost ?? rc.virtualhost ?? sh.virtualhost;
  const resolved: Omit<ResolvedChecker, 'key'> = {
    kind: c.type,
    timing,
    target: { host: IpAddr.tryParse(host)?.toString() ?? host, port, family },
    via,
    options: c,
    ...(bind ? { bind } : {}),
    ...(pin ? { pin } : {}),
    ...(directTarget ? { directTarget } : {}),
    ...(virtualhost ? { virtualhost } : {}),
  };
  return { ...resolved, key: JSON.stringify(resolved) };
}

function resolveFeedback(f: FeedbackConfig, dest: DestSpec, rs: RsCheckConfig['feedback']): ResolvedFeedback {
  const agent = rs?.agent ? parseHostPort(rs.agent)! : null;
  const coeff = f.coefficients ?? FEEDBACK_DEFAULTS.coefficients;
  const sum = Object.values(coeff).reduce((a, b) => a + (b ?? 0), 0);
  // Σ R_i = 1 in the design; a user's weights are scaled so they do
  const coefficients: Partial<Record<Indicator, number>> = {};
  for (const [k, v] of Object.entries(coeff)) if (v && sum > 0) coefficients[k as Indicator] = v / sum;
  return {
    interval: (f.interval ?? FEEDBACK_DEFAULTS.interval) * 1000,
    agentHost: agent ? agent.addr.toString() : dest.addr,
    agentPort: agent ? agent.port : (f.agentPort ?? FEEDBACK_DEFAULTS.agentPort),
    agentProtocol: f.agentProtocol ?? FEEDBACK_DEFAULTS.agentProtocol,
    timeout: (f.timeout ?? FEEDBACK_DEFAULTS.timeout) * 1000,
    coefficients,
    target: f.target ?? FEEDBACK_DEFAULTS.target,
    adjust: f.adjust ?? FEEDBACK_DEFAULTS.adjust,
    scale: f.scale ?? FEEDBACK_DEFAULTS.scale,
    minWeight: f.minWeight ?? FEEDBACK_DEFAULTS.minWeight,
    threshold: f.threshold ?? FEEDBACK_DEFAULTS.threshold,
    capacity: {
      connections: rs?.capacity?.connections ?? f.capacity?.connections ?? FEEDBACK_DEFAULTS.capacity.connections,
      responseMs: rs?.capacity?.responseMs ?? f.capacity?.responseMs ?? FEEDBACK_DEFAULTS.capacity.responseMs,
    },
    onAgentFailure: f.onAgentFailure ?? FEEDBACK_DEFAULTS.onAgentFailure,
  };
}
