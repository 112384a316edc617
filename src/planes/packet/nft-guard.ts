// Keeps the director's own kernel away from the traffic the packet plane carries. AF_PACKET
// sees a copy of each frame; without this, the kernel would also answer or forward it (reset a
// connection to a VIP it has configured, forward a NAT reply to the client unchanged).
//
// One nftables table, `inet tsvs`, marked with a comment naming the owning process. Its
// prerouting chain runs before conntrack (priority raw - 10) and drops:
// - everything sent to a VIP the host has not configured (the plane answers for it as its host);
// - on a VIP the host has configured, only the protocols and ports of carried services;
// - replies of NAT real servers (address, protocol, port) that are not for this host, and ICMP
//   errors from those servers that are not for this host (the plane translates or routes them).
// The table is replaced atomically on every change, deleted at exit, and a table left by a
// process that died is deleted at the next start.

import type { HostTools } from './host-tools.js';
import type { ServedData } from './served.js';

export const GUARD_TABLE = 'tsvs';
/** What the plane writes in the comment of its tables (and the alias of its devices), with its pid. */
export const PLANE_MARKER = 'tsvs packet plane';
const MARKER = PLANE_MARKER;

function addrText(family: 4 | 6, w: [number, number, number, number]): string {
  if (family === 4) return [w[0] >>> 24, (w[0] >>> 16) & 255, (w[0] >>> 8) & 255, w[0] & 255].join('.');
  const g: string[] = [];
  for (const x of w) g.push(((x >>> 16) & 0xffff).toString(16), (x & 0xffff).toString(16));
  return g.join(':');
}

const PROTO: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

function set(name: string, type: string, elements: string[], interval = false): string {
  const flags = interval ? ' flags interval;' : '';
  const el = elements.length ? ` elements = { ${[...new Set(elements)].join(', ')} };` : '';
  return `  set ${name} { type ${type};${flags}${el} }\n`;
}

/** The ruleset text for `nft -f` (exported for tests). */
export function guardRuleset(d: ServedData, pid = process.pid): string {
  const by = (fam: 4 | 6) => ({
    owned: d.ownedVips.filter((v) => v.family === fam).map((v) => addrText(fam, v.words)),
    vips: d.vips.filter((v) => v.family === fam && v.port !== 0 && PROTO[v.protocol]).map((v) => `${addrText(fam, v.words)} . ${PROTO[v.protocol]} . ${v.port}`),
    vipsAny: d.vips.filter((v) => v.family === fam && v.port === 0 && PROTO[v.protocol]).map((v) => `${addrText(fam, v.words)} . ${PROTO[v.protocol]}`),
    marks: d.marks.filter((r) => r.family === fam && PROTO[r.protocol]).map((r) => `${addrText(fam, r.words)} . ${PROTO[r.protocol]} . ${r.portLo}-${r.portHi}`),
    nat: d.natServers.filter((n) => n.family === fam && n.port !== 0 && PROTO[n.protocol]).map((n) => `${addrText(fam, n.words)} . ${PROTO[n.protocol]} . ${n.port}`),
    natAny: d.natServers.filter((n) => n.family === fam && n.port === 0 && PROTO[n.protocol]).map((n) => `${addrText(fam, n.words)} . ${PROTO[n.protocol]}`),
    natSrc: d.natServers.filter((n) => n.family === fam).map((n) => addrText(fam, n.words)),
  });
  const v4 = by(4);
  const v6 = by(6);
  let t = `table inet ${GUARD_TABLE} {\n  comment "${MARKER} pid=${pid}"\n`;
  t += set('owned4', 'ipv4_addr', v4.owned) + set('owned6', 'ipv6_addr', v6.owned);
  t += set('vip4', 'ipv4_addr . inet_proto . inet_service', v4.vips) + set('vip6', 'ipv6_addr . inet_proto . inet_service', v6.vips);
  t += set('vipany4', 'ipv4_addr . inet_proto', v4.vipsAny) + set('vipany6', 'ipv6_addr . inet_proto', v6.vipsAny);
  t += set('mark4', 'ipv4_addr . inet_proto . inet_service', v4.marks, true) + set('mark6', 'ipv6_addr . inet_proto . inet_service', v6.marks, true);
  t += set('nat4', 'ipv4_addr . inet_proto . inet_service', v4.nat) + set('nat6', 'ipv6_addr . inet_proto . inet_service', v6.nat);
  t += set('natany4', 'ipv4_addr . inet_proto', v4.natAny) + set('natany6', 'ipv6_addr . inet_proto', v6.natAny);
  t += set('natsrc4', 'ipv4_addr', v4.natSrc) + set('natsrc6', 'ipv6_addr', v6.natSrc);
  t += '  chain pre {\n    type filter hook prerouting priority raw - 10; policy accept;\n';
  t += '    ip daddr @owned4 drop\n    ip6 daddr @owned6 drop\n';
  t += '    ip daddr . meta l4proto . th dport @vip4 drop\n    ip6 daddr . meta l4proto . th dport @vip6 drop\n';
  t += '    ip daddr . meta l4proto @vipany4 drop\n    ip6 daddr . meta l4proto @vipany6 drop\n';
  t += '    ip daddr . meta l4proto . th dport @mark4 drop\n    ip6 daddr . meta l4proto . th dport @mark6 drop\n';
  t += '    ip saddr . meta l4proto . th sport @nat4 fib daddr type != local drop\n';
  t += '    ip6 saddr . meta l4proto . th sport @nat6 fib daddr type != local drop\n';
  t += '    ip saddr . meta l4proto @natany4 fib daddr type != local drop\n';
  t += '    ip6 saddr . meta l4proto @natany6 fib daddr type != local drop\n';
  t += '    ip saddr @natsrc4 icmp type { destination-unreachable, source-quench, time-exceeded } fib daddr type != local drop\n';
  t += '    ip6 saddr @natsrc6 icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } fib daddr type != local drop\n';
  t += '  }\n}\n';
  return t;
}

/** Who owns `inet tsvs` by its comment (the JSON listing of nft 1.0 omits table comments), or null when there is no table. */
export function guardOwner(tools: HostTools): { pid: number } | { pid: null; comment: string } | null {
  return tableOwner(tools, GUARD_TABLE);
}

/** Who owns the plane's table `inet <table>` by its comment, or null when there is no such table. */
export function tableOwner(tools: HostTools, table: string): { pid: number } | { pid: null; comment: string } | null {
  const r = tools.runSync('nft', ['list', 'table', 'inet', table]);
  if (r.status !== 0) return null;
  const comment = /^\s*comment "([^"]*)"/m.exec(r.stdout)?.[1] ?? '';
  const m = new RegExp(`^${MARKER} pid=(\\d+)`).exec(comment);
  return m ? { pid: Number(m[1]) } : { pid: null, comment };
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class NftGuard {
  private current = '';
  private pending: ServedData | null = null;
  private running: Promise<void> | null = null;
  private installed = false;
  /** Last error of an update (reported in status). */
  lastError = '';

  constructor(private readonly tools: HostTools) {}

  /**
   * Start-up: delete a table left by a process that is gone (returns its pid), refuse when a
   * live process owns it, then install the rules for `d`. Throws with a readable message.
   */
  install(d: ServedData): { stalePid?: number } {
    const owner = guardOwner(this.tools);
    let stalePid: number | undefined;
    if (owner) {
      if (owner.pid === null) throw new Error(`nftables table inet ${GUARD_TABLE} exists and is not tsvs's (comment "${owner.comment}"): remove it or rename it`);
      if (owner.pid !== process.pid && alive(owner.pid)) throw new Error(`another tsvs packet plane (pid ${owner.pid}) guards this network namespace`);
      stalePid = owner.pid;
      this.tools.runSync('nft', ['delete', 'table', 'inet', GUARD_TABLE]);
    }
    this.apply(d, true);
    return stalePid !== undefined ? { stalePid } : {};
  }

  private apply(d: ServedData, sync: true): void;
  private apply(d: ServedData, sync: false): Promise<void>;
  private apply(d: ServedData, sync: boolean): void | Promise<void> {
    const text = guardRuleset(d);
    if (text === this.current) return sync ? undefined : Promise.resolve();
    // Create-then-delete-then-define in one transaction: an atomic replacement.
    const script = `table inet ${GUARD_TABLE}\ndelete table inet ${GUARD_TABLE}\n${text}`;
    if (sync) {
      const r = this.tools.runSync('nft', ['-f', '-'], script);
      if (r.status !== 0) throw new Error(`nft could not install the guard table: ${r.stderr.trim()}`);
      this.current = text;
      this.installed = true;
      return;
    }
    return this.runScript(script, text);
  }

  private async runScript(script: string, text: string): Promise<void> {
    const { spawn } = await import('node:child_process');
    const [cmd, args] = this.tools.netns ? ['ip', ['netns', 'exec', this.tools.netns, 'nft', '-f', '-']] : ['nft', ['-f', '-']];
    await new Promise<void>((resolve) => {
      const p = spawn(cmd, args as string[], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (x: string) => {
        err += x;
      });
      p.on('error', (e) => {
        this.lastError = e.message;
        resolve();
      });
      p.on('exit', (code) => {
        if (code === 0) {
          this.current = text;
          this.installed = true;
          this.lastError = '';
        } else this.lastError = err.trim() || `nft exited ${code}`;
        resolve();
      });
      p.stdin.end(script);
    });
  }

  /** Follows a table change; updates are serialized and coalesced. */
  update(d: ServedData): Promise<void> {
    this.pending = d;
    if (!this.running) {
      this.running = (async () => {
        while (this.pending) {
          const next = this.pending;
          this.pending = null;
          await this.apply(next, false);
        }
        this.running = null;
      })();
    }
    return this.running;
  }

  /** Waits for queued updates (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  get rules(): string {
    return this.current;
  }

  /** Deletes the table (exit). */
  remove(): void {
    if (!this.installed) return;
    this.installed = false;
    this.current = '';
    this.tools.runSync('nft', ['delete', 'table', 'inet', GUARD_TABLE]);
  }
}
