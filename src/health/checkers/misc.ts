// MISC_CHECK: run a command; its exit status decides. Without `dynamic`: 0 = up, anything else
// (or death by a signal) = down. With `dynamic` (keepalived's misc_dynamic): 0 = up at the
// configured weight, 1 = down, 2..255 = up with weight exit − 2. The command runs in its own
// process group, without a shell, output discarded; on timeout (default: the delay_loop) the
// group gets SIGTERM, then SIGKILL 2 s later, and the attempt counts as failed.

import { spawn } from 'node:child_process';
import type { CheckerConfig, ResolvedChecker } from '../config.js';
import type { CheckOutcome, Probe } from './probe.js';

type MiscOptions = Extract<CheckerConfig, { type: 'misc' }>;

/** Grace between SIGTERM and SIGKILL (keepalived: 2 s). */
export const KILL_GRACE_MS = 2000;

/** Split a command line as a shell would split words (quotes and backslashes), without a shell. */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (q === "'") {
      if (ch === "'") q = null;
      else cur += ch;
    } else if (q === '"') {
      if (ch === '"') q = null;
      else if (ch === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      q = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (q) throw new Error('unterminated quote in command');
  if (has || cur) out.push(cur);
  return out;
}

/** What an exit status means (dynamic: weight for codes 2..255). */
export function judgeExit(code: number | null, signal: string | null, dynamic: boolean): CheckOutcome {
  if (code === null) return { ok: false, detail: `failed due to signal ${signal ?? '?'}` };
  if (code === 0) return { ok: true, detail: 'exited with status 0', exitCode: 0 };
  if (dynamic && code >= 2 && code <= 255) return { ok: true, detail: `exited with status ${code} (weight ${code - 2})`, exitCode: code };
  return { ok: false, detail: `exited with status ${code}`, exitCode: code };
}

export function miscProbe(c: ResolvedChecker): Probe {
  const o = c.options as MiscOptions;
  const argv = Array.isArray(o.command) ? o.command : splitCommand(o.command);
  const timeoutMs = o.timeout !== undefined ? o.timeout * 1000 : c.timing.delayLoop;
  const running = new Set<() => void>();
  return {
    run() {
      return new Promise<CheckOutcome>((resolve) => {
        let done = false;
        let timedOut = false;
        let killTimer: NodeJS.Timeout | undefined;
        const finish = (r: CheckOutcome) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (killTimer) clearTimeout(killTimer);
          running.delete(abort);
          resolve(r);
        };
        const killGroup = (sig: NodeJS.Signals) => {
          if (child.pid === undefined) return;
          try {
            process.kill(-child.pid, sig);
          } catch {
            // already gone
          }
        };
        let child: ReturnType<typeof spawn>;
        try {
          child = spawn(argv[0]!, argv.slice(1), {
            detached: true,
            stdio: 'ignore',
            ...(o.uid !== undefined ? { uid: o.uid } : {}),
            ...(o.gid !== undefined ? { gid: o.gid } : {}),
          });
        } catch (e) {
          resolve({ ok: false, detail: `cannot run ${argv[0]}: ${(e as Error).message}` });
          return;
        }
        const abort = () => {
          killGroup('SIGKILL');
          finish({ ok: false, detail: 'aborted' });
        };
        running.add(abort);
        const timer = setTimeout(() => {
          timedOut = true;
          killGroup('SIGTERM');
          killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
        }, timeoutMs);
        child.on('error', (e) => finish({ ok: false, detail: `cannot run ${argv[0]}: ${e.message}` }));
        child.on('exit', (code, signal) => {
          // Whatever the script left in its group goes with it (keepalived kills -pid too).
          if (signal) killGroup('SIGKILL');
          if (timedOut) finish({ ok: false, detail: `timed out after ${timeoutMs} ms` });
          else finish(judgeExit(code, signal, !!o.dynamic));
        });
      });
    },
    close() {
      for (const a of [...running]) a();
    },
  };
}
