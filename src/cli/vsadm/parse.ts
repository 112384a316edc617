// ipvsadm's command line, parsed as ipvsadm 1.31 parses it (parse_options, generic_opt_check
// and the checks of process_options), into a command record that run.ts executes.
//
// Order of events, which decides which message wins when several things are wrong:
//  1. the first option must be a command (else "Try `prog -h' ..." and exit 255);
//  2. every further option in command-line order: a second command is "invalid option",
//     a repeated option "multiple '...' options specified", a bad value its own message (exit 2),
//     a popt error "<word>: <text>" (the command then fails with -1);
//  3. --set's three values; 4. a left-over word; 5. the scheduler flags;
//  6. the command x option matrix, in option-index order;
//  7. command-specific checks (zero port, OPS, real-server port forcing, address family,
//     tunnel options).

import { IpAddr } from '../../core/addr.js';
import {
  FWD_DROUTE,
  FWD_MASK,
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
  TUN_F_NOCSUM,
  TUN_F_REMCSUM,
  TUN_TYPE_IPIP,
} from '../../core/constants.js';
import { allDigits, atoi, inetAton, inetPton4, inetPton6, stringToNumber, strtolWhole } from './inet.js';
import { type ErrorSink, Exit, failWith, tryHelpText } from './messages.js';
import { type NameResolver, protoForServices } from './names.js';
import { PoptContext, type PoptOption, poptStrerror } from './popt.js';

export type Flavor = 'ipvsadm' | 'vsadm';

/** Commands, in ipvsadm's order; the names are the ones its messages use. */
export const CMD_NAMES = [
  'add-service',
  'edit-service',
  'delete-service',
  'flush',
  'list',
  'add-server',
  'delete-server',
  'edit-server',
  'set',
  'start-daemon',
  'stop-daemon',
  'restore',
  'save',
  'zero',
] as const;
export type CmdName = (typeof CMD_NAMES)[number];

/** Options in ipvsadm's index order (the legality check walks them in this order). */
export const OPT_NAMES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
  // vsadm only
  'json',
] as const;
export type OptName = (typeof OPT_NAMES)[number];
const OPT = Object.fromEntries(OPT_NAMES.map((n, i) => [n, i])) as Record<OptName, number>;

/**
 * commands_v_options: per command, one character per option index.
 * '+' compulsory, 'x' illegal, '1' at most one of the '1's, ' ' optional.
 */
const MATRIX: Record<CmdName, string> = {
  'add-service': `xx+   ${'x'.repeat(15)}   ${'x'.repeat(10)}x`,
  'edit-service': `xx+   ${'x'.repeat(15)}   ${'x'.repeat(10)}x`,
  'delete-service': `xx+${'x'.repeat(31)}x`,
  flush: `${'x'.repeat(34)}x`,
  list: ` 11${'x'.repeat(9)}11       ${'x'.repeat(7)} ${'x'.repeat(5)} `,
  'add-server': `xx+xxx+    ${'x'.repeat(18)}     x`,
  'delete-server': `xx+xxx+${'x'.repeat(27)}x`,
  'edit-server': `xx+xxx+    ${'x'.repeat(18)}     x`,
  set: `${'x'.repeat(34)}x`,
  'start-daemon': `${'x'.repeat(11)} ${'x'.repeat(7)} ${'x'.repeat(4)}    ${'x'.repeat(6)}x`,
  'stop-daemon': `${'x'.repeat(19)} ${'x'.repeat(14)}x`,
  restore: `${'x'.repeat(34)}x`,
  save: ` ${'x'.repeat(33)}x`,
  zero: `xx ${'x'.repeat(31)}x`,
};

/** Tunnel types and what they allow of tun-port, tun-nocsum, tun-csum, tun-remcsum. */
const TUN_NAMES = ['ipip', 'gue', 'gre'] as const;
const TUN_OPTS: OptName[] = ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];
const TUN_MATRIX = ['xxxx', '+111', 'x11x'];

type Tag =
  | 'A'
  | 'E'
  | 'D'
  | 'C'
  | 'L'
  | 'l'
  | 'Z'
  | 'a'
  | 'e'
  | 'd'
  | 'set'
  | 'h'
  | 'v'
  | 'R'
  | 'S'
  | 'start-daemon'
  | 'stop-daemon'
  | 't'
  | 'u'
  | 'sctp'
  | 'f'
  | 's'
  | 'p'
  | 'M'
  | 'r'
  | 'm'
  | 'i'
  | 'g'
  | 'w'
  | 'x'
  | 'y'
  | 'n'
  | 'c'
  | 'mcast-interface'
  | 'syncid'
  | 'timeout'
  | 'daemon'
  | 'stats'
  | 'rate'
  | 'thresholds'
  | 'persistent-conn'
  | 'nosort'
  | 'sort'
  | 'X'
  | '6'
  | 'o'
  | 'pe'
  | 'b'
  | 'mcast-group'
  | 'mcast-port'
  | 'mcast-ttl'
  | 'sync-maxlen'
  | 'tun-info'
  | 'tun-type'
  | 'tun-port'
  | 'tun-nocsum'
  | 'tun-csum'
  | 'tun-remcsum'
  | 'json'
  | 'proxy';

const IPVSADM_TABLE: PoptOption<Tag>[] = [
  { long: 'add-service', short: 'A', arg: 'none', tag: 'A' },
  { long: 'edit-service', short: 'E', arg: 'none', tag: 'E' },
  { long: 'delete-service', short: 'D', arg: 'none', tag: 'D' },
  { long: 'clear', short: 'C', arg: 'none', tag: 'C' },
  { long: 'list', short: 'L', arg: 'none', tag: 'L' },
  { long: 'list', short: 'l', arg: 'none', tag: 'l' },
  { long: 'zero', short: 'Z', arg: 'none', tag: 'Z' },
  { long: 'add-server', short: 'a', arg: 'none', tag: 'a' },
  { long: 'edit-server', short: 'e', arg: 'none', tag: 'e' },
  { long: 'delete-server', short: 'd', arg: 'none', tag: 'd' },
  { long: 'set', arg: 'none', tag: 'set' },
  { long: 'help', short: 'h', arg: 'none', tag: 'h' },
  { long: 'version', short: 'v', arg: 'none', tag: 'v' },
  { long: 'restore', short: 'R', arg: 'none', tag: 'R' },
  { long: 'save', short: 'S', arg: 'none', tag: 'S' },
  { long: 'start-daemon', arg: 'required', tag: 'start-daemon' },
  { long: 'stop-daemon', arg: 'required', tag: 'stop-daemon' },
  { long: 'tcp-service', short: 't', arg: 'required', tag: 't' },
  { long: 'udp-service', short: 'u', arg: 'required', tag: 'u' },
  { long: 'sctp-service', arg: 'required', tag: 'sctp' },
  { long: 'fwmark-service', short: 'f', arg: 'required', tag: 'f' },
  { long: 'scheduler', short: 's', arg: 'required', tag: 's' },
  { long: 'persistent', short: 'p', arg: 'optional', tag: 'p' },
  { long: 'netmask', short: 'M', arg: 'required', tag: 'M' },
  { long: 'real-server', short: 'r', arg: 'required', tag: 'r' },
  { long: 'masquerading', short: 'm', arg: 'none', tag: 'm' },
  { long: 'ipip', short: 'i', arg: 'none', tag: 'i' },
  { long: 'gatewaying', short: 'g', arg: 'none', tag: 'g' },
  { long: 'weight', short: 'w', arg: 'required', tag: 'w' },
  { long: 'u-threshold', short: 'x', arg: 'required', tag: 'x' },
  { long: 'l-threshold', short: 'y', arg: 'required', tag: 'y' },
  { long: 'numeric', short: 'n', arg: 'none', tag: 'n' },
  { long: 'connection', short: 'c', arg: 'none', tag: 'c' },
  { long: 'mcast-interface', arg: 'required', tag: 'mcast-interface' },
  { long: 'syncid', arg: 'required', tag: 'syncid' },
  { long: 'timeout', arg: 'none', tag: 'timeout' },
  { long: 'daemon', arg: 'none', tag: 'daemon' },
  { long: 'stats', arg: 'none', tag: 'stats' },
  { long: 'rate', arg: 'none', tag: 'rate' },
  { long: 'thresholds', arg: 'none', tag: 'thresholds' },
  { long: 'persistent-conn', arg: 'none', tag: 'persistent-conn' },
  { long: 'nosort', arg: 'none', tag: 'nosort' },
  { long: 'sort', arg: 'none', tag: 'sort' },
  { long: 'exact', short: 'X', arg: 'none', tag: 'X' },
  { long: 'ipv6', short: '6', arg: 'none', tag: '6' },
  { long: 'ops', short: 'o', arg: 'none', tag: 'o' },
  { long: 'pe', arg: 'required', tag: 'pe' },
  { long: 'sched-flags', short: 'b', arg: 'required', tag: 'b' },
  { long: 'mcast-group', arg: 'required', tag: 'mcast-group' },
  { long: 'mcast-port', arg: 'required', tag: 'mcast-port' },
  { long: 'mcast-ttl', arg: 'required', tag: 'mcast-ttl' },
  { long: 'sync-maxlen', arg: 'required', tag: 'sync-maxlen' },
  { long: 'tun-info', arg: 'none', tag: 'tun-info' },
  { long: 'tun-type', arg: 'required', tag: 'tun-type' },
  { long: 'tun-port', arg: 'required', tag: 'tun-port' },
  { long: 'tun-nocsum', arg: 'none', tag: 'tun-nocsum' },
  { long: 'tun-csum', arg: 'none', tag: 'tun-csum' },
  { long: 'tun-remcsum', arg: 'none', tag: 'tun-remcsum' },
];

/** vsadm adds --json (listings as JSON) and --proxy (tsvs's full-proxy forwarding). */
const VSADM_TABLE: PoptOption<Tag>[] = [
  ...IPVSADM_TABLE,
  { long: 'json', arg: 'none', tag: 'json' },
  { long: 'proxy', arg: 'none', tag: 'proxy' },
];

export interface Format {
  numeric: boolean;
  rule: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
  json: boolean;
}

export function emptyFormat(): Format {
  return {
    numeric: false,
    rule: false,
    stats: false,
    rate: false,
    thresholds: false,
    persistentConn: false,
    nosort: false,
    exact: false,
    tunInfo: false,
    json: false,
  };
}

/** ipvs_service_t as ipvsadm fills it (af 0 = not set yet). */
export interface SvcEntry {
  af: 0 | 4 | 6;
  protocol: number;
  addr: IpAddr | null;
  port: number;
  fwmark: number;
  schedName: string;
  flags: number;
  timeout: number;
  /** IPv4: mask as an unsigned number (host order); IPv6: prefix length. */
  netmask: number;
  peName: string;
}

export interface DestEntry {
  af: 0 | 4 | 6;
  addr: IpAddr | null;
  port: number;
  connFlags: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

export interface DaemonEntry {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  syncMaxlen: number;
  mcastGroup: string | null;
  mcastPort: number;
  mcastTtl: number;
}

export interface CommandEntry {
  cmd: CmdName;
  svc: SvcEntry;
  dest: DestEntry;
  timeouts: { tcp: number; tcpfin: number; udp: number };
  daemon: DaemonEntry;
  /** options[i]: option index i was given. */
  options: boolean[];
  format: Format;
}

export type ParseResult = { kind: 'command'; ce: CommandEntry } | { kind: 'help' } | { kind: 'version' } | { kind: 'popt-error' };

export interface ParseContext {
  err: ErrorSink;
  resolver: NameResolver;
  flavor: Flavor;
  /** argv[0], for the "Try ..." line. */
  program: string;
}

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;
/** C strings of fixed size: what fits after strncpy/snprintf. */
const SCHEDNAME_MAX = 15;
const PENAME_MAX = 15;
const IFNAME_MAX = 15;
const SCHED_FLAGS_ARG_MAX = 127;

function newEntry(): CommandEntry {
  return {
    cmd: 'list',
    svc: { af: 0, protocol: 0, addr: null, port: 0, fwmark: 0, schedName: '', flags: 0, timeout: 0, netmask: 0xffffffff, peName: '' },
    dest: { af: 0, addr: null, port: 0, connFlags: FWD_DROUTE, weight: 1, uThreshold: 0, lThreshold: 0, tunType: TUN_TYPE_IPIP, tunPort: 0, tunFlags: TUN_F_NOCSUM },
    timeouts: { tcp: 0, tcpfin: 0, udp: 0 },
    daemon: { state: 'master', mcastIfn: '', syncid: 0, syncMaxlen: 0, mcastGroup: null, mcastPort: 0, mcastTtl: 0 },
    options: new Array(OPT_NAMES.length).fill(false),
    format: emptyFormat(),
  };
}

interface ParsedAddress {
  result: number;
  af: 4 | 6;
  addr: IpAddr;
  port: number | null;
}

/**
 * parse_service: "[v6]:port", a bare IPv6 literal, or host[:port] split at the last colon with
 * the host as inet_aton text or an IPv4 host name. The port is decimal or a service name of
 * `protocol`. Returns null for SERVICE_NONE.
 */
export async function parseServiceAddress(text: string, protocol: number, resolver: NameResolver): Promise<ParsedAddress | null> {
  if (allDigits(text)) return null;
  let buf = text;
  let portText: string | null = null;
  if (buf.startsWith('[')) {
    buf = buf.slice(1);
    const close = buf.indexOf(']');
    if (close < 0) return null;
    const after = buf.slice(close + 1);
    buf = buf.slice(0, close);
    if (!after.startsWith(':')) return null;
    portText = after.slice(1);
  }
  let af: 4 | 6;
  let addr: IpAddr;
  const v6 = inetPton6(buf);
  if (v6) {
    af = 6;
    addr = v6;
  } else {
    // the port is looked for again inside what is left, even after "[...]"
    const colon = buf.lastIndexOf(':');
    portText = colon >= 0 ? buf.slice(colon + 1) : null;
    const host = colon >= 0 ? buf.slice(0, colon) : buf;
    const n = inetAton(host) ?? (await resolver.hostToAddr(host));
    if (n === null) return null;
    af = 4;
    addr = IpAddr.v4(n);
  }
  let result = SERVICE_ADDR;
  let port: number | null = null;
  if (portText !== null) {
    result |= SERVICE_PORT;
    const n = stringToNumber(portText, 0, 65535);
    if (n !== -1) {
      port = n;
    } else {
      const proto = protoForServices(protocol);
      const p = proto ? resolver.serviceToPort(portText, proto) : null;
      if (p === null) return null;
      port = p;
    }
  }
  return { result, af, addr, port };
}

/** parse_sched_flags: the SVC_F_SCHED* bits of a comma list, checked against the scheduler. */
function parseSchedFlags(ctx: ParseContext, sched: string, arg: string): number {
  const name = sched || 'wlc';
  let flags = 0;
  const list = arg.split(',').filter((f) => f !== '');
  if (list.length === 0) list.push('');
  for (const flag of list) {
    let need: string | null = null;
    if (flag === 'flag-1') flags |= SVC_F_SCHED1;
    else if (flag === 'flag-2') flags |= SVC_F_SCHED2;
    else if (flag === 'flag-3') flags |= SVC_F_SCHED3;
    else if (flag === 'sh-fallback' || flag === 'mh-fallback') {
      flags |= SVC_F_SCHED1;
      need = flag.slice(0, 2);
    } else if (flag === 'sh-port' || flag === 'mh-port') {
      flags |= SVC_F_SCHED2;
      need = flag.slice(0, 2);
    } else failWith(ctx.err, 2, `invalid scheduler flag \`${flag}'`);
    if (need !== null && name !== need) failWith(ctx.err, 2, `incompatible scheduler flag \`${flag}'`);
  }
  return flags;
}

function setOption(ctx: ParseContext, ce: CommandEntry, opt: number): void {
  if (ce.options[opt]) failWith(ctx.err, 2, `multiple '${OPT_NAMES[opt]}' options specified`);
  ce.options[opt] = true;
}

function parseTimeout(ctx: ParseContext, text: string | null, min: number, max: number): number {
  if (text === null) return IPVS_SVC_PERSISTENT_TIMEOUT;
  const n = stringToNumber(text, min, max);
  if (n === -1) failWith(ctx.err, 2, `invalid timeout value \`${text}' specified`);
  return n;
}

function parseFwmark(ctx: ParseContext, text: string): number {
  const v = strtolWhole(text);
  if (v === null || v <= 0n || v > 0xffffffffn) failWith(ctx.err, 2, `invalid fwmark value \`${text}' specified`);
  return Number(v);
}

function cmdForTag(tag: Tag): CmdName | null {
  switch (tag) {
    case 'A':
      return 'add-service';
    case 'E':
      return 'edit-service';
    case 'D':
      return 'delete-service';
    case 'a':
      return 'add-server';
    case 'e':
      return 'edit-server';
    case 'd':
      return 'delete-server';
    case 'C':
      return 'flush';
    case 'L':
    case 'l':
      return 'list';
    case 'Z':
      return 'zero';
    case 'set':
      return 'set';
    case 'R':
      return 'restore';
    case 'S':
      return 'save';
    case 'start-daemon':
      return 'start-daemon';
    case 'stop-daemon':
      return 'stop-daemon';
    default:
      return null;
  }
}

/** Everything of parse_options: returns the command, or help/version, or a popt error. */
export async function parseOptions(args: readonly string[], ctx: ParseContext): Promise<ParseResult> {
  const ce = newEntry();
  const popt = new PoptContext<Tag>(args, ctx.flavor === 'vsadm' ? VSADM_TABLE : IPVSADM_TABLE);
  const tryHelp = (): never => {
    ctx.err.write(tryHelpText(ctx.program));
    throw new Exit(255);
  };

  const first = popt.getNextOpt();
  if (first.kind !== 'option') return tryHelp();
  if (first.tag === 'h') return { kind: 'help' };
  if (first.tag === 'v') return { kind: 'version' };
  const cmd = cmdForTag(first.tag);
  if (cmd === null) return tryHelp();
  ce.cmd = cmd;
  if (first.tag === 'start-daemon' || first.tag === 'stop-daemon') {
    const arg = first.arg ?? '';
    if (arg === 'master' || arg === 'backup') ce.daemon.state = arg;
    else failWith(ctx.err, 2, first.tag === 'start-daemon' ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified');
  }

  let schedFlagsArg = '';
  for (;;) {
    const r = popt.getNextOpt();
    if (r.kind === 'end') break;
    if (r.kind === 'error') {
      ctx.err.write(`${popt.badOption()}: ${poptStrerror(r.code)}\n`);
      return { kind: 'popt-error' };
    }
    const arg = r.arg ?? '';
    switch (r.tag) {
      case 't':
      case 'u':
      case 'sctp': {
        setOption(ctx, ce, OPT['service-address']);
        ce.svc.protocol = r.tag === 't' ? IPPROTO_TCP : r.tag === 'u' ? IPPROTO_UDP : IPPROTO_SCTP;
        const p = await parseServiceAddress(arg, ce.svc.protocol, ctx.resolver);
        if (!p) failWith(ctx.err, 2, 'illegal virtual server address[:port] specified');
        ce.svc.af = p.af;
        ce.svc.addr = p.addr;
        if (p.af === 6) ce.svc.netmask = 128;
        if (p.port !== null) ce.svc.port = p.port;
        break;
      }
      case 'f':
        setOption(ctx, ce, OPT['service-address']);
        // the protocol is not used for fwmark services, but the kernel wants a valid one
        ce.svc.af = 4;
        ce.svc.protocol = IPPROTO_TCP;
        ce.svc.fwmark = parseFwmark(ctx, arg);
        break;
      case 's':
        setOption(ctx, ce, OPT.scheduler);
        ce.svc.schedName = arg.slice(0, SCHEDNAME_MAX);
        break;
      case 'p':
        setOption(ctx, ce, OPT.persistent);
        ce.svc.flags |= SVC_F_PERSISTENT;
        ce.svc.timeout = parseTimeout(ctx, r.arg, 1, MAX_PERSISTENT_TIMEOUT);
        break;
      case 'M':
        setOption(ctx, ce, OPT.netmask);
        // read according to the family known so far: -M before an IPv6 address is read as IPv4
        if (ce.svc.af !== 6) {
          const n = inetAton(arg) ?? (await ctx.resolver.hostToAddr(arg));
          if (n === null) failWith(ctx.err, 2, 'illegal virtual server persistent mask specified');
          ce.svc.netmask = n;
        } else {
          const n = atoi(arg) >>> 0;
          if (n < 1 || n > 128) failWith(ctx.err, 2, 'illegal ipv6 netmask specified');
          ce.svc.netmask = n;
        }
        break;
      case 'r': {
        setOption(ctx, ce, OPT['real-server']);
        const p = await parseServiceAddress(arg, ce.svc.protocol, ctx.resolver);
        if (!p) failWith(ctx.err, 2, 'illegal real server address[:port] specified');
        ce.dest.af = p.af;
        ce.dest.addr = p.addr;
        // no port given: the service's port (as known at this point)
        ce.dest.port = p.port ?? ce.svc.port;
        break;
      }
      case 'i':
      case 'g':
      case 'm':
      case 'proxy':
        setOption(ctx, ce, OPT['forwarding-method']);
        ce.dest.connFlags = r.tag === 'i' ? FWD_TUNNEL : r.tag === 'g' ? FWD_DROUTE : r.tag === 'm' ? FWD_MASQ : FWD_PROXY;
        break;
      case 'w': {
        setOption(ctx, ce, OPT.weight);
        // Debian's ipvsadm takes weights up to INT_MAX (upstream 1.31: 65535)
        const n = stringToNumber(arg, 0, INT_MAX);
        if (n === -1) failWith(ctx.err, 2, 'illegal weight specified');
        ce.dest.weight = n;
        break;
      }
      case 'x': {
        setOption(ctx, ce, OPT['u-threshold']);
        const n = stringToNumber(arg, 0, INT_MAX);
        if (n === -1) failWith(ctx.err, 2, 'illegal u_threshold specified');
        ce.dest.uThreshold = n;
        break;
      }
      case 'y': {
        setOption(ctx, ce, OPT['l-threshold']);
        const n = stringToNumber(arg, 0, INT_MAX);
        if (n === -1) failWith(ctx.err, 2, 'illegal l_threshold specified');
        ce.dest.lThreshold = n;
        break;
      }
      case 'c':
        setOption(ctx, ce, OPT.connection);
        break;
      case 'n':
        setOption(ctx, ce, OPT.numeric);
        ce.format.numeric = true;
        break;
      case 'mcast-interface':
        setOption(ctx, ce, OPT['mcast-interface']);
        ce.daemon.mcastIfn = arg.slice(0, IFNAME_MAX);
        break;
      case 'syncid': {
        setOption(ctx, ce, OPT.syncid);
        const n = stringToNumber(arg, 0, 255);
        if (n === -1) failWith(ctx.err, 2, 'illegal syncid specified');
        ce.daemon.syncid = n;
        break;
      }
      case 'timeout':
        setOption(ctx, ce, OPT.timeout);
        break;
      case 'daemon':
        setOption(ctx, ce, OPT.daemon);
        break;
      case 'stats':
        setOption(ctx, ce, OPT.stats);
        ce.format.stats = true;
        break;
      case 'rate':
        setOption(ctx, ce, OPT.rate);
        ce.format.rate = true;
        break;
      case 'thresholds':
        setOption(ctx, ce, OPT.thresholds);
        ce.format.thresholds = true;
        break;
      case 'persistent-conn':
        setOption(ctx, ce, OPT['persistent-conn']);
        ce.format.persistentConn = true;
        break;
      case 'nosort':
        setOption(ctx, ce, OPT.nosort);
        ce.format.nosort = true;
        break;
      case 'sort':
        // sorting is the default; accepted for compatibility
        break;
      case 'X':
        setOption(ctx, ce, OPT.exact);
        ce.format.exact = true;
        break;
      case '6':
        if (ce.svc.fwmark) {
          ce.svc.af = 6;
          ce.svc.netmask = 128;
        } else {
          failWith(ctx.err, 2, '-6 used before -f\n');
        }
        break;
      case 'o':
        setOption(ctx, ce, OPT.ops);
        ce.svc.flags |= SVC_F_ONEPACKET;
        break;
      case 'pe':
        setOption(ctx, ce, OPT.pe);
        ce.svc.peName = arg.slice(0, PENAME_MAX);
        break;
      case 'b':
        setOption(ctx, ce, OPT['sched-flags']);
        schedFlagsArg = arg.slice(0, SCHED_FLAGS_ARG_MAX);
        break;
      case 'mcast-group':
        setOption(ctx, ce, OPT['mcast-group']);
        if (arg.includes(':')) {
          const a = inetPton6(arg);
          if (!a || a.w0 >>> 24 !== 0xff) failWith(ctx.err, 2, `invalid IPv6 mcast-group \`${arg}'`);
          ce.daemon.mcastGroup = a.toString();
        } else {
          const n = inetPton4(arg);
          if (n === null || n >>> 28 !== 0xe) failWith(ctx.err, 2, `invalid IPv4 mcast-group \`${arg}'`);
          ce.daemon.mcastGroup = IpAddr.v4(n).toString();
        }
        break;
      case 'mcast-port': {
        setOption(ctx, ce, OPT['mcast-port']);
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) failWith(ctx.err, 2, 'illegal mcast-port specified');
        ce.daemon.mcastPort = n;
        break;
      }
      case 'mcast-ttl': {
        setOption(ctx, ce, OPT['mcast-ttl']);
        const n = stringToNumber(arg, 1, 255);
        if (n === -1) failWith(ctx.err, 2, 'illegal mcast-ttl specified');
        ce.daemon.mcastTtl = n;
        break;
      }
      case 'sync-maxlen': {
        setOption(ctx, ce, OPT['sync-maxlen']);
        const n = stringToNumber(arg, 1, 65535 - 20 - 8);
        if (n === -1) failWith(ctx.err, 2, 'illegal sync-maxlen specified');
        ce.daemon.syncMaxlen = n;
        break;
      }
      case 'tun-info':
        setOption(ctx, ce, OPT['tun-info']);
        ce.format.tunInfo = true;
        break;
      case 'tun-type': {
        setOption(ctx, ce, OPT['tun-type']);
        const t = (TUN_NAMES as readonly string[]).indexOf(arg);
        if (t < 0) failWith(ctx.err, 2, 'illegal tunnel type specified');
        ce.dest.tunType = t;
        break;
      }
      case 'tun-port': {
        setOption(ctx, ce, OPT['tun-port']);
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) failWith(ctx.err, 2, 'illegal tunnel port specified');
        ce.dest.tunPort = n;
        break;
      }
      case 'tun-nocsum':
        setOption(ctx, ce, OPT['tun-nocsum']);
        ce.dest.tunFlags |= TUN_F_NOCSUM;
        break;
      case 'tun-csum':
        setOption(ctx, ce, OPT['tun-csum']);
        ce.dest.tunFlags |= TUN_F_CSUM;
        break;
      case 'tun-remcsum':
        setOption(ctx, ce, OPT['tun-remcsum']);
        ce.dest.tunFlags |= TUN_F_REMCSUM;
        break;
      case 'json':
        setOption(ctx, ce, OPT.json);
        ce.format.json = true;
        break;
      default:
        // a second command (or -h/-v after the command)
        failWith(ctx.err, 2, `invalid option \`${popt.badOption()}'`);
    }
  }

  if (ce.cmd === 'set') {
    const a = popt.getArg();
    const b = a === null ? null : popt.getArg();
    const c = b === null ? null : popt.getArg();
    if (a === null || b === null || c === null) failWith(ctx.err, 2, '--set option requires 3 timeout values');
    ce.timeouts.tcp = parseTimeout(ctx, a, 0, MAX_PERSISTENT_TIMEOUT);
    ce.timeouts.tcpfin = parseTimeout(ctx, b, 0, MAX_PERSISTENT_TIMEOUT);
    ce.timeouts.udp = parseTimeout(ctx, c, 0, MAX_PERSISTENT_TIMEOUT);
  }

  const extra = popt.getArg();
  if (extra !== null) failWith(ctx.err, 2, `unexpected argument ${extra}`);

  if (schedFlagsArg) {
    ce.svc.flags &= ~(SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3);
    ce.svc.flags |= parseSchedFlags(ctx, ce.svc.schedName, schedFlagsArg);
  }
  return { kind: 'command', ce };
}

/** generic_opt_check: compulsory, illegal and mutually exclusive options, in index order. */
function checkOptions(ctx: ParseContext, ce: CommandEntry): void {
  const row = MATRIX[ce.cmd];
  let last = -1;
  for (let j = 0; j < OPT_NAMES.length; j++) {
    const rule = row[j];
    if (!ce.options[j]) {
      if (rule === '+') failWith(ctx.err, 2, `You need to supply the '${OPT_NAMES[j]}' option for the '${ce.cmd}' command`);
      continue;
    }
    if (rule === 'x') failWith(ctx.err, 2, `Illegal '${OPT_NAMES[j]}' option with the '${ce.cmd}' command`);
    if (rule === '1') {
      if (last < 0) {
        last = j;
        continue;
      }
      failWith(ctx.err, 2, `The option '${OPT_NAMES[j]}' conflicts with the '${OPT_NAMES[last]}' option in the '${ce.cmd}' command`);
    }
  }
}

/** tunnel_opt_check: what the tunnel type allows of the tunnel options. */
function checkTunnelOptions(ctx: ParseContext, ce: CommandEntry): void {
  const type = ce.dest.tunType;
  const row = TUN_MATRIX[type] ?? 'xxxx';
  let last = -1;
  for (let j = 0; j < TUN_OPTS.length; j++) {
    const k = OPT[TUN_OPTS[j]!];
    const rule = row[j];
    if (!ce.options[k]) {
      if (rule === '+') failWith(ctx.err, 2, `You need to supply the '${OPT_NAMES[k]}' option for the '${TUN_NAMES[type]}' tunnel type`);
      continue;
    }
    if (rule === 'x') failWith(ctx.err, 2, `Illegal '${OPT_NAMES[k]}' option with the '${TUN_NAMES[type]}' tunnel type`);
    if (rule === '1') {
      if (last < 0) {
        last = k;
        continue;
      }
      failWith(ctx.err, 2, `The option '${OPT_NAMES[k]}' conflicts with the '${OPT_NAMES[last]}' option in the '${TUN_NAMES[type]}' tunnel type`);
    }
  }
}

/** The checks of process_options that follow parsing; fills the defaults ipvsadm applies. */
export function validateCommand(ctx: ParseContext, ce: CommandEntry): void {
  checkOptions(ctx, ce);
  if (ce.cmd === 'add-service' || ce.cmd === 'edit-service') {
    if (!ce.svc.fwmark && !ce.svc.port && !(ce.svc.flags & SVC_F_PERSISTENT)) failWith(ctx.err, 2, 'Zero port specified for non-persistent service');
    if (ce.svc.flags & SVC_F_ONEPACKET && !ce.svc.fwmark && ce.svc.protocol !== IPPROTO_UDP) {
      failWith(ctx.err, 2, 'One-Packet Scheduling is only for UDP virtual services');
    }
    if (ce.svc.schedName === '') ce.svc.schedName = 'wlc';
  }
  if (ce.cmd === 'start-daemon' && ce.daemon.mcastIfn === '') ce.daemon.mcastIfn = 'eth0';
  if (ce.cmd === 'add-server' || ce.cmd === 'edit-server') {
    const fwd = ce.dest.connFlags & FWD_MASK;
    // DR and tunnel servers receive the packet unchanged: their port is the service's
    if (!ce.svc.fwmark && (fwd === FWD_TUNNEL || fwd === FWD_DROUTE)) ce.dest.port = ce.svc.port;
    if (ce.dest.af !== ce.svc.af && fwd !== FWD_TUNNEL) failWith(ctx.err, 2, 'Different address family is allowed only for tunneling servers');
    const tunOpts = ['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'] as const;
    if (tunOpts.some((o) => ce.options[OPT[o]]) && fwd !== FWD_TUNNEL) failWith(ctx.err, 2, 'Tunnel options conflict with forward method');
    checkTunnelOptions(ctx, ce);
  }
  if (ce.cmd === 'list') {
    const o = ce.options;
    if (((o[OPT.connection] || o[OPT.timeout] || o[OPT.daemon]) && (o[OPT.stats] || o[OPT.rate] || o[OPT.thresholds])) || ((o[OPT.timeout] || o[OPT.daemon]) && o[OPT['persistent-conn']])) {
      failWith(ctx.err, 2, 'options conflicts in the list command');
    }
  }
}

export function hasOption(ce: CommandEntry, name: OptName): boolean {
  return ce.options[OPT[name]] === true;
}
