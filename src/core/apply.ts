// Apply a whole desired table by difference: what reload (SIGHUP, config API) and vsadm's
// restore use. Only services and real servers that change are touched, so untouched services
// keep their scheduler state and every established connection. The desired table is first
// built on a scratch director: if any entry is invalid, nothing changes.

import { IpAddr } from './addr.js';
import { ManualClock } from './clock.js';
import { Director } from './director.js';
import { IpvsError } from './errors.js';
import type { DestSpec, ServiceSpec, TimeoutsSpec } from './model.js';
import { type Dest, type Service, serviceKey } from './service.js';

export interface DesiredService extends ServiceSpec {
  /** Real servers in the order they are added (the table lists them newest first). */
  dests: DestSpec[];
}

export interface DesiredTable {
  services: DesiredService[];
  timeouts?: TimeoutsSpec;
}

export interface ApplyOptions {
  /**
   * Lets the owner adjust a configured real server before it is compared and applied (e.g. the
   * health checker keeps a failed server at weight 0 or out of the table): return the spec to
   * apply, or null to leave the server out.
   */
  destOverride?: (serviceKey: string, dest: DestSpec) => DestSpec | null;
  /** Real servers the owner keeps in a service beyond the configured ones (a sorry server). */
  extraDests?: (serviceKey: string) => DestSpec[];
}

export interface ApplyReport {
  addedServices: string[];
  editedServices: string[];
  deletedServices: string[];
  addedDests: string[];
  editedDests: string[];
  deletedDests: string[];
  unchanged: number;
}

/** Where in the desired table a problem is: "services[2].dests[0]". */
export class ApplyError extends IpvsError {
  constructor(
    readonly path: string,
    cause: IpvsError,
  ) {
    super(cause.errno, `${path}: ${cause.message}`);
  }
}

/** Run f, naming `path` in any IpvsError it throws. */
function at(path: string, f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (e instanceof IpvsError) throw new ApplyError(path, e);
    throw e;
  }
}

function validate(desired: DesiredTable): void {
  const scratch = new Director({ now: new ManualClock().now });
  for (const [i, s] of desired.services.entries()) {
    at(`services[${i}]`, () => scratch.addService(s));
    for (const [j, d] of s.dests.entries()) at(`services[${i}].dests[${j}]`, () => scratch.addDest(s, d));
  }
  if (desired.timeouts) at('timeouts', () => scratch.setTimeouts(desired.timeouts!));
}

function sameService(cur: Service, want: ServiceSpec): boolean {
  return (
    cur.schedName === want.schedName &&
    cur.flags === ((want.flags | 0x0002) >>> 0) &&
    cur.timeout === want.timeout >>> 0 &&
    cur.netmask === want.netmask >>> 0 &&
    cur.peName === (want.peName ?? '') &&
    (want.proxyProtocol === undefined || cur.proxyProtocol === want.proxyProtocol)
  );
}

function sameDest(cur: Dest, want: DestSpec): boolean {
  return (
    (cur.connFlags & 0x7) === (want.connFlags & 0x7) &&
    cur.weight === want.weight &&
    cur.uThreshold === want.uThreshold &&
    cur.lThreshold === want.lThreshold &&
    cur.tunType === (want.tunType ?? 0) &&
    cur.tunPort === (want.tunPort ?? 0) &&
    cur.tunFlags === (want.tunFlags ?? 0)
  );
}

export function applyTable(director: Director, desiredIn: DesiredTable, opts: ApplyOptions = {}): ApplyReport {
  validate(desiredIn);
  const { destOverride: override, extraDests: extra } = opts;
  const desired: DesiredTable =
    override || extra
      ? {
          ...desiredIn,
          services: desiredIn.services.map((s) => {
            const key = keyOf(s);
            const dests = override ? s.dests.map((d) => override(key, d)).filter((d): d is DestSpec => d !== null) : [...s.dests];
            for (const x of extra?.(key) ?? []) if (!dests.some((d) => d.port === x.port && canonical(d.addr) === canonical(x.addr))) dests.push(x);
            return { ...s, dests };
          }),
        }
      : desiredIn;
  const report: ApplyReport = { addedServices: [], editedServices: [], deletedServices: [], addedDests: [], editedDests: [], deletedDests: [], unchanged: 0 };
  const wanted = new Map<string, DesiredService>();
  for (const s of desired.services) wanted.set(keyOf(s), s);
  for (const cur of [...director.table.services()]) {
    if (!wanted.has(cur.key)) {
      director.delService(specKey(cur));
      report.deletedServices.push(cur.toString());
    }
  }
  for (const [key, want] of wanted) {
    const cur = director.table.find(want);
    if (!cur) {
      director.addService(want);
      for (const d of want.dests) director.addDest(want, d);
      report.addedServices.push(key);
      report.addedDests.push(...want.dests.map((d) => `${key} -> ${d.addr}:${d.port}`));
      continue;
    }
    if (!sameService(cur, want)) {
      director.editService(want);
      report.editedServices.push(key);
    } else {
      report.unchanged++;
    }
    const wantDests = new Map(want.dests.map((d) => [`${canonical(d.addr)}|${d.port}`, d]));
    for (const d of [...cur.dests]) {
      if (!wantDests.has(`${d.addr}|${d.port}`)) {
        director.delDest(want, { af: d.af, addr: d.addr.toString(), port: d.port });
        report.deletedDests.push(`${key} -> ${d}`);
      }
    }
    for (const d of want.dests) {
      const existing = cur.dests.find((x) => x.port === d.port && x.addr.toString() === canonical(d.addr));
      if (!existing) {
        director.addDest(want, d);
        report.addedDests.push(`${key} -> ${d.addr}:${d.port}`);
      } else if (!sameDest(existing, d)) {
        director.editDest(want, d);
        report.editedDests.push(`${key} -> ${d.addr}:${d.port}`);
      }
    }
  }
  if (desired.timeouts) director.setTimeouts(desired.timeouts);
  return report;
}

/** Canonical address text, so "2001:db8:0::1" and "2001:db8::1" compare equal. */
function canonical(a: string): string {
  return IpAddr.tryParse(a)?.toString() ?? a;
}

function specKey(s: Service) {
  return { af: s.af, protocol: s.protocol, addr: s.addr.toString(), port: s.port, fwmark: s.fwmark };
}

function keyOf(s: ServiceSpec): string {
  const addr = s.fwmark ? new IpAddr(s.af, 0) : (IpAddr.tryParse(s.addr) ?? new IpAddr(s.af, 0));
  return serviceKey(s.af, s.protocol, addr, s.port, s.fwmark);
}
