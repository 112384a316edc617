// vsadm: ipvsadm 1.31 over the tsvs management API. runVsadm is main() and process_options():
// it parses a command line (parse.ts), runs it against the director, prints what ipvsadm prints
// and returns the exit status. Under the program name "ipvsadm" it is ipvsadm exactly; under any
// other name it is vsadm, which adds --json and --proxy and has its own version line.

import { basename } from 'node:path';
import { IpAddr } from '../../core/addr.js';
import type { DestInfo, InfoSnapshot, ServiceInfo, ServiceKeySpec, ServiceSpec } from '../../core/model.js';
import type { DaemonSpec, IpvsApi } from '../../control/ipvs-api.js';
import { connTitle, formatConn, formatDaemons, formatServiceEntry, formatTimeouts, listTitle, Names, versionHeader } from './format.js';
import { helpText, versionLine } from './help.js';
import { connectionsJson, daemonsJson, servicesJson, timeoutsJson } from './json.js';
import { describeApiError, type ErrorSink, Exit, type IpvsOp, tryHelpText } from './messages.js';
import { type NameResolver, SystemResolver } from './names.js';
import { type CommandEntry, emptyFormat, type Flavor, type Format, hasOption, type ParseContext, parseOptions, type SvcEntry, validateCommand } from './parse.js';
import { CharReader, restoreTable } from './restore.js';
import { ShadowApi } from './shadow.js';
import { formatSaveEntry } from './save.js';
import { sortDests, sortServices } from './sort.js';

export interface VsadmIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  /** What -R reads: the whole text, or a stream of chunks (process.stdin). */
  stdin: string | AsyncIterable<string | Uint8Array>;
  /** The program name as invoked: messages quote it, and "ipvsadm" selects exact ipvsadm behaviour. */
  argv0: string;
  /** Host and service names; the system's resolver when absent. */
  resolver?: NameResolver;
}

/** ipvsadm when installed under that name, vsadm otherwise. */
export function flavorOf(argv0: string): Flavor {
  return basename(argv0) === 'ipvsadm' ? 'ipvsadm' : 'vsadm';
}

/** stdout is written in large pieces (C's full buffering), and always flushed at the end. */
class BufferedWriter {
  private parts: string[] = [];
  private size = 0;

  constructor(private readonly target: { write(chunk: string): unknown }) {}

  write(s: string): void {
    if (!s) return;
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 65536) this.flush();
  }

  flush(): void {
    if (!this.parts.length) return;
    this.target.write(this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}

interface RunContext {
  api: IpvsApi;
  io: VsadmIo;
  out: BufferedWriter;
  err: ErrorSink;
  resolver: NameResolver;
  flavor: Flavor;
  info: InfoSnapshot;
  stdin: CharReader | null;
}

const MIN_IPVS_VERSION = 0x010104;

function versionCode(v: string): number {
  const [a = 0, b = 0, c = 0] = v.split('.').map((x) => Number.parseInt(x, 10) || 0);
  return (a << 16) | (b << 8) | c;
}

export async function runVsadm(argv: string[], io: VsadmIo, api: IpvsApi): Promise<number> {
  const out = new BufferedWriter(io.stdout);
  const err: ErrorSink = { write: (s: string) => void io.stderr.write(s) };
  try {
    let info: InfoSnapshot;
    try {
      info = await api.getInfo();
    } catch (e) {
      err.write(`Can't initialize ipvs: ${describeApiError('get_info', e)}\nAre you sure that IP Virtual Server is built in the kernel or as module?\n`);
      return 2;
    }
    const code = versionCode(info.version);
    if (code < MIN_IPVS_VERSION) {
      const v = `${code >> 16}.${(code >> 8) & 255}.${code & 255}`;
      err.write(`Warning: IPVS version mismatch: \n  Kernel compiled with IPVS version ${v}\n  ipvsadm v1.31  requires minimum IPVS version 1.1.4\n\n`);
    }
    const rc: RunContext = { api, io, out, err, resolver: io.resolver ?? new SystemResolver(), flavor: flavorOf(io.argv0), info, stdin: null };
    if (argv.length === 0) {
      // no arguments at all: the table, with names
      await listAll(rc, emptyFormat());
      return 0;
    }
    return (await processOptions(argv, rc, false)) & 0xff;
  } catch (e) {
    if (e instanceof Exit) return e.status & 0xff;
    throw e;
  } finally {
    out.flush();
  }
}

function serviceKey(svc: SvcEntry): ServiceKeySpec {
  const af = svc.af === 6 ? 6 : 4;
  return {
    af,
    protocol: svc.protocol,
    addr: svc.addr ? svc.addr.toString() : af === 6 ? '::' : '0.0.0.0',
    port: svc.port,
    fwmark: svc.fwmark,
  };
}

function serviceSpec(svc: SvcEntry): ServiceSpec {
  return { ...serviceKey(svc), schedName: svc.schedName, flags: svc.flags, timeout: svc.timeout, netmask: svc.netmask >>> 0, peName: svc.peName };
}

function daemonSpec(ce: CommandEntry): DaemonSpec {
  const d = ce.daemon;
  const spec: DaemonSpec = { state: d.state, mcastIfn: d.mcastIfn, syncid: d.syncid };
  if (d.syncMaxlen) spec.syncMaxlen = d.syncMaxlen;
  if (d.mcastGroup) spec.mcastGroup = d.mcastGroup;
  if (d.mcastPort) spec.mcastPort = d.mcastPort;
  if (d.mcastTtl) spec.mcastTtl = d.mcastTtl;
  return spec;
}

/** process_options: one command line (from argv or from a -R line); returns 0 or -1. */
async function processOptions(args: string[], rc: RunContext, readingStdin: boolean): Promise<number> {
  const pctx: ParseContext = { err: rc.err, resolver: rc.resolver, flavor: rc.flavor, program: rc.io.argv0 };
  const parsed = await parseOptions(args, pctx);
  if (parsed.kind === 'help') {
    rc.out.write(helpText(rc.io.argv0, rc.flavor));
    throw new Exit(0);
  }
  if (parsed.kind === 'version') {
    rc.out.write(versionLine(rc.flavor));
    throw new Exit(0);
  }
  if (parsed.kind === 'popt-error') return -1;
  const ce = parsed.ce;
  validateCommand(pctx, ce);

  switch (ce.cmd) {
    case 'list':
      if (hasOption(ce, 'connection')) await listConnections(rc, ce.format);
      else if (hasOption(ce, 'service-address')) await listService(rc, ce);
      else if (hasOption(ce, 'timeout')) await listTimeouts(rc, ce.format);
      else if (hasOption(ce, 'daemon')) await listDaemons(rc, ce.format);
      else await listAll(rc, ce.format);
      return 0;
    case 'restore': {
      // a -R line inside -R would read stdin again: refused like a bad command line
      if (readingStdin) {
        rc.err.write(tryHelpText(rc.io.argv0));
        throw new Exit(255);
      }
      rc.stdin ??= new CharReader(rc.io.stdin);
      // The lines run against a scratch copy of the table; vsd then applies the difference,
      // also when a line ends the restore early (the lines before it took effect in ipvsadm).
      const shadow = await ShadowApi.create(rc.api);
      const src = { ...rc, api: shadow };
      try {
        return await restoreTable(rc.stdin, rc.io.argv0, (line) => processOptions(line, src, true));
      } finally {
        await shadow.commit();
      }
    }
    case 'save':
      await listAll(rc, { ...ce.format, rule: true });
      return 0;
    default:
      return runKernelCommand(rc, ce);
  }
}

/** The commands that change the table: one API call, its error text on failure. */
async function runKernelCommand(rc: RunContext, ce: CommandEntry): Promise<number> {
  const { api } = rc;
  let op: IpvsOp;
  let call: () => Promise<void>;
  const dest = () => ({
    af: ce.dest.af === 6 ? (6 as const) : (4 as const),
    addr: (ce.dest.addr ?? IpAddr.v4(0)).toString(),
    port: ce.dest.port,
  });
  switch (ce.cmd) {
    case 'flush':
      op = 'flush';
      call = () => api.flush();
      break;
    case 'add-service':
      op = 'add_service';
      call = () => api.addService(serviceSpec(ce.svc));
      break;
    case 'edit-service':
      op = 'update_service';
      call = () => api.editService(serviceSpec(ce.svc));
      break;
    case 'delete-service':
      op = 'del_service';
      call = () => api.delService(serviceKey(ce.svc));
      break;
    case 'zero':
      op = 'zero_service';
      call = () => (hasOption(ce, 'service-address') ? api.zero(serviceKey(ce.svc)) : api.zero());
      break;
    case 'add-server':
    case 'edit-server': {
      op = ce.cmd === 'add-server' ? 'add_dest' : 'update_dest';
      const d = ce.dest;
      const spec = { ...dest(), connFlags: d.connFlags, weight: d.weight, uThreshold: d.uThreshold, lThreshold: d.lThreshold, tunType: d.tunType, tunPort: d.tunPort, tunFlags: d.tunFlags };
      call = () => (ce.cmd === 'add-server' ? api.addDest(serviceKey(ce.svc), spec) : api.editDest(serviceKey(ce.svc), spec));
      break;
    }
    case 'delete-server':
      op = 'del_dest';
      call = () => api.delDest(serviceKey(ce.svc), dest());
      break;
    case 'set':
      op = 'set_timeout';
      call = () => api.setTimeouts({ ...ce.timeouts });
      break;
    case 'start-daemon':
      op = 'start_daemon';
      call = () => api.startDaemon(daemonSpec(ce));
      break;
    case 'stop-daemon':
      op = 'stop_daemon';
      call = () => api.stopDaemon(ce.daemon.state);
      break;
    default:
      return 0;
  }
  try {
    await call();
    return 0;
  } catch (e) {
    rc.err.write(`${describeApiError(op, e)}\n`);
    return -1;
  }
}

/** A listing failed: ipvsadm prints the error and exits 1. */
function listFailed(rc: RunContext, op: IpvsOp, e: unknown): never {
  rc.err.write(`${describeApiError(op, e)}\n`);
  throw new Exit(1);
}

function orderedDests(svc: ServiceInfo, f: Format): DestInfo[] {
  return f.nosort ? svc.dests : sortDests(svc.dests);
}

/** list_all (and -S, which is list_all with the rule format). */
async function listAll(rc: RunContext, f: Format): Promise<void> {
  if (!f.rule && !f.json) rc.out.write(versionHeader(rc.info));
  let services: ServiceInfo[];
  try {
    services = await rc.api.getServices();
  } catch (e) {
    return listFailed(rc, 'get_services', e);
  }
  const ordered = f.nosort ? services : sortServices(services);
  if (f.json) {
    rc.out.write(servicesJson(rc.info, ordered.map((svc) => ({ svc, dests: orderedDests(svc, f) }))));
    return;
  }
  const names = new Names(rc.resolver, f.numeric);
  if (!f.rule) rc.out.write(listTitle(f));
  for (const svc of ordered) {
    const dests = orderedDests(svc, f);
    rc.out.write(f.rule ? await formatSaveEntry(svc, names, dests) : await formatServiceEntry(svc, f, names, dests));
  }
}

/** list_service: `-L -t|-u|-f ...`, one service without the version header. */
async function listService(rc: RunContext, ce: CommandEntry): Promise<void> {
  let svc: ServiceInfo;
  try {
    svc = await rc.api.getService(serviceKey(ce.svc));
  } catch (e) {
    return listFailed(rc, 'get_service', e);
  }
  const f = ce.format;
  if (f.json) {
    rc.out.write(servicesJson(null, [{ svc, dests: orderedDests(svc, f) }]));
    return;
  }
  rc.out.write(listTitle(f));
  rc.out.write(await formatServiceEntry(svc, f, new Names(rc.resolver, f.numeric), orderedDests(svc, f)));
}

/** list_conn: ipvsadm reads /proc/net/ip_vs_conn; here the director's connection table. */
async function listConnections(rc: RunContext, f: Format): Promise<void> {
  let conns: Awaited<ReturnType<IpvsApi['getConnections']>>;
  try {
    conns = await rc.api.getConnections();
  } catch {
    rc.err.write('cannot open file /proc/net/ip_vs_conn\n');
    throw new Exit(1);
  }
  if (f.json) {
    rc.out.write(connectionsJson(conns));
    return;
  }
  rc.out.write(connTitle(f));
  const names = new Names(rc.resolver, f.numeric);
  for (const c of conns) rc.out.write(await formatConn(c, f, names));
}

async function listTimeouts(rc: RunContext, f: Format): Promise<void> {
  let t: Awaited<ReturnType<IpvsApi['getTimeouts']>>;
  try {
    t = await rc.api.getTimeouts();
  } catch {
    // ipvsadm exits 1 without a message here
    throw new Exit(1);
  }
  rc.out.write(f.json ? timeoutsJson(t) : formatTimeouts(t));
}

async function listDaemons(rc: RunContext, f: Format): Promise<void> {
  let d: Awaited<ReturnType<IpvsApi['getDaemons']>>;
  try {
    d = await rc.api.getDaemons();
  } catch {
    throw new Exit(1);
  }
  rc.out.write(f.json ? daemonsJson(d) : formatDaemons(d));
}
