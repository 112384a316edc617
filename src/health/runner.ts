// Runs one checker: a first attempt after a random warmup, then one attempt at a time, each
// result fed to keepalived's state machine (state.ts), which says when to try next. Listeners
// (the real servers using this checker; one probe may serve the same real server in several
// services) hear of every state change and result.

import { KEEPALIVED_NAME, createProbe } from './checkers/index.js';
import type { CheckOutcome, Probe } from './checkers/probe.js';
import type { ResolvedChecker } from './config.js';
import { CheckerMachine, type Step } from './state.js';
import { type VirtualPath, virtualPathProvider } from './via-virtual.js';

export interface RunnerListener {
  /** The checker went up or down (retries: "failed after N retries"). */
  checkerChanged(r: CheckerRunner, up: boolean, step: Step, outcome: CheckOutcome): void;
  /** Every attempt's outcome (dynamic weights, counters). */
  checkerResult(r: CheckerRunner, outcome: CheckOutcome): void;
}

export interface RunnerStats {
  attempts: number;
  successes: number;
  failures: number;
  lastOutcome?: CheckOutcome;
  lastAt?: number;
  lastDurationMs?: number;
}

/** A guard beyond the probe's own timeouts: a probe that never settles counts as failed. */
const GUARD_MS = 5000;

export class CheckerRunner {
  readonly machine: CheckerMachine;
  readonly listeners = new Set<RunnerListener>();
  readonly stats: RunnerStats = { attempts: 0, successes: 0, failures: 0 };
  /** MISC dynamic: the last exit status that set a weight (0 or 2..255). */
  weightExit: number | undefined;
  /** How the last attempt went for via: virtual ('virtual', 'bindto' or 'direct (…)'). */
  path: string;
  private readonly probe: Probe;
  private directProbe: Probe | null = null;
  private vpath: VirtualPath | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  /** The fallback last warned about (once per reason). */
  private warnedFallback = '';
  private lastOpenError = '';

  constructor(
    readonly cfg: ResolvedChecker,
    private readonly onWarn: (msg: string) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {
    const o = cfg.options as { urls?: unknown[]; fastRecovery?: boolean };
    this.machine = new CheckerMachine(cfg.kind, cfg.timing, o.urls?.length ?? 1, !!o.fastRecovery);
    this.probe = createProbe(cfg);
    this.path = cfg.via === 'virtual' ? 'virtual' : 'direct';
  }

  get key(): string {
    return this.cfg.key;
  }

  get name(): string {
    return KEEPALIVED_NAME[this.cfg.kind];
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Start with the first attempt after a random delay in [0, warmup] (keepalived's warmup). */
  start(random: () => number = Math.random): void {
    if (!this.stopped) return;
    this.stopped = false;
    const w = this.cfg.timing.warmup;
    this.schedule(w > 0 ? Math.floor(random() * w) : 0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.probe.close();
    this.directProbe?.close();
    this.vpath?.release();
    this.vpath = null;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.attempt();
    }, ms);
    this.timer.unref?.();
  }

  /** Which probe and source this attempt uses (via: virtual needs a pinned path). */
  private route(): { probe: Probe; bind?: { address?: string; port?: number } } {
    const c = this.cfg;
    if (c.via !== 'virtual' || !c.pin) return { probe: this.probe, ...(c.bind ? { bind: c.bind } : {}) };
    const provider = virtualPathProvider();
    if (provider && !this.vpath) {
      try {
        this.vpath = provider.open({
          service: c.pin.service,
          dest: c.pin.dest,
          method: c.pin.method,
          ...(c.pin.tunnel ? { tunnel: c.pin.tunnel } : {}),
          protocol: c.kind === 'udp' || c.kind === 'dns' ? 'udp' : 'tcp',
        });
      } catch (e) {
        // Asked again at every attempt; the fallback below says why, once per reason.
        this.lastOpenError = `${provider.name} cannot open a path: ${(e as Error).message}`;
      }
    }
    if (this.vpath) {
      this.path = `virtual (${provider?.name ?? 'data plane'})`;
      return { probe: this.probe, bind: this.vpath.bind };
    }
    if (c.bind?.address) {
      this.path = `virtual (bindto ${c.bind.address})`;
      return { probe: this.probe, bind: c.bind };
    }
    // No way to pick the real server through the VIP: check it directly, and say so once.
    this.path = this.lastOpenError
      ? `direct (${this.lastOpenError})`
      : 'direct (no data-plane path to the real server; give bindto with policy routing, or run the packet plane)';
    if (this.warnedFallback !== this.path) {
      this.warnedFallback = this.path;
      this.onWarn(`via: virtual check of ${c.pin.dest.addr}:${c.pin.dest.port} runs directly: ${this.path.slice(8, -1)}`);
    }
    this.directProbe ??= createProbe({ ...c, via: 'direct', target: c.directTarget ?? c.target });
    return { probe: this.directProbe };
  }

  private async attempt(): Promise<void> {
    try {
      await this.attemptOnce();
    } catch (e) {
      // never let a checker's bug stop its schedule (or reach vsd)
      this.onWarn(`${this.name} of ${this.cfg.target.host}:${this.cfg.target.port} failed unexpectedly: ${(e as Error).message}`);
      this.schedule(this.cfg.timing.delayLoop);
    }
  }

  private async attemptOnce(): Promise<void> {
    if (this.stopped) return;
    const started = this.now();
    const { probe, bind } = this.route();
    let outcome: CheckOutcome;
    let guard: NodeJS.Timeout | undefined;
    try {
      const limit = this.cfg.kind === 'misc' ? ((this.cfg.options as { timeout?: number }).timeout ?? this.cfg.timing.delayLoop / 1000) * 1000 + 2 * GUARD_MS : this.cfg.timing.connectTimeout * 11 + GUARD_MS;
      outcome = await Promise.race([
        probe.run({ urlIndex: this.machine.nextUrl, ...(bind ? { bind } : {}) }),
        new Promise<CheckOutcome>((resolve) => {
          guard = setTimeout(() => resolve({ ok: false, detail: 'check did not finish (guard timeout)' }), limit);
        }),
      ]);
    } catch (e) {
      outcome = { ok: false, detail: `checker error: ${(e as Error).message}` };
    } finally {
      if (guard) clearTimeout(guard);
    }
    if (this.stopped) return;
    const ended = this.now();
    this.stats.attempts++;
    if (outcome.ok) this.stats.successes++;
    else this.stats.failures++;
    this.stats.lastOutcome = outcome;
    this.stats.lastAt = Date.now();
    this.stats.lastDurationMs = Math.round((ended - started) * 10) / 10;
    if (outcome.ok && outcome.exitCode !== undefined) this.weightExit = outcome.exitCode;
    const step = this.machine.result(outcome.ok);
    for (const l of this.listeners) {
      try {
        l.checkerResult(this, outcome);
        if (step.change) l.checkerChanged(this, step.change === 'up', step, outcome);
      } catch (e) {
        this.onWarn(`health listener failed: ${(e as Error).message}`);
      }
    }
    const wait = step.fromStart ? Math.max(0, step.delay - (ended - started)) : step.delay;
    this.schedule(wait);
  }
}
