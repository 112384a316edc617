// Keeps a directory of /proc-format files current: <dir>/net/ip_vs, ip_vs_stats,
// ip_vs_stats_percpu, ip_vs_conn, ip_vs_conn_sync and ip_vs_app, laid out like /proc so that
// tools taking a procfs root (node_exporter --path.procfs=<dir>) read them as they read the
// kernel's. Every file is replaced atomically (written to a temporary name in the same
// directory, then renamed), so a reader sees either the old or the new file, never half of one.
//
// The table files are rewritten every interval and soon after any change of the service table.
// The connection files can hold millions of lines: they are rendered in slices with awaits in
// between, so the event loop (and the data planes on it) never stalls for the whole table.

import { mkdirSync, readdirSync } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONN_F_ONE_PACKET, CONN_F_SYNC } from '../core/constants.js';
import type { Director } from '../core/director.js';
import { hex4, hex8, IP_VS_CONN_HEADER, IP_VS_CONN_SYNC_HEADER, procProtoName, renderIpVs, renderIpVsApp, renderIpVsStats, renderIpVsStatsPercpu } from './proc-format.js';

export const PROC_FILES = ['ip_vs', 'ip_vs_stats', 'ip_vs_stats_percpu', 'ip_vs_conn', 'ip_vs_conn_sync', 'ip_vs_app'] as const;

export interface ProcWriterOptions {
  /** Root of the tree; the files go to <dir>/net/. */
  dir: string;
  /** Full rewrite period (default 1000 ms). */
  intervalMs?: number;
  /** Connection entries rendered per slice (default 4096). */
  sliceEntries?: number;
  /** Whether to write ip_vs_conn and ip_vs_conn_sync (default true). */
  connections?: boolean;
  onError?: (e: unknown) => void;
}

export class ProcWriter {
  readonly netDir: string;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** A table change arrived while a write was running: write again after it. */
  private again = false;
  private againForce = false;
  /** The rewrite queued behind the running one. */
  private next: Promise<void> | null = null;
  private changeTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  private readonly tmpTag = `.tmp-${process.pid}`;
  /** Completed rewrites (tests and status). */
  writes = 0;
  /** How long the last ip_vs_conn pass took, and when it started (performance.now ms). */
  lastConnWriteMs = 0;
  private lastConnWriteAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly director: Director,
    private readonly opts: ProcWriterOptions,
  ) {
    this.netDir = join(opts.dir, 'net');
  }

  /** Write everything once, then keep it current. */
  async start(): Promise<void> {
    mkdirSync(this.netDir, { recursive: true, mode: 0o755 });
    // temporary files a crashed vsd left behind
    for (const f of readdirSync(this.netDir)) if (/^\.ip_vs\w*\.tmp-\d+$/.test(f)) await rm(join(this.netDir, f), { force: true });
    await this.refresh();
    const every = this.opts.intervalMs ?? 1000;
    this.timer = setInterval(() => void this.refresh(), every);
    this.timer.unref();
    this.unsubscribe = this.director.onChange(() => this.tableChanged());
  }

  /** Service table changed: rewrite soon (coalescing bursts such as a restore). */
  private tableChanged(): void {
    if (this.stopped || this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      void this.refresh();
    }, 20);
    this.changeTimer.unref();
  }

  /**
   * One rewrite; concurrent calls share the running one and schedule one more. `force` writes
   * the connection files even when the duty-cycle limit would skip them this time.
   */
  refresh(force = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      this.againForce ||= force;
      return this.running.then(() => this.next ?? undefined);
    }
    this.running = this.writeAll(force)
      .catch((e) => this.opts.onError?.(e))
      .finally(() => {
        this.running = null;
        this.next = null;
        if (this.again && !this.stopped) {
          const f = this.againForce;
          this.again = this.againForce = false;
          this.next = this.refresh(f);
        }
      });
    return this.running;
  }

  private async replace(name: string, text: string): Promise<void> {
    const tmp = join(this.netDir, `.${name}${this.tmpTag}`);
    await rm(tmp, { force: true }); // read-only if an earlier write failed half-way
    await writeFile(tmp, text, { mode: 0o444 });
    await rename(tmp, join(this.netDir, name));
  }

  private async writeAll(force: boolean): Promise<void> {
    const d = this.director;
    // Table and totals first, from one synchronous snapshot.
    const services = d.serviceInfos();
    const info = d.info();
    const stats = d.totalStats.counters();
    const rates = d.totalStats.rates();
    await this.replace('ip_vs', renderIpVs(info, services));
    await this.replace('ip_vs_stats', renderIpVsStats(stats, rates));
    await this.replace('ip_vs_stats_percpu', renderIpVsStatsPercpu(stats, rates));
    await this.replace('ip_vs_app', renderIpVsApp());
    // A big connection table takes a while to print: keep that under a fifth of the time, so
    // the writer never turns into a busy loop (the table files above stay on every interval).
    const now = performance.now();
    if (this.opts.connections !== false && (force || now - this.lastConnWriteAt >= this.lastConnWriteMs * 5)) {
      this.lastConnWriteAt = now;
      await this.writeConns();
    }
    this.writes++;
  }

  /** ip_vs_conn and ip_vs_conn_sync in one pass over the table, slice by slice. */
  private async writeConns(): Promise<void> {
    const c = this.director.conns;
    const tmpConn = join(this.netDir, `.ip_vs_conn${this.tmpTag}`);
    const tmpSync = join(this.netDir, `.ip_vs_conn_sync${this.tmpTag}`);
    await rm(tmpConn, { force: true });
    await rm(tmpSync, { force: true });
    const fc = await open(tmpConn, 'w', 0o444);
    const fs = await open(tmpSync, 'w', 0o444);
    const started = performance.now();
    try {
      await fc.write(IP_VS_CONN_HEADER);
      await fs.write(IP_VS_CONN_SYNC_HEADER);
      const slice = this.opts.sliceEntries ?? 4096;
      // Entries freed or reused between slices are seen as they are then, like a reader of the
      // kernel's file that reads it in several pages.
      for (let start = 0; start < c.high && !this.stopped; start += slice) {
        const end = Math.min(c.high, start + slice);
        const [a, b] = renderConnSlice(this.director, start, end);
        if (a) {
          await fc.write(a);
          await fs.write(b);
        }
      }
    } finally {
      await fc.close();
      await fs.close();
    }
    this.lastConnWriteMs = performance.now() - started;
    if (this.stopped) return;
    await rename(tmpConn, join(this.netDir, 'ip_vs_conn'));
    await rename(tmpSync, join(this.netDir, 'ip_vs_conn_sync'));
  }

  /** Stop and remove the files: a stopped director has no IPVS to show (as after rmmod ip_vs). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.changeTimer) clearTimeout(this.changeTimer);
    this.timer = this.changeTimer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.running?.catch(() => {});
    for (const name of PROC_FILES) {
      await rm(join(this.netDir, name), { force: true });
      await rm(join(this.netDir, `.${name}${this.tmpTag}`), { force: true });
    }
  }
}

/** `%08X` or `%pI6` of the address in words o..o+3 of a column. */
function colAddr(col: Uint32Array, o: number, af: number): string {
  if (af !== 6) return hex8(col[o]!);
  let out = '';
  for (let k = 0; k < 4; k++) {
    const w = col[o + k]!;
    out += `${k ? ':' : ''}${(w >>> 16).toString(16).padStart(4, '0')}:${(w & 0xffff).toString(16).padStart(4, '0')}`;
  }
  return out;
}

/**
 * Lines of ip_vs_conn and ip_vs_conn_sync for entries [start, end), printed straight from the
 * table's columns (the same bytes procConnLine gives for director.connInfo(i), at a fraction
 * of the cost: no snapshot objects, no address text parsed back).
 */
export function renderConnSlice(d: Director, start: number, end: number): [string, string] {
  const c = d.conns;
  // The director's clock is not public: connInfo() reports expiresMs = expires - now, so one
  // live entry tells the time. With none in the future, every entry here prints 0 anyway.
  let now = Number.POSITIVE_INFINITY;
  const a: string[] = [];
  const b: string[] = [];
  for (let i = start; i < end; i++) {
    const af = c.af[i]!;
    if (af === 0) continue;
    const flags = c.flags[i]!;
    // A one-packet entry already served is gone in the kernel (the director's own rule)
    if (flags & CONN_F_ONE_PACKET && !c.isHashed(i) && c.isDue(i)) continue;
    if (now === Number.POSITIVE_INFINITY) {
      const left = d.connInfo(i).expiresMs;
      if (left > 0) now = c.expires[i]! - left;
    }
    const o = i * 4;
    const head = `${procProtoName(c.protocol[i]!).padEnd(3, ' ')} ${colAddr(c.caddr, o, af)} ${hex4(c.cport[i]!)} ${colAddr(c.vaddr, o, af)} ${hex4(c.vport[i]!)} ${colAddr(c.daddr, o, c.daf[i]!)} ${hex4(c.dport[i]!)} ${d.stateName(i).padEnd(11, ' ')}`;
    const exp = String(Math.max(0, Math.floor((c.expires[i]! - now) / 1000))).padStart(7, ' ');
    a.push(`${head} ${exp}\n`);
    b.push(`${head} ${flags & CONN_F_SYNC ? 'SYNC  ' : 'LOCAL '} ${exp}\n`);
  }
  return [a.join(''), b.join('')];
}
