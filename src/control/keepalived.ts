// keepalived.conf as a vsd config: the `virtual_server`, `virtual_server_group`, `real_server`
// and checker blocks (plus the few global_defs that concern IPVS) become the tsvs Config shape,
// health sections included. Everything else — VRRP, BFD, static routes, alerts, SNMP, script
// security, process tuning — is named in a warning with its file and line, never silently
// dropped. keepalived's own defaults and corrections apply, with its messages: a virtual server
// without `protocol` is UDP, without `lvs_method` NAT, without `lvs_sched` wlc; port 0 only for
// persistent services; non-NAT real servers use the service's port; duplicates and virtual
// servers without real servers are dropped.
//
// Syntax (keepalived's lib/parser.c): one keyword per line with its arguments, blocks in { },
// comments from # or !, "quoted" or 'quoted' strings with \ escapes, `include <glob>`
// (relative to the including file). Short blocks on one line (`TCP_CHECK { retry 2 }`) are
// accepted too.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { IpAddr } from '../core/addr.js';
import { resolveHealth } from '../health/config.js';
import { type Config, ConfigError, parseConfig } from './config.js';

export interface KeepalivedWarning {
  file: string;
  line: number;
  message: string;
}

export interface KeepalivedResult {
  config: Config;
  warnings: KeepalivedWarning[];
}

/** keepalived's format for a located message: "(file: Line n) message". */
export function formatWarning(w: KeepalivedWarning): string {
  return w.line ? `(${w.file}: Line ${w.line}) ${w.message}` : w.message;
}

// ---------------------------------------------------------------------------------------------
// Lexing and the statement tree

interface Tok {
  v: string;
  quoted: boolean;
  file: string;
  line: number;
}

interface Stmt {
  kw: string;
  args: Tok[];
  block?: Stmt[];
  /** From a block written on one line: may hold several keywords. */
  inline?: boolean;
  file: string;
  line: number;
}

const MAX_INCLUDE_DEPTH = 8;

class Lexer {
  readonly lines: Tok[][] = [];
  constructor(
    private readonly warn: (file: string, line: number, msg: string) => void,
    private readonly readFile: (path: string) => string,
  ) {}

  lexFile(path: string, depth: number, seen: Set<string>): void {
    if (depth > MAX_INCLUDE_DEPTH) throw new ConfigError(path, 0, 0, 'includes nested too deeply');
    if (seen.has(path)) throw new ConfigError(path, 0, 0, 'file includes itself');
    let text: string;
    try {
      text = this.readFile(path);
    } catch (e) {
      throw new ConfigError(path, 0, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    this.lexText(text, path, depth, new Set([...seen, path]));
  }

  lexText(text: string, file: string, depth = 0, seen = new Set<string>([file])): void {
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = i + 1;
      const toks = lexLine(raw, file, line, (m) => this.warn(file, line, m));
      if (!toks.length) return;
      if (toks[0]!.v === 'include' && !toks[0]!.quoted) {
        const pattern = toks[1]?.v;
        if (!pattern) {
          this.warn(file, line, 'include needs a file name');
          return;
        }
        const base = isAbsolute(pattern) ? pattern : join(dirname(file), pattern);
        const files = expandGlob(base);
        if (!files.length) this.warn(file, line, `include ${pattern}: no such file`);
        for (const f of files) this.lexFile(f, depth + 1, seen);
        return;
      }
      if (toks[0]!.v.startsWith('$') || toks[0]!.v.startsWith('@') || toks[0]!.v.startsWith('~')) {
        this.warn(file, line, `'${toks[0]!.v}': keepalived parameter substitution, conditional and sequence lines are not supported - line ignored`);
        return;
      }
      this.lines.push(toks);
    });
  }
}

function lexLine(raw: string, file: string, line: number, warn: (m: string) => void): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = raw.length;
  while (i < n) {
    const ch = raw[i]!;
    if (ch === ' ' || ch === '\t') {
      i++;
      continue;
    }
    if (ch === '#' || ch === '!') break;
    if (ch === '{' || ch === '}') {
      out.push({ v: ch, quoted: false, file, line });
      i++;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let v = '';
      i++;
      let closed = false;
      while (i < n) {
        const c = raw[i]!;
        if (c === ch) {
          closed = true;
          i++;
          break;
        }
        if (c === '\\' && i + 1 < n) {
          const e = raw[i + 1]!;
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" };
          if (map[e] !== undefined) {
            v += map[e];
            i += 2;
            continue;
          }
          if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 2, i + 4))) {
            v += String.fromCharCode(Number.parseInt(raw.slice(i + 2, i + 4), 16));
            i += 4;
            continue;
          }
          if (/^[0-7]{3}$/.test(raw.slice(i + 1, i + 4))) {
            v += String.fromCharCode(Number.parseInt(raw.slice(i + 1, i + 4), 8));
            i += 4;
            continue;
          }
        }
        v += c;
        i++;
      }
      if (!closed) warn('unterminated quoted string');
      out.push({ v, quoted: true, file, line });
      continue;
    }
    let j = i;
    while (j < n && !' \t{}'.includes(raw[j]!)) j++;
    out.push({ v: raw.slice(i, j), quoted: false, file, line });
    i = j;
  }
  return out;
}

function expandGlob(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) {
    try {
      return statSync(pattern).isFile() ? [pattern] : [];
    } catch {
      return [];
    }
  }
  // Wildcards in the last part only (keepalived's common use: include /etc/keepalived/conf.d/*.conf).
  const dir = dirname(pattern);
  const re = new RegExp(
    `^${basename(pattern)
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  );
  try {
    return readdirSync(dir)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dir, f))
      .filter((f) => statSync(f).isFile());
  } catch {
    return [];
  }
}

/** Token lines → statements with nested blocks. */
function buildTree(lines: Tok[][], warn: (file: string, line: number, msg: string) => void): Stmt[] {
  // Flatten with line ends, so inline blocks can be told apart.
  const toks: (Tok | null)[] = [];
  for (const l of lines) toks.push(...l, null);
  let p = 0;
  const parseBlock = (depth: number, opener?: Tok): Stmt[] => {
    const out: Stmt[] = [];
    let cur: Stmt | null = null;
    let inlineStart = opener ? opener.line : -1;
    while (p < toks.length) {
      const t = toks[p++];
      if (t === null) {
        cur = null;
        inlineStart = -1;
        continue;
      }
      if (t.v === '}' && !t.quoted) {
        if (depth === 0) warn(t.file, t.line, "unexpected '}'");
        else return out;
        continue;
      }
      if (t.v === '{' && !t.quoted) {
        const owner: Stmt = cur ?? { kw: '', args: [], file: t.file, line: t.line };
        if (!cur) out.push(owner);
        owner.block = parseBlock(depth + 1, t);
        cur = null;
        continue;
      }
      if (!cur) {
        cur = { kw: t.v, args: [], file: t.file, line: t.line, ...(inlineStart === t.line ? { inline: true } : {}) };
        out.push(cur);
      } else cur.args.push(t);
    }
    if (depth > 0 && opener) warn(opener.file, opener.line, "block not closed: missing '}'");
    return out;
  };
  return parseBlock(0);
}

/** Split statements written on one line inside `{ }` at the keywords this block knows. */
function splitInline(stmts: Stmt[], known: Set<string>): Stmt[] {
  const out: Stmt[] = [];
  for (const s of stmts) {
    if (!s.inline || s.block) {
      out.push(s);
      continue;
    }
    let cur: Stmt = { ...s, args: [] };
    out.push(cur);
    for (const a of s.args) {
      if (!a.quoted && known.has(a.v)) {
        cur = { kw: a.v, args: [], file: a.file, line: a.line };
        out.push(cur);
      } else cur.args.push(a);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keyword tables

const CHECKER_COMMON = ['connect_ip', 'connect_port', 'bindto', 'bind_port', 'bind_if', 'fwmark', 'connect_timeout', 'retry', 'delay_before_retry', 'delay_loop', 'warmup', 'alpha', 'log_all_failures'];
const CHECKER_KEYWORDS: Record<string, string[]> = {
  TCP_CHECK: CHECKER_COMMON,
  HTTP_GET: [...CHECKER_COMMON, 'nb_get_retry', 'http_protocol', 'virtualhost', 'fast_recovery', 'url'],
  SSL_GET: [...CHECKER_COMMON, 'nb_get_retry', 'http_protocol', 'virtualhost', 'fast_recovery', 'enable_sni', 'sni_name', 'tls_compliant', 'url'],
  UDP_CHECK: [...CHECKER_COMMON, 'payload', 'require_reply', 'min_reply_length', 'max_reply_length'],
  DNS_CHECK: [...CHECKER_COMMON, 'type', 'name'],
  SMTP_CHECK: [...CHECKER_COMMON, 'helo_name', 'host'],
  MISC_CHECK: ['misc_path', 'misc_timeout', 'misc_dynamic', 'user', 'retry', 'delay_before_retry', 'delay_loop', 'warmup', 'alpha', 'log_all_failures'],
};
const URL_KEYWORDS = ['path', 'digest', 'status_code', 'virtualhost', 'regex', 'regex_no_match', 'regex_options', 'regex_min_offset', 'regex_max_offset', 'regex_stack'];
const UNSUPPORTED_CHECKERS: Record<string, string> = {
  PING_CHECK: 'needs raw ICMP sockets',
  FILE_CHECK: 'track_file is not supported',
  BFD_CHECK: 'BFD is not supported',
};
const RS_KEYWORDS = [
  'weight',
  'lvs_method',
  'lb_kind',
  'uthreshold',
  'lthreshold',
  'inhibit_on_failure',
  'notify_up',
  'notify_down',
  'alpha',
  'retry',
  'delay_before_retry',
  'warmup',
  'connect_timeout',
  'delay_loop',
  'smtp_alert',
  'virtualhost',
  'snmp_name',
  ...Object.keys(CHECKER_KEYWORDS),
  ...Object.keys(UNSUPPORTED_CHECKERS),
];
const VS_KEYWORDS = [
  'lvs_sched',
  'lb_algo',
  'lvs_method',
  'lb_kind',
  'ops',
  'flag-1',
  'flag-2',
  'flag-3',
  'sh-port',
  'sh-fallback',
  'mh-port',
  'mh-fallback',
  'hashed',
  'persistence_timeout',
  'persistence_granularity',
  'persistence_engine',
  'protocol',
  'ip_family',
  'ha_suspend',
  'alpha',
  'omega',
  'quorum',
  'hysteresis',
  'quorum_up',
  'quorum_down',
  'sorry_server',
  'sorry_server_inhibit',
  'sorry_server_lvs_method',
  'virtualhost',
  'smtp_alert',
  'snmp_name',
  'weight',
  'delay_loop',
  'connect_timeout',
  'retry',
  'delay_before_retry',
  'warmup',
  'inhibit_on_failure',
  'real_server',
];
const SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos']);
const UNSUPPORTED_BLOCKS: Record<string, string> = {
  vrrp_instance: 'VRRP is not part of tsvs (run keepalived for VRRP next to vsd)',
  vrrp_sync_group: 'VRRP is not part of tsvs',
  vrrp_script: 'VRRP is not part of tsvs',
  vrrp_track_process: 'VRRP is not part of tsvs',
  vrrp_track_file: 'VRRP is not part of tsvs',
  static_ipaddress: 'static addresses are not managed by tsvs',
  static_routes: 'static routes are not managed by tsvs',
  static_rules: 'static rules are not managed by tsvs',
  bfd_instance: 'BFD is not supported',
  track_file: 'FILE_CHECK/track_file is not supported',
  linkbeat_interfaces: 'not supported',
  garp_group: 'not supported',
  SSL: 'the SSL block (client certificates for SSL_GET) is not supported: SSL_GET runs without a client certificate',
  net_namespace: 'not supported',
};
const GLOBAL_UNSUPPORTED_REASON: Record<string, string> = {
  router_id: 'used only in e-mail alerts, which tsvs does not send',
  lvs_id: 'obsolete (keepalived says: Unknown keyword)',
  lvs_sync_daemon: "use tsvs's `sync` section or vsadm --start-daemon",
  lvs_flush_on_stop: 'vsd leaves or clears its table on stop by its own rules',
  enable_script_security: 'scripts run as the user vsd runs as',
  script_user: 'scripts run as the user vsd runs as',
  notify_fifo: 'notify FIFOs are not supported (use the logs or the metrics)',
  lvs_notify_fifo: 'notify FIFOs are not supported (use the logs or the metrics)',
  smtp_alert: 'e-mail alerts are not supported',
  smtp_alert_checker: 'e-mail alerts are not supported',
  smtp_server: 'e-mail alerts are not supported',
  smtp_connect_timeout: 'e-mail alerts are not supported',
  notification_email: 'e-mail alerts are not supported',
  notification_email_from: 'e-mail alerts are not supported',
  no_checker_emails: 'e-mail alerts are not supported',
};

// ---------------------------------------------------------------------------------------------
// Interpretation

type Raw = Record<string, unknown>;

interface Group {
  entries: { addr?: string; port?: number; fwmark?: number; family?: 'ipv4' | 'ipv6'; file: string; line: number }[];
}

class Interpreter {
  readonly warnings: KeepalivedWarning[] = [];
  readonly locs = new Map<string, { file: string; line: number }>();
  readonly groups = new Map<string, Group>();
  readonly services: Raw[] = [];
  global: { logAllFailures?: boolean; timeouts?: { tcp: number; tcpfin: number; udp: number } } = {};

  warn(s: { file: string; line: number }, message: string): void {
    this.warnings.push({ file: s.file, line: s.line, message });
  }

  loc(path: (string | number)[], s: { file: string; line: number }): void {
    this.locs.set(path.join('.'), { file: s.file, line: s.line });
  }

  // ---- value helpers -----------------------------------------------------------------------

  timer(s: Stmt, min = 0): number | undefined {
    const v = Number(s.args[0]?.v);
    if (!s.args[0] || !Number.isFinite(v) || v < min) {
      this.warn(s, `${s.kw} '${s.args[0]?.v ?? ''}' is invalid - ignoring`);
      return undefined;
    }
    return v;
  }

  int(s: Stmt, lo: number, hi: number, argIndex = 0): number | undefined {
    const t = s.args[argIndex]?.v;
    const v = Number(t);
    if (t === undefined || !/^-?\d+$/.test(t) || v < lo || v > hi) {
      this.warn(s, `${s.kw} '${t ?? ''}' is invalid (expected ${lo}..${hi}) - ignoring`);
      return undefined;
    }
    return v;
  }

  bool(s: Stmt): boolean {
    const t = s.args[0]?.v;
    if (t === undefined) return true;
    if (['on', 'true', 'yes'].includes(t)) return true;
    if (['off', 'false', 'no'].includes(t)) return false;
    this.warn(s, `${s.kw} '${t}' is not a boolean - taking true`);
    return true;
  }

  ip(s: Stmt, i = 0): IpAddr | undefined {
    const a = IpAddr.tryParse(s.args[i]?.v ?? '');
    if (!a) this.warn(s, `${s.kw}: invalid address '${s.args[i]?.v ?? ''}'`);
    return a ?? undefined;
  }

  script(s: Stmt): string | undefined {
    if (!s.args.length) {
      this.warn(s, `${s.kw} needs a script`);
      return undefined;
    }
    if (s.args.length > 1 && !s.args[0]!.quoted) this.warn(s, `${s.kw}: a user/group after the script is not supported (scripts run as vsd's user) - ignored`);
    return s.args[0]!.v;
  }

  // ---- top level -----------------------------------------------------------------------------

  run(tree: Stmt[]): void {
    for (const s of tree) {
      if (s.kw === 'global_defs') this.globalDefs(s);
      else if (s.kw === 'virtual_server_group') this.group(s);
    }
    for (const s of tree) {
      if (s.kw === 'global_defs' || s.kw === 'virtual_server_group') continue;
      if (s.kw === 'virtual_server') this.virtualServer(s);
      else if (UNSUPPORTED_BLOCKS[s.kw]) this.warn(s, `${s.kw}: ${UNSUPPORTED_BLOCKS[s.kw]} - block ignored`);
      else if (s.kw === '') this.warn(s, "'{' without a keyword - block ignored");
      else this.warn(s, `Unknown keyword '${s.kw}'`);
    }
  }

  globalDefs(g: Stmt): void {
    for (const s of g.block ?? []) {
      switch (s.kw) {
        case 'lvs_timeouts': {
          const t = { tcp: 0, tcpfin: 0, udp: 0 };
          for (let i = 0; i + 1 < s.args.length; i += 2) {
            const k = s.args[i]!.v;
            const v = Number(s.args[i + 1]!.v);
            if (!(k in t) || !Number.isInteger(v) || v < 0) this.warn(s, `lvs_timeouts: invalid '${k} ${s.args[i + 1]!.v}' - ignoring`);
            else t[k as keyof typeof t] = v;
          }
          this.global.timeouts = t;
          this.loc(['timeouts'], s);
          break;
        }
        case 'checker_log_all_failures':
          this.global.logAllFailures = this.bool(s);
          break;
        case 'lvs_flush':
          // vsd applies the whole configured table and removes what is not in it: the same effect
          break;
        default:
          this.warn(s, `global_defs ${s.kw}: ${GLOBAL_UNSUPPORTED_REASON[s.kw] ?? 'not supported by tsvs'} - ignored`);
      }
    }
  }

  group(g: Stmt): void {
    const name = g.args[0]?.v;
    if (!name) {
      this.warn(g, 'virtual_server_group needs a name');
      return;
    }
    const grp: Group = { entries: [] };
    for (const s of g.block ?? []) {
      if (s.kw === 'fwmark') {
        const mark = this.int({ ...s, kw: 'fwmark' }, 1, 4294967295);
        const fam = s.args[1]?.v;
        if (mark !== undefined) grp.entries.push({ fwmark: mark, ...(fam === 'inet6' ? { family: 'ipv6' as const } : {}), file: s.file, line: s.line });
        continue;
      }
      const port = s.args[0] ? Number(s.args[0].v) : 0;
      if (s.args[0] && (!Number.isInteger(port) || port < 0 || port > 65535)) {
        this.warn(s, `virtual_server_group ${name}: invalid port '${s.args[0].v}' - entry ignored`);
        continue;
      }
      const addrs = expandRange(s.kw);
      if (typeof addrs === 'string') {
        this.warn(s, `virtual_server_group ${name}: ${addrs} - entry ignored`);
        continue;
      }
      for (const a of addrs) grp.entries.push({ addr: a, port, file: s.file, line: s.line });
    }
    if (!grp.entries.length) this.warn(g, `virtual_server_group ${name} has no entries - removing`);
    else this.groups.set(name, grp);
  }

  // ---- virtual_server ------------------------------------------------------------------------

  virtualServer(vs: Stmt): void {
    const a0 = vs.args[0]?.v;
    let targets: { addr?: string; port?: number; fwmark?: number; family?: 'ipv4' | 'ipv6' }[] = [];
    let groupName: string | undefined;
    if (a0 === 'fwmark') {
      const mark = this.int({ ...vs, kw: 'virtual_server fwmark' }, 1, 4294967295, 1);
      if (mark === undefined) return;
      targets = [{ fwmark: mark }];
    } else if (a0 === 'group') {
      groupName = vs.args[1]?.v;
      const g = groupName ? this.groups.get(groupName) : undefined;
      if (!g) {
        this.warn(vs, `virtual_server group ${groupName ?? ''}: no such virtual_server_group - ignoring`);
        return;
      }
      targets = g.entries;
    } else {
      const addr = this.ip(vs);
      if (!addr) return;
      const port = vs.args[1] ? Number(vs.args[1].v) : 0;
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        this.warn(vs, `virtual_server: invalid port '${vs.args[1]?.v}' - ignoring`);
        return;
      }
      targets = [{ addr: addr.toString(), port }];
    }
    const body = splitInline(vs.block ?? [], new Set(VS_KEYWORDS));
    for (const t of targets) this.oneService(vs, body, t, groupName);
  }

  private oneService(vs: Stmt, body: Stmt[], t: { addr?: string; port?: number; fwmark?: number; family?: 'ipv4' | 'ipv6' }, groupName: string | undefined): void {
    const si = this.services.length;
    const path = ['services', si];
    const svc: Raw = {};
    const health: Raw = {};
    let protocol: string | undefined;
    let method: string | undefined;
    let tunnel: Raw | undefined;
    let sched: string | undefined;
    let defaultWeight = 1;
    let persistent: number | true | undefined;
    let sorry: { addr: IpAddr; port: number; s: Stmt } | undefined;
    let sorryMethod: string | undefined;
    let sorryInhibit = false;
    const schedFlags: string[] = [];
    const rsStmts: Stmt[] = [];
    const label = (proto = protocol ?? 'none') => (t.fwmark ? `FWM ${t.fwmark}` : groupName ? `[${groupName}]:${t.port}` : `[${t.addr}]:${proto}:${t.port}`);
    for (const s of body) {
      switch (s.kw) {
        case 'lvs_sched':
        case 'lb_algo': {
          const v = s.args[0]?.v ?? '';
          if (SCHEDULERS.has(v)) sched = v;
          else this.warn(s, `Invalid lvs_scheduler '${v}' - ignoring`);
          break;
        }
        case 'lvs_method':
        case 'lb_kind': {
          const m = this.method(s);
          if (m) {
            method = m.method;
            tunnel = m.tunnel;
          }
          break;
        }
        case 'ops':
          svc.ops = true;
          break;
        case 'flag-1':
        case 'flag-2':
        case 'flag-3':
          schedFlags.push(s.kw);
          break;
        case 'sh-port':
        case 'sh-fallback':
        case 'mh-port':
        case 'mh-fallback':
          // keepalived honours these only after the matching lvs_sched in the block
          if (sched === s.kw.slice(0, 2)) schedFlags.push(s.kw);
          else this.warn(s, `${s.kw} only applies to ${s.kw.slice(0, 2)} scheduler - ignoring`);
          break;
        case 'hashed':
          break;
        case 'persistence_timeout':
          if (!s.args.length) persistent = true;
          else {
            const v = this.int(s, 1, 2678400);
            if (v !== undefined) persistent = v;
          }
          break;
        case 'persistence_granularity': {
          const v = s.args[0]?.v ?? '';
          svc.netmask = /^\d+$/.test(v) ? Number(v) : v;
          this.loc([...path, 'netmask'], s);
          persistent ??= true;
          break;
        }
        case 'persistence_engine':
          if (s.args[0]) svc.pe = s.args[0].v;
          break;
        case 'protocol': {
          const v = (s.args[0]?.v ?? '').toLowerCase();
          // (in a group the protocol is for its address entries; its fwmark entries ignore it)
          if (t.fwmark && !groupName) this.warn(s, `Virtual server ${label()}: protocol specified for fwmark - ignoring`);
          else if (t.fwmark) break;
          else if (['tcp', 'udp', 'sctp'].includes(v)) protocol = v;
          else this.warn(s, `Unknown protocol '${s.args[0]?.v ?? ''}' - ignoring`);
          break;
        }
        case 'ip_family': {
          const v = s.args[0]?.v;
          if (v === 'inet' || v === 'inet6') svc.family = v === 'inet' ? 'ipv4' : 'ipv6';
          else this.warn(s, `ip_family '${v ?? ''}' is invalid - ignoring`);
          break;
        }
        case 'ha_suspend':
          this.warn(s, 'ha_suspend is not supported (tsvs does not watch for the VIP on local interfaces): checkers always run');
          break;
        case 'alpha':
          health.alpha = this.bool(s);
          break;
        case 'omega':
          health.omega = this.bool(s);
          break;
        case 'quorum': {
          const v = this.int(s, 1, 4294967295);
          if (v !== undefined) health.quorum = v;
          break;
        }
        case 'hysteresis': {
          const v = this.int(s, 0, 4294967295);
          if (v !== undefined) health.hysteresis = v;
          break;
        }
        case 'quorum_up':
        case 'quorum_down': {
          const v = this.script(s);
          if (v) health[s.kw === 'quorum_up' ? 'quorumUp' : 'quorumDown'] = v;
          break;
        }
        case 'sorry_server': {
          const addr = this.ip(s);
          if (addr) sorry = { addr, port: s.args[1] ? Number(s.args[1].v) : 0, s };
          break;
        }
        case 'sorry_server_inhibit':
          sorryInhibit = this.bool(s);
          break;
        case 'sorry_server_lvs_method': {
          const m = this.method(s);
          if (m) sorryMethod = m.method;
          break;
        }
        case 'virtualhost':
          if (s.args[0]) health.virtualhost = s.args[0].v;
          break;
        case 'smtp_alert':
        case 'snmp_name':
          this.warn(s, `${s.kw}: ${s.kw === 'smtp_alert' ? 'e-mail alerts are' : 'SNMP is'} not supported - ignored`);
          break;
        case 'weight': {
          const v = this.int(s, 1, 2147483647);
          if (v !== undefined) defaultWeight = v;
          break;
        }
        case 'delay_loop':
        case 'connect_timeout':
        case 'delay_before_retry':
        case 'warmup': {
          const v = this.timer(s, s.kw === 'delay_loop' || s.kw === 'connect_timeout' ? 0.000001 : 0);
          if (v !== undefined) health[camel(s.kw)] = v;
          break;
        }
        case 'retry': {
          const v = this.int(s, 0, 1000000);
          if (v !== undefined) health.retry = v;
          break;
        }
        case 'inhibit_on_failure':
          health.inhibitOnFailure = this.bool(s);
          break;
        case 'real_server':
          rsStmts.push(s);
          break;
        default:
          this.warn(s, `Unknown keyword '${s.kw}'`);
      }
    }
    // keepalived's defaults, with its messages (check_parser.c / check_data.c)
    if (!t.fwmark) {
      if (!protocol) {
        this.warn(vs, `Virtual server ${label()}: no protocol set - defaulting to UDP`);
        protocol = 'udp';
      }
      svc.protocol = protocol;
    } else if (t.family) svc.family = t.family;
    if (!method) {
      this.warn(vs, `Virtual server ${label()}: no forwarding method set, setting default NAT`);
      method = 'nat';
    }
    if (!sched) {
      this.warn(vs, `Virtual server ${label()}: no scheduler set, setting default 'wlc'`);
      sched = 'wlc';
    }
    if (!t.fwmark && t.port === 0 && persistent === undefined) {
      this.warn(vs, `Virtual server ${label()}: zero port only valid for persistent services - setting`);
      persistent = true;
    }
    if (svc.ops && protocol !== 'udp' && !t.fwmark) {
      this.warn(vs, `Virtual server ${label()}: one packet scheduling requires UDP - resetting`);
      delete svc.ops;
    }
    if (t.fwmark) svc.fwmark = t.fwmark;
    else svc.address = hostPort(t.addr!, t.port!);
    svc.scheduler = sched;
    if (schedFlags.length) svc.schedFlags = schedFlags;
    if (persistent !== undefined) svc.persistent = persistent;
    this.loc(path, vs);
    this.loc([...path, 'address'], vs);
    const realServers: Raw[] = [];
    const seen = new Set<string>();
    const vsFamily = t.addr ? IpAddr.tryParse(t.addr)!.family : t.family === 'ipv6' ? 6 : 4;
    for (const s of rsStmts) {
      const rs = this.realServer(s, { ...t, protocol: protocol ?? 'tcp', method: method!, tunnel, defaultWeight, vsFamily, label: label() }, [...path, 'realServers', realServers.length]);
      if (!rs) continue;
      const key = String(rs.address);
      if (seen.has(key)) {
        this.warn(s, `real server ${key} is a duplicate in virtual server ${label()} - removing`);
        continue;
      }
      seen.add(key);
      realServers.push(rs);
    }
    if (!realServers.length) {
      this.warn(vs, `Virtual server ${label()} has no real servers - ignoring`);
      for (const k of [...this.locs.keys()]) if (k === path.join('.') || k.startsWith(`${path.join('.')}.`)) this.locs.delete(k);
      return;
    }
    svc.realServers = realServers;
    if (sorry) {
      const sm = sorryMethod ?? method!;
      let port = sorry.port;
      if ((sm === 'dr' || sm === 'tun') && !t.fwmark) port = t.port!;
      else if (!port) port = t.port ?? 0;
      health.sorryServer = { address: hostPort(sorry.addr.toString(), port), method: sm, ...(sorryInhibit ? { inhibit: true } : {}) };
      this.loc([...path, 'health', 'sorryServer'], sorry.s);
    }
    if (Object.keys(health).length) svc.health = health;
    this.services.push(svc);
  }

  private method(s: Stmt): { method: string; tunnel?: Raw } | undefined {
    const v = (s.args[0]?.v ?? '').toUpperCase();
    const m = { NAT: 'nat', DR: 'dr', TUN: 'tun' }[v];
    if (!m) {
      this.warn(s, `Invalid lvs_method '${s.args[0]?.v ?? ''}' - ignoring`);
      return undefined;
    }
    if (m !== 'tun' || s.args.length === 1) {
      if (s.args.length > 1) this.warn(s, `${s.kw}: options after ${v} are for TUN only - ignored`);
      return { method: m };
    }
    const tunnel: Raw = {};
    for (let i = 1; i < s.args.length; i++) {
      const a = s.args[i]!.v;
      if (a === 'type') {
        const ty = s.args[++i]?.v;
        if (ty === 'ipip' || ty === 'gue' || ty === 'gre') tunnel.type = ty;
        else this.warn(s, `unknown tunnel type '${ty ?? ''}' - ignoring`);
      } else if (a === 'port') {
        const p = Number(s.args[++i]?.v);
        if (Number.isInteger(p) && p >= 1 && p <= 65535) tunnel.port = p;
        else this.warn(s, 'invalid tunnel port - ignoring');
      } else if (a === 'nocsum') tunnel.checksum = 'none';
      else if (a === 'csum' || a === 'remcsum') tunnel.checksum = a;
      else this.warn(s, `unknown TUN option '${a}' - ignoring`);
    }
    if (tunnel.type === 'gue' && !tunnel.port) this.warn(s, 'gue tunnels require port, otherwise cannot have port.');
    if (tunnel.type === 'ipip' && tunnel.checksum && tunnel.checksum !== 'none') {
      this.warn(s, 'ipip tunnels do not support checksum options - ignoring');
      delete tunnel.checksum;
    }
    if (tunnel.type === 'gre' && tunnel.checksum === 'remcsum') {
      this.warn(s, 'gre tunnels do not support remcsum - ignoring');
      delete tunnel.checksum;
    }
    return { method: m, tunnel };
  }

  // ---- real_server ---------------------------------------------------------------------------

  private realServer(
    rsStmt: Stmt,
    vs: { addr?: string; port?: number; fwmark?: number; protocol: string; method: string; tunnel?: Raw | undefined; defaultWeight: number; vsFamily: 4 | 6; label: string },
    path: (string | number)[],
  ): Raw | undefined {
    const addr = this.ip(rsStmt);
    if (!addr) return undefined;
    let port = rsStmt.args[1] ? Number(rsStmt.args[1].v) : 0;
    const declaredPort = port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      this.warn(rsStmt, `real_server: invalid port '${rsStmt.args[1]?.v}' - ignoring`);
      return undefined;
    }
    const rs: Raw = { weight: vs.defaultWeight };
    const check: Raw = {};
    const checkers: Raw[] = [];
    let method = vs.method;
    let tunnel = vs.tunnel;
    this.loc(path, rsStmt);
    const body = splitInline(rsStmt.block ?? [], new Set(RS_KEYWORDS));
    for (const s of body) {
      if (CHECKER_KEYWORDS[s.kw]) {
        checkers.push(...this.checker(s, [...path, 'check', 'checkers', checkers.length]));
        continue;
      }
      if (UNSUPPORTED_CHECKERS[s.kw]) {
        this.warn(s, `${s.kw} is not supported by tsvs (${UNSUPPORTED_CHECKERS[s.kw]}): real server [${addr}]:${port} is checked without it`);
        continue;
      }
      switch (s.kw) {
        case 'weight': {
          const v = this.int(s, 0, 2147483647);
          if (v !== undefined) rs.weight = v;
          this.loc([...path, 'weight'], s);
          break;
        }
        case 'lvs_method':
        case 'lb_kind': {
          const m = this.method(s);
          if (m) {
            method = m.method;
            tunnel = m.tunnel;
          }
          break;
        }
        case 'uthreshold':
        case 'lthreshold': {
          const v = this.int(s, 0, 2147483647);
          if (v !== undefined) rs[s.kw === 'uthreshold' ? 'upperThreshold' : 'lowerThreshold'] = v;
          break;
        }
        case 'inhibit_on_failure':
          check.inhibitOnFailure = this.bool(s);
          break;
        case 'notify_up':
        case 'notify_down': {
          const v = this.script(s);
          if (v) check[s.kw === 'notify_up' ? 'notifyUp' : 'notifyDown'] = v;
          break;
        }
        case 'alpha':
          check.alpha = this.bool(s);
          break;
        case 'retry': {
          const v = this.int(s, 0, 1000000);
          if (v !== undefined) check.retry = v;
          break;
        }
        case 'delay_before_retry':
        case 'warmup':
        case 'connect_timeout':
        case 'delay_loop': {
          const v = this.timer(s, s.kw === 'delay_loop' || s.kw === 'connect_timeout' ? 0.000001 : 0);
          if (v !== undefined) check[camel(s.kw)] = v;
          break;
        }
        case 'virtualhost':
          if (s.args[0]) check.virtualhost = s.args[0].v;
          break;
        case 'smtp_alert':
        case 'snmp_name':
          this.warn(s, `${s.kw}: ${s.kw === 'smtp_alert' ? 'e-mail alerts are' : 'SNMP is'} not supported - ignored`);
          break;
        default:
          this.warn(s, `Unknown keyword '${s.kw}'`);
      }
    }
    if (addr.family !== vs.vsFamily && method !== 'tun') {
      this.warn(rsStmt, `real server [${addr}]:${port} is not the same family as virtual server ${vs.label} - skipping`);
      return undefined;
    }
    // keepalived's port rules (check_data.c): non-NAT real servers of address services use the
    // service's port; a NAT real server without one gets it; fwmark services' non-NAT ports are 0.
    if (!vs.fwmark) {
      if (method !== 'nat' && port !== vs.port) {
        if (port) this.warn(rsStmt, `WARNING - virtual server ${vs.label} and real server [${addr}]:${vs.protocol}:${port} ports don't match - resetting`);
        port = vs.port!;
      } else if (method === 'nat' && !port) port = vs.port!;
    } else if (method !== 'nat') port = 0;
    rs.address = hostPort(addr.toString(), port);
    rs.method = method;
    if (method === 'tun' && tunnel && Object.keys(tunnel).length) rs.tunnel = tunnel;
    // Port 0 in the table (fwmark, persistent port-0 services): checkers probe the port the
    // real_server line gave; without one they have nothing to connect to.
    if (port === 0) {
      for (let i = checkers.length - 1; i >= 0; i--) {
        const c = checkers[i]!;
        if (c.type === 'misc' || c.connectPort) continue;
        if (declaredPort) c.connectPort = declaredPort;
        else {
          this.warn(rsStmt, `real server [${addr}] has no port: its ${String(c.type).toUpperCase()} checker needs connect_port - checker removed`);
          checkers.splice(i, 1);
        }
      }
    }
    if (checkers.length) check.checkers = checkers;
    if (Object.keys(check).length) rs.check = check;
    // key order for readability when printed
    return { address: rs.address, method: rs.method, ...rs };
  }

  private checker(c: Stmt, path: (string | number)[]): Raw[] {
    const kind = c.kw;
    const known = new Set(CHECKER_KEYWORDS[kind]);
    const type = { TCP_CHECK: 'tcp', HTTP_GET: 'http', SSL_GET: 'https', UDP_CHECK: 'udp', DNS_CHECK: 'dns', SMTP_CHECK: 'smtp', MISC_CHECK: 'misc' }[kind]!;
    const out: Raw = { type };
    const extra: Raw[] = [];
    const urls: Raw[] = [];
    this.loc(path, c);
    for (const s of splitInline(c.block ?? [], known)) {
      if (!known.has(s.kw)) {
        this.warn(s, `Unknown keyword '${s.kw}'`);
        continue;
      }
      switch (s.kw) {
        case 'connect_ip':
        case 'bindto': {
          const a = this.ip(s);
          if (a) out[s.kw === 'connect_ip' ? 'connectIp' : 'bindto'] = a.toString();
          break;
        }
        case 'connect_port':
        case 'bind_port': {
          const v = this.int(s, 1, 65535);
          if (v !== undefined) out[s.kw === 'connect_port' ? 'connectPort' : 'bindPort'] = v;
          break;
        }
        case 'bind_if':
          this.warn(s, 'bind_if is not supported (bind to an address with bindto) - ignored');
          break;
        case 'fwmark':
          this.warn(s, 'fwmark on checker packets (SO_MARK) is not supported - ignored; with policy routing use bindto and a rule on the source address');
          break;
        case 'connect_timeout':
        case 'delay_before_retry':
        case 'delay_loop':
        case 'warmup': {
          const v = this.timer(s, s.kw === 'delay_loop' || s.kw === 'connect_timeout' ? 0.000001 : 0);
          if (v !== undefined) out[camel(s.kw)] = v;
          break;
        }
        case 'retry':
        case 'nb_get_retry': {
          if (s.kw === 'nb_get_retry') this.warn(s, "nb_get_retry is deprecated - please use 'retry'");
          const v = this.int(s, 0, 1000000);
          if (v !== undefined) out.retry = v;
          break;
        }
        case 'alpha':
          out.alpha = this.bool(s);
          break;
        case 'log_all_failures':
          out.logAllFailures = this.bool(s);
          break;
        // HTTP_GET / SSL_GET
        case 'http_protocol': {
          const v = s.args[0]?.v ?? '';
          if (['1.0', '1.0C', '1.0c', '1.1'].includes(v)) out.protocol = v;
          else this.warn(s, `http_protocol '${v}' is invalid - ignoring`);
          break;
        }
        case 'virtualhost':
          if (s.args[0]) out.virtualhost = s.args[0].v;
          break;
        case 'fast_recovery':
          out.fastRecovery = this.bool(s);
          break;
        case 'enable_sni':
          if (this.bool(s)) out.sni ??= true;
          break;
        case 'sni_name':
          if (s.args[0]) out.sni = s.args[0].v;
          break;
        case 'tls_compliant':
          this.warn(s, 'tls_compliant: node always closes TLS properly - ignored');
          break;
        case 'url': {
          const u = this.url(s, [...path, 'urls', urls.length]);
          if (u) urls.push(u);
          break;
        }
        // UDP_CHECK
        case 'payload':
          out.payload = s.args.map((a) => a.v).join(' ');
          break;
        case 'require_reply':
          out.requireReply = s.args.length ? s.args.map((a) => a.v).join(' ') : true;
          break;
        case 'min_reply_length':
        case 'max_reply_length': {
          const v = this.int(s, 0, 65535);
          if (v !== undefined) out[s.kw === 'min_reply_length' ? 'minReplyLength' : 'maxReplyLength'] = v;
          break;
        }
        // DNS_CHECK
        case 'type': {
          const v = (s.args[0]?.v ?? '').toUpperCase();
          if (['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA', 'RRSIG', 'DNSKEY'].includes(v)) out.query = v;
          else this.warn(s, `Unknown DNS check type ${s.args[0]?.v ?? ''} - ignoring`);
          break;
        }
        case 'name':
          if (s.args[0]) out.name = s.args[0].v;
          break;
        // SMTP_CHECK
        case 'helo_name':
          if (s.args[0]) out.helo = s.args[0].v;
          break;
        case 'host': {
          this.warn(s, "SMTP_CHECK host blocks are deprecated - each becomes its own SMTP_CHECK");
          const h = this.checker({ ...s, kw: 'SMTP_CHECK' }, [...path.slice(0, -1), (path.at(-1) as number) + 1 + extra.length]);
          extra.push(...h.map((x) => ({ ...x, ...(out.helo ? { helo: out.helo } : {}) })));
          break;
        }
        // MISC_CHECK
        case 'misc_path':
          if (s.args.length) out.command = s.args.length === 1 ? s.args[0]!.v : s.args.map((a) => a.v);
          break;
        case 'misc_timeout': {
          const v = this.timer(s, 0.000001);
          if (v !== undefined) out.timeout = v;
          break;
        }
        case 'misc_dynamic':
          out.dynamic = this.bool(s);
          break;
        case 'user':
          this.warn(s, 'MISC_CHECK user: scripts run as the user vsd runs as - ignored');
          break;
      }
    }
    if (type === 'http' || type === 'https') {
      if (!urls.length) {
        this.warn(c, `${kind} has no url - checker removed`);
        return extra;
      }
      out.urls = urls;
    }
    if (type === 'misc' && !out.command) {
      this.warn(c, 'MISC_CHECK has no misc_path - checker removed');
      return extra;
    }
    return [out, ...extra];
  }

  private url(u: Stmt, path: (string | number)[]): Raw | undefined {
    const out: Raw = {};
    this.loc(path, u);
    for (const s of splitInline(u.block ?? [], new Set(URL_KEYWORDS))) {
      switch (s.kw) {
        case 'path':
          if (s.args[0]) out.path = s.args[0].v;
          break;
        case 'digest': {
          const v = s.args[0]?.v ?? '';
          if (out.digest) this.warn(s, 'digest already specified for url - ignoring');
          else if (/^[0-9a-fA-F]{32}$/.test(v)) out.digest = v.toLowerCase();
          else this.warn(s, `digest '${v}' character length should be 32 rather than ${v.length}`);
          break;
        }
        case 'status_code': {
          const list: (string | number)[] = (out.status as (string | number)[] | undefined) ?? [];
          for (const a of s.args) {
            const m = /^(\d+)(?:-(\d+))?$/.exec(a.v);
            const lo = m ? Number(m[1]) : Number.NaN;
            const hi = m?.[2] ? Number(m[2]) : lo;
            if (!m || lo < 100 || hi > 599 || hi < lo) this.warn(s, `Invalid HTTP_GET status code '${a.v}'`);
            else list.push(m[2] ? `${lo}-${hi}` : lo);
          }
          if (list.length) out.status = list;
          break;
        }
        case 'virtualhost':
          if (s.args[0]) out.virtualhost = s.args[0].v;
          break;
        case 'regex':
          if (s.args[0]) {
            try {
              new RegExp(s.args[0].v);
              out.regex = s.args[0].v;
            } catch (e) {
              this.warn(s, `regex '${s.args[0].v}' is not a valid JavaScript regular expression (${(e as Error).message}) - ignoring`);
            }
          }
          break;
        case 'regex_no_match':
          out.regexNoMatch = true;
          break;
        case 'regex_options':
        case 'regex_min_offset':
        case 'regex_max_offset':
        case 'regex_stack':
          this.warn(s, `${s.kw} is not supported (regexes are JavaScript's, matched on the first MiB of the body) - ignored`);
          break;
        default:
          this.warn(s, `Unknown keyword '${s.kw}'`);
      }
    }
    if (!out.path) {
      this.warn(u, 'url has no path - ignoring');
      return undefined;
    }
    return out;
  }
}

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** 10.0.0.1-10, 10.0.0.250-10.0.1.5, 10.0.0.8/29, 2001:db8::1-1f → addresses (at most 256). */
export function expandRange(text: string): string[] | string {
  const MAX = 256;
  const cidr = /^(.+)\/(\d+)$/.exec(text);
  if (cidr) {
    const a = IpAddr.tryParse(cidr[1]!);
    const len = Number(cidr[2]);
    if (a?.family !== 4 || len < 0 || len > 32) return `invalid range '${text}'`;
    const size = 2 ** (32 - len);
    if (size > MAX) return `range '${text}' has more than ${MAX} addresses`;
    const base = (a.w0 & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) >>> 0;
    return Array.from({ length: size }, (_, i) => v4((base + i) >>> 0));
  }
  const dash = text.lastIndexOf('-');
  if (dash > 0) {
    const first = IpAddr.tryParse(text.slice(0, dash));
    const endText = text.slice(dash + 1);
    if (!first) return `invalid range '${text}'`;
    if (first.family === 4) {
      const endFull = IpAddr.tryParse(endText);
      const start = first.w0 >>> 0;
      let end: number;
      if (endFull && endFull.family === 4) end = endFull.w0 >>> 0;
      else if (/^\d{1,3}$/.test(endText) && Number(endText) <= 255) end = ((start & 0xffffff00) | Number(endText)) >>> 0;
      else return `invalid range '${text}'`;
      if (end < start) return `invalid range '${text}'`;
      if (end - start + 1 > MAX) return `range '${text}' has more than ${MAX} addresses`;
      return Array.from({ length: end - start + 1 }, (_, i) => v4(start + i));
    }
    // IPv6: a range of the last group
    if (!/^[0-9a-fA-F]{1,4}$/.test(endText)) return `invalid range '${text}'`;
    const s = first.toString();
    const groups = expandV6(s);
    const lo = groups[7]!;
    const hi = Number.parseInt(endText, 16);
    if (hi < lo) return `invalid range '${text}'`;
    if (hi - lo + 1 > MAX) return `range '${text}' has more than ${MAX} addresses`;
    return Array.from({ length: hi - lo + 1 }, (_, i) => IpAddr.parse([...groups.slice(0, 7), lo + i].map((g) => g.toString(16)).join(':')).toString());
  }
  const a = IpAddr.tryParse(text);
  return a ? [a.toString()] : `invalid address '${text}'`;
}

function v4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function expandV6(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => Number.parseInt(g, 16));
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** A quick look: does this text read as a keepalived.conf rather than YAML/JSON? */
export function looksLikeKeepalived(text: string): boolean {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#!].*$/, '').trim();
    if (!line) continue;
    return /^(global_defs|virtual_server|virtual_server_group|vrrp_\w+|include|static_\w+|bfd_instance|track_file|net_namespace|SSL)\b/.test(line) && !/^[\w-]+\s*:/.test(line);
  }
  return false;
}

export interface KeepalivedOptions {
  readFile?: (path: string) => string;
}

/** Parse a keepalived.conf text into a validated Config (health sections included). */
export function parseKeepalived(text: string, file = 'keepalived.conf', opts: KeepalivedOptions = {}): KeepalivedResult {
  const warnings: KeepalivedWarning[] = [];
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const lexer = new Lexer((f, l, m) => warnings.push({ file: f, line: l, message: m }), readFile);
  lexer.lexText(text, file);
  const tree = buildTree(lexer.lines, (f, l, m) => warnings.push({ file: f, line: l, message: m }));
  const it = new Interpreter();
  it.run(tree);
  warnings.push(...it.warnings);
  const raw: Raw = { services: it.services };
  if (it.global.timeouts) raw.timeouts = it.global.timeouts;
  if (it.global.logAllFailures !== undefined) raw.health = { logAllFailures: it.global.logAllFailures };
  const locate = (path: (string | number)[]) => {
    for (let n = path.length; n >= 0; n--) {
      const l = it.locs.get(path.slice(0, n).join('.'));
      if (l) return l;
    }
    return { file, line: 0 };
  };
  let parsed: Config;
  try {
    parsed = parseConfig(JSON.stringify(raw), file);
  } catch (e) {
    if (e instanceof ConfigError) {
      // "services.0.realServers.1.weight: …" → that keyword's line in the keepalived file
      const m = /^([\w.]+): /.exec(e.problem);
      const where = locate(m ? m[1]!.split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : x)) : []);
      throw new ConfigError(where.file, where.line, 0, e.problem);
    }
    throw e;
  }
  let lastFile = file;
  const config: Config = { ...parsed };
  Object.defineProperty(config, 'source', {
    value: {
      get file() {
        return lastFile;
      },
      locate(path: (string | number)[]) {
        const l = locate(path);
        lastFile = l.file;
        return { line: l.line, col: 0 };
      },
    },
    enumerable: false,
  });
  // The health sections are validated now, so errors point at keepalived's lines.
  const health = resolveHealth(config);
  for (const s of health.services) for (const w of s.warnings) warnings.push({ file, line: 0, message: w });
  return { config, warnings };
}

export function loadKeepalivedFile(path: string, opts: KeepalivedOptions = {}): KeepalivedResult {
  let text: string;
  try {
    text = (opts.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(path);
  } catch (e) {
    throw new ConfigError(path, 0, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseKeepalived(text, path, opts);
}
