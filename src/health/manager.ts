// The health manager: vsd's extension that keeps the pool honest. It runs every real server's
// checkers, follows keepalived's rules for what a failure does to the table (remove the server,
// or keep it at weight 0 with inhibit_on_failure; restore its weight on recovery; quorum with
// hysteresis; a sorry server while quorum is lost; MISC dynamic weights), runs the dynamic
// feedback loop, and applies every change through the Director's management operations — the
// same ones vsadm uses, so established connections follow IPVS's rules (expire_nodest_conn for a
// removed server, quiescence for weight 0).
//
// Per real server it keeps the configured weight, the weight it imposes and why. A reload
// (configure + applyTable) keeps the health state of servers that stay: applyTable asks
// destOverride for each configured server, and gets the health-adjusted spec (or null: out).

import { spawn, type ChildProcess } from 'node:child_process';
import pino, { type Logger } from 'pino';
import { IpAddr } from '../core/addr.js';
import { INT_MAX } from '../core/constants.js';
import type { Director } from '../core/director.js';
import type { DestInfo, DestSpec } from '../core/model.js';
import type { Config } from '../control/config.js';
import type { Vsd, VsdExtension } from '../control/daemon.js';
import { pollAgent, type PollResult } from './agent-protocol.js';
import type { CheckOutcome } from './checkers/probe.js';
import { type ResolvedHealth, type ResolvedRealServer, type ResolvedService, resolveHealth, rsKey } from './config.js';
import { type AggregateLoad, aggregateLoad, indicatorValues, inputShares, nextWeight, worthWriting } from './feedback.js';
import { Quorum } from './quorum.js';
import { type RunnerListener, CheckerRunner } from './runner.js';
import { RealServerHealth, type Step } from './state.js';

export interface HealthManagerOptions {
  /** Until start() hands over vsd's logger. */
  logger?: Logger;
  /** For warmup delays (tests pass a fixed one). */
  random?: () => number;
}

export interface WeightChange {
  at: string;
  from: number | null;
  to: number | null;
  reason: string;
}

interface FeedbackState {
  /** The loop's unrounded weight. */
  fw: number;
  /** The weight last written (what the table should hold while alive). */
  weight: number;
  agentUp: boolean;
  lastError?: string;
  lastLoad?: AggregateLoad;
  lastPoll?: PollResult;
  /** The server's connection counter at the previous tick (input indicator). */
  lastConns?: number;
  lastAt?: string;
}

class RsState {
  readonly health: RealServerHealth;
  readonly changes: WeightChange[] = [];
  feedback: FeedbackState | null = null;
  /** Weight last seen for the quorum/dynamic log line ("Changing weight from … to …"). */
  lastBase: number;
  /** What the table held after the last sync (null = absent). */
  applied: number | null | undefined = undefined;
  lastDownDetail = '';
  readonly listener: RunnerListener;

  constructor(
    readonly cfg: ResolvedRealServer,
    readonly vs: VsState,
    alive: boolean,
    mgr: HealthManager,
  ) {
    this.health = new RealServerHealth(alive);
    this.lastBase = cfg.configuredWeight;
    this.listener = {
      checkerChanged: (r, up, step, o) => mgr.onCheckerChanged(this, r, up, step, o),
      checkerResult: (r, o) => mgr.onCheckerResult(this, r, o),
    };
  }

  get label(): string {
    return this.cfg.label;
  }
}

class VsState {
  readonly rs = new Map<string, RsState>();
  quorum!: Quorum;
  /** Whether the sorry server is in service (keepalived: s_svr alive). */
  sorryApplied: number | null | undefined = undefined;
  feedbackTimer: NodeJS.Timeout | null = null;
  feedbackBusy = false;

  constructor(readonly cfg: ResolvedService) {}

  get label(): string {
    return this.cfg.label;
  }

  get sorryActive(): boolean {
    return !!this.cfg.sorry && this.quorum.state === 'down';
  }
}

const MAX_CHANGES = 20;
const SCRIPT_TIMEOUT_MS = 60_000;

export class HealthManager implements VsdExtension {
  readonly name = 'health';
  private log: Logger;
  private readonly random: () => number;
  private vsd: Vsd | null = null;
  private director: Director | null = null;
  private enabled = true;
  private logAllFailures = false;
  private services = new Map<string, VsState>();
  private runners = new Map<string, CheckerRunner>();
  private staged: { cfg: Config; model: ResolvedHealth; states: Map<string, VsState> } | null = null;
  private readonly children = new Set<ChildProcess>();
  private started = false;
  private readonly counters = { transitions: { up: 0, down: 0 }, quorum: { up: 0, down: 0 }, weightChanges: 0 };

  constructor(opts: HealthManagerOptions = {}) {
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.random = opts.random ?? Math.random;
  }

  // ---- VsdExtension ------------------------------------------------------------------------

  checkConfig(cfg: Config): void {
    resolveHealth(cfg);
  }

  configure(cfg: Config): void {
    const model = resolveHealth(cfg);
    const states = this.buildStates(model);
    this.staged = { cfg, model, states };
    if (!this.started) {
      this.commit();
      return;
    }
    // applyTable runs right after this (same tick) and asks destOverride with the staged
    // model; once it is through, vsd holds the new config and the staged state takes over.
    queueMicrotask(() => {
      if (!this.staged || this.staged.cfg !== cfg) return;
      if (this.vsd?.currentConfig === cfg) this.commit();
      else this.staged = null;
    });
  }

  destOverride = (serviceKey: string, d: DestSpec): DestSpec | null => {
    if (!this.enabled && !this.staged) return d;
    const states = this.staged?.states ?? this.services;
    const rs = states.get(serviceKey)?.rs.get(rsKey(serviceKey, d.addr, d.port));
    if (!rs) return d;
    const w = this.desiredWeight(rs);
    return w === null ? null : { ...d, weight: w };
  };

  /** The sorry server, while quorum is lost (or held at weight 0 with sorry_server_inhibit). */
  extraDests = (serviceKey: string): DestSpec[] => {
    const states = this.staged?.states ?? this.services;
    const vs = states.get(serviceKey);
    const sorry = vs?.cfg.sorry;
    if (!vs || !sorry) return [];
    const want = vs.sorryActive ? 1 : sorry.inhibit ? 0 : null;
    return want === null ? [] : [{ ...sorry.dest, weight: want }];
  };

  async start(vsd: Vsd): Promise<void> {
    this.vsd = vsd;
    this.director = vsd.director;
    this.log = vsd.logger.child({ component: 'health' });
    this.started = true;
    if (this.staged && vsd.currentConfig === this.staged.cfg) this.commit();
    for (const vs of this.services.values()) for (const w of vs.cfg.warnings) this.log.warn({ service: vs.label }, w);
    this.activate();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const vs of this.services.values()) {
      this.stopFeedback(vs);
      if (vs.cfg.omega) {
        // omega: the down notifiers run on the way out, as keepalived does at shutdown
        for (const rs of vs.rs.values()) if (rs.health.alive && rs.cfg.notifyDown) this.runScript(rs.cfg.notifyDown, `notify_down ${rs.label}`);
        if (vs.quorum.state === 'up' && vs.cfg.quorumDown) this.runScript(vs.cfg.quorumDown, `quorum_down ${vs.label}`);
      }
    }
    for (const r of this.runners.values()) r.stop();
    this.runners.clear();
    // Give omega scripts a moment, then make sure nothing we started outlives us.
    if (this.children.size) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.children) killTree(c);
    this.children.clear();
  }

  annotateDest(serviceKey: string, dest: DestInfo): Record<string, unknown> | undefined {
    const vs = this.services.get(serviceKey);
    if (!vs) return undefined;
    const k = rsKey(serviceKey, dest.addr, dest.port);
    const rs = vs.rs.get(k);
    if (rs) {
      const health = this.rsStatus(rs);
      // configuredWeight/weightReason at the top too: what the metrics reader looks for
      return { health, configuredWeight: rs.cfg.configuredWeight, weightReason: health.reason };
    }
    if (vs.cfg.sorry && rsKey(serviceKey, vs.cfg.sorry.dest.addr, vs.cfg.sorry.dest.port) === k) {
      return { health: { sorryServer: true, active: vs.sorryActive, reason: vs.sorryActive ? `quorum lost (${vs.quorum.quorum}-${vs.quorum.hysteresis})` : 'quorum met: standing by' } };
    }
    return undefined;
  }

  status(): Record<string, unknown> {
    return {
      enabled: this.enabled,
      checkers: this.runners.size,
      transitions: { ...this.counters.transitions },
      quorumChanges: { ...this.counters.quorum },
      weightChanges: this.counters.weightChanges,
      services: [...this.services.values()].map((vs) => ({
        service: vs.cfg.key,
        label: vs.label,
        quorum: { state: vs.quorum.state, quorum: vs.quorum.quorum, hysteresis: vs.quorum.hysteresis, weightSum: this.weightSum(vs) },
        ...(vs.cfg.sorry ? { sorryServer: { address: `${vs.cfg.sorry.dest.addr}:${vs.cfg.sorry.dest.port}`, active: vs.sorryActive, inhibit: vs.cfg.sorry.inhibit } } : {}),
        realServers: [...vs.rs.values()].map((rs) => ({ address: `${rs.cfg.dest.addr}:${rs.cfg.dest.port}`, ...this.rsStatus(rs) })),
      })),
    };
  }

  // ---- Building and committing the model ------------------------------------------------

  /** New per-service state for a model, carrying over what persists from the current one. */
  private buildStates(model: ResolvedHealth): Map<string, VsState> {
    const out = new Map<string, VsState>();
    for (const svc of model.services) {
      const vs = new VsState(svc);
      const prevVs = this.services.get(svc.key);
      for (const r of svc.realServers) {
        const prev = prevVs?.rs.get(r.key);
        // A checker counts as failed if it was failing before, or (new to this server) starts
        // down: its shared runner is down, or it is new and alpha.
        const prevKeys = new Set(prev?.cfg.checkers.map((c) => c.key) ?? []);
        const failed = new Set<string>();
        for (const c of r.checkers) {
          if (prevKeys.has(c.key)) {
            if (prev!.health.failed.has(c.key)) failed.add(c.key);
          } else if (!(this.runners.get(c.key)?.machine.isUp ?? !c.timing.alpha)) failed.add(c.key);
        }
        const st = new RsState(r, vs, failed.size === 0, this);
        for (const k of failed) st.health.failed.add(k);
        if (prev) {
          st.changes.push(...prev.changes);
          st.lastBase = prev.lastBase;
          st.applied = prev.applied;
          st.lastDownDetail = prev.lastDownDetail;
          if (prev.feedback && r.feedback) st.feedback = { ...prev.feedback };
        }
        if (r.feedback && !st.feedback) st.feedback = { fw: r.configuredWeight, weight: r.configuredWeight, agentUp: true };
        vs.rs.set(r.key, st);
      }
      const sum = this.weightSum(vs);
      vs.quorum = new Quorum(svc.quorum, svc.hysteresis, sum, svc.label);
      if (prevVs) {
        vs.quorum.state = prevVs.quorum.state;
        vs.sorryApplied = prevVs.sorryApplied;
      } else if (svc.alpha) {
        vs.quorum.state = 'down';
      }
      out.set(svc.key, vs);
    }
    return out;
  }

  private commit(): void {
    const staged = this.staged;
    if (!staged) return;
    this.staged = null;
    const old = this.services;
    this.services = staged.states;
    this.enabled = staged.model.enabled;
    this.logAllFailures = staged.model.logAllFailures;
    // Runners: keep those still wanted, stop the rest, create the new ones.
    const wanted = new Map<string, ResolvedRealServer['checkers'][number]>();
    if (this.enabled) for (const vs of this.services.values()) for (const rs of vs.rs.values()) for (const c of rs.cfg.checkers) wanted.set(c.key, c);
    for (const [k, r] of this.runners) {
      if (!wanted.has(k)) {
        r.stop();
        this.runners.delete(k);
      } else r.listeners.clear();
    }
    for (const [k, c] of wanted) if (!this.runners.has(k)) this.runners.set(k, new CheckerRunner(c, (m) => this.log.warn(m)));
    for (const vs of this.services.values()) for (const rs of vs.rs.values()) for (const c of rs.cfg.checkers) this.runners.get(c.key)?.listeners.add(rs.listener);
    // the new state runs its own feedback rounds (a kept service's loop state was carried over)
    for (const vs of old.values()) this.stopFeedback(vs);
    if (this.started) {
      for (const vs of this.services.values()) for (const w of vs.cfg.warnings) if (!old.has(vs.cfg.key)) this.log.warn({ service: vs.label }, w);
      this.activate();
    }
  }

  /** Start what is not running yet and bring the table in line with the health state. */
  private activate(): void {
    if (!this.enabled) return;
    for (const vs of this.services.values()) {
      this.updateQuorum(vs);
      this.sync(vs);
      this.startFeedback(vs);
    }
    for (const r of this.runners.values()) r.start(this.random);
  }

  // ---- Checker events ----------------------------------------------------------------------

  onCheckerChanged(rs: RsState, r: CheckerRunner, up: boolean, step: Step, o: CheckOutcome): void {
    if (rs.vs !== this.services.get(rs.vs.cfg.key)) return;
    const fields = { service: rs.vs.label, realServer: rs.label, checker: r.name, detail: o.detail };
    if (up) this.log.info(fields, `${r.name} on service ${rs.label} succeeded (${o.detail}).`);
    else this.log.warn(fields, `${r.name} on service ${rs.label} failed${step.retries ? ` after ${step.retries} retries` : ''} (${o.detail}).`);
    if (!up) rs.lastDownDetail = `${r.name}: ${o.detail}`;
    const t = rs.health.checker(r.key, up);
    if (t) this.performSvrState(rs, t === 'up');
  }

  onCheckerResult(rs: RsState, r: CheckerRunner, o: CheckOutcome): void {
    if (rs.vs !== this.services.get(rs.vs.cfg.key)) return;
    if (!o.ok && (this.logAllFailures || r.cfg.timing.logAllFailures)) this.log.info({ service: rs.vs.label, realServer: rs.label, checker: r.name }, `${r.name} on service ${rs.label}: ${o.detail}`);
    if (r.cfg.kind === 'misc' && (r.cfg.options as { dynamic?: boolean }).dynamic && o.ok) {
      const base = this.baseWeight(rs);
      if (base !== rs.lastBase) {
        this.log.info(
          { service: rs.vs.label, realServer: rs.label, from: rs.lastBase, to: base, exitCode: o.exitCode },
          `Changing weight from ${rs.lastBase} to ${base} for ${rs.health.alive ? 'active' : 'inactive'} service ${rs.label} of VS ${rs.vs.label}`,
        );
        this.recordChange(rs, rs.lastBase, base, `dynamic: ${r.name} exited ${o.exitCode}`);
        rs.lastBase = base;
        if (rs.feedback) {
          rs.feedback.fw = Math.min(rs.feedback.fw, base * (rs.cfg.feedback?.scale ?? 1));
        }
        this.updateQuorum(rs.vs);
        this.sync(rs.vs);
      }
    }
  }

  /** ipwrapper.c perform_svr_state: a real server came up or went down. */
  private performSvrState(rs: RsState, up: boolean): void {
    const vs = rs.vs;
    const fields = { service: vs.label, realServer: rs.label };
    if (up) {
      this.counters.transitions.up++;
      this.log.info(fields, `${rs.cfg.inhibit ? 'Enabling' : 'Adding'} service ${rs.label} to VS ${vs.label}`);
      this.recordChange(rs, rs.applied ?? null, this.desiredWeight(rs), 'up: all checkers pass');
      if (rs.cfg.notifyUp) this.runScript(rs.cfg.notifyUp, `notify_up ${rs.label}`);
    } else {
      this.counters.transitions.down++;
      this.log.warn(fields, `${rs.cfg.inhibit ? 'Disabling' : 'Removing'} service ${rs.label} from VS ${vs.label}`);
      this.recordChange(rs, rs.applied ?? null, this.desiredWeight(rs), `down: ${rs.lastDownDetail}`);
      if (rs.cfg.notifyDown) this.runScript(rs.cfg.notifyDown, `notify_down ${rs.label}`);
    }
    this.sync(vs);
    this.updateQuorum(vs);
  }

  /** ipwrapper.c update_quorum_state, with the sorry server swap. */
  private updateQuorum(vs: VsState): void {
    const ch = vs.quorum.update(this.weightSum(vs));
    if (!ch) return;
    this.counters.quorum[ch.state]++;
    const fields = { service: vs.label, quorum: vs.quorum.quorum, hysteresis: vs.quorum.hysteresis };
    if (ch.state === 'up') {
      this.log.info(fields, ch.message);
      const sorry = vs.cfg.sorry;
      if (sorry) {
        this.log.info(fields, `${sorry.inhibit ? 'Disabling' : 'Removing'} sorry server ${sorry.label} from VS ${vs.label}`);
        this.log.info(fields, `Adding alive servers to the pool for VS ${vs.label}`);
      }
      if (vs.cfg.quorumUp) this.runScript(vs.cfg.quorumUp, `quorum_up ${vs.label}`);
    } else {
      this.log.warn(fields, ch.message);
      if (vs.cfg.quorumDown) this.runScript(vs.cfg.quorumDown, `quorum_down ${vs.label}`);
      const sorry = vs.cfg.sorry;
      if (sorry) {
        this.log.warn(fields, `${sorry.inhibit ? 'Enabling' : 'Adding'} sorry server ${sorry.label} to VS ${vs.label}`);
        this.log.warn(fields, `Removing alive servers from the pool for VS ${vs.label}`);
      }
    }
    if (vs.cfg.sorry) for (const rs of vs.rs.values()) if (rs.health.alive) this.recordChange(rs, rs.applied ?? null, this.desiredWeight(rs), ch.state === 'up' ? 'quorum regained: back in the pool' : 'quorum lost: the sorry server serves');
    this.sync(vs);
  }

  // ---- Weights -------------------------------------------------------------------------------

  /** keepalived's effective weight: configured + MISC dynamic contributions, clamped. */
  private baseWeight(rs: RsState): number {
    let w = rs.cfg.configuredWeight;
    for (const c of rs.cfg.checkers) {
      if (c.kind !== 'misc' || !(c.options as { dynamic?: boolean }).dynamic) continue;
      const exit = this.runners.get(c.key)?.weightExit;
      // exit 2..255 sets the weight to exit − 2; contributions of several scripts add up
      if (exit !== undefined && exit >= 2) w += exit - 2 - rs.cfg.configuredWeight;
    }
    return Math.max(0, Math.min(INT_MAX, w));
  }

  /** The weight while alive and in service: base, or what the feedback loop wrote. */
  private serviceWeight(rs: RsState): number {
    const base = this.baseWeight(rs);
    const fb = rs.feedback;
    if (!fb || !rs.cfg.feedback || base <= 0) return base;
    if (!fb.agentUp && rs.cfg.feedback.onAgentFailure === 'zero') return 0;
    return fb.weight;
  }

  /** What the table should hold for this real server: a weight, or null (absent). */
  private desiredWeight(rs: RsState): number | null {
    if (!this.enabled) return rs.cfg.configuredWeight;
    if (rs.health.alive && !rs.vs.sorryActive) return this.serviceWeight(rs);
    return rs.cfg.inhibit ? 0 : null;
  }

  /** Σ effective weights of the alive real servers (keepalived's weigh_live_realservers). */
  private weightSum(vs: VsState): number {
    let s = 0;
    for (const rs of vs.rs.values()) if (rs.health.alive) s += this.baseWeight(rs);
    return s;
  }

  private reason(rs: RsState): string {
    if (!this.enabled) return 'health checks disabled';
    if (!rs.health.alive) {
      const what = rs.cfg.inhibit ? 'kept at weight 0 (inhibit_on_failure)' : 'removed';
      const pending = [...rs.health.failed].map((k) => this.runners.get(k)).filter((r) => r && !r.machine.hasRun);
      if (pending.length && pending.length === rs.health.failed.size) return `alpha: waiting for the first successful check; ${what}`;
      return `down (${rs.lastDownDetail || [...rs.health.failed].map((k) => this.runners.get(k)?.name ?? k).join(', ')}); ${what}`;
    }
    if (rs.vs.sorryActive) return `quorum lost: the sorry server serves; ${rs.cfg.inhibit ? 'kept at weight 0' : 'removed'}`;
    const base = this.baseWeight(rs);
    const fb = rs.feedback;
    if (fb && rs.cfg.feedback && base > 0) {
      if (!fb.agentUp) return rs.cfg.feedback.onAgentFailure === 'zero' ? `feedback: agent unreachable (${fb.lastError ?? '?'}); weight 0 until it answers` : `feedback: agent unreachable (${fb.lastError ?? '?'}); weight kept`;
      if (fb.lastLoad) return `feedback: aggregate load ${fb.lastLoad.load.toFixed(3)} → weight ${fb.weight} (loop ${fb.fw.toFixed(2)})`;
      return 'feedback: waiting for the first report';
    }
    if (base !== rs.cfg.configuredWeight) return `dynamic weight ${base} (MISC_CHECK exit status)`;
    const warming = rs.cfg.checkers.some((c) => !this.runners.get(c.key)?.machine.hasRun);
    return warming ? 'up (warmup: first check pending)' : rs.cfg.checkers.length ? 'up: all checkers pass' : 'configured (no checkers)';
  }

  private recordChange(rs: RsState, from: number | null, to: number | null, reason: string): void {
    if (from === to && rs.changes.length && rs.changes[rs.changes.length - 1]!.reason === reason) return;
    this.counters.weightChanges++;
    rs.changes.push({ at: new Date().toISOString(), from, to, reason });
    if (rs.changes.length > MAX_CHANGES) rs.changes.splice(0, rs.changes.length - MAX_CHANGES);
  }

  private rsStatus(rs: RsState): Record<string, unknown> {
    const fb = rs.feedback;
    return {
      state: rs.health.alive ? 'up' : 'down',
      configuredWeight: rs.cfg.configuredWeight,
      weight: this.desiredWeight(rs),
      reason: this.reason(rs),
      inhibitOnFailure: rs.cfg.inhibit,
      checkers: rs.cfg.checkers.map((c) => {
        const r = this.runners.get(c.key);
        return {
          type: c.kind,
          target: `${c.target.family === 6 ? `[${c.target.host}]` : c.target.host}:${c.target.port}`,
          ...(c.via === 'virtual' ? { via: r?.path ?? 'virtual' } : {}),
          up: r?.machine.isUp ?? !c.timing.alpha,
          hasRun: r?.machine.hasRun ?? false,
          attempts: r?.stats.attempts ?? 0,
          failures: r?.stats.failures ?? 0,
          ...(r?.stats.lastOutcome ? { last: { ok: r.stats.lastOutcome.ok, detail: r.stats.lastOutcome.detail, at: new Date(r.stats.lastAt!).toISOString(), ms: r.stats.lastDurationMs } } : {}),
        };
      }),
      ...(fb && rs.cfg.feedback
        ? {
            feedback: {
              agent: `${rs.cfg.feedback.agentHost}:${rs.cfg.feedback.agentPort}`,
              agentUp: fb.agentUp,
              weight: fb.weight,
              loopWeight: Math.round(fb.fw * 1000) / 1000,
              ...(fb.lastLoad ? { aggregateLoad: Math.round(fb.lastLoad.load * 1e4) / 1e4, terms: fb.lastLoad.terms, missing: fb.lastLoad.missing } : {}),
              ...(fb.lastPoll ? { responseMs: Math.round(fb.lastPoll.rttMs * 10) / 10, report: fb.lastPoll.report } : {}),
              ...(fb.lastError ? { lastError: fb.lastError } : {}),
              formula: `w ← w + ${rs.cfg.feedback.adjust}·∛(${rs.cfg.feedback.target} − load), within [${rs.cfg.feedback.minWeight}, ${rs.cfg.feedback.scale}×${this.baseWeight(rs)}]`,
            },
          }
        : {}),
      changes: rs.changes.slice(-5),
    };
  }

  // ---- Applying to the table ---------------------------------------------------------------

  /** Make the director's table hold what the health state says for one service. */
  private sync(vs: VsState): void {
    const d = this.director;
    if (!d || !this.started || vs !== this.services.get(vs.cfg.key)) return;
    const svc = d.table.find(vs.cfg.spec);
    if (!svc) return;
    const put = (spec: DestSpec, want: number | null): number | null => {
      const addr = IpAddr.tryParse(spec.addr);
      if (!addr) return want;
      const cur = svc.findDest(addr, spec.port);
      try {
        if (want === null) {
          if (cur) d.delDest(vs.cfg.spec, { af: spec.af, addr: spec.addr, port: spec.port });
        } else if (!cur) d.addDest(vs.cfg.spec, { ...spec, weight: want });
        else if (cur.weight !== want) d.editDest(vs.cfg.spec, { ...spec, weight: want });
      } catch (e) {
        this.log.error({ service: vs.label, dest: `${spec.addr}:${spec.port}`, err: (e as Error).message }, 'cannot apply a health change to the table');
      }
      return want;
    };
    for (const rs of vs.rs.values()) rs.applied = put(rs.cfg.dest, this.desiredWeight(rs));
    const sorry = vs.cfg.sorry;
    if (sorry) vs.sorryApplied = put(sorry.dest, vs.sorryActive ? 1 : sorry.inhibit ? 0 : null);
  }

  // ---- Dynamic feedback -------------------------------------------------------------------

  private startFeedback(vs: VsState): void {
    if (vs.feedbackTimer || !this.started) return;
    const f = [...vs.rs.values()].find((r) => r.cfg.feedback)?.cfg.feedback;
    if (!f) return;
    const tick = () => {
      vs.feedbackTimer = setTimeout(async () => {
        if (vs !== this.services.get(vs.cfg.key) || !this.started) return;
        try {
          await this.feedbackTick(vs);
        } catch (e) {
          this.log.error({ service: vs.label, err: (e as Error).message }, 'feedback round failed');
        }
        if (vs.feedbackTimer) tick();
      }, f.interval);
      vs.feedbackTimer.unref?.();
    };
    tick();
  }

  private stopFeedback(vs: VsState): void {
    if (vs.feedbackTimer) clearTimeout(vs.feedbackTimer);
    vs.feedbackTimer = null;
  }

  /** One round: poll every agent, compute the loads, move the weights (LVS design §4.1). */
  private async feedbackTick(vs: VsState): Promise<void> {
    const list = [...vs.rs.values()].filter((r) => r.cfg.feedback && r.feedback);
    const polls = await Promise.allSettled(list.map((rs) => pollAgent(rs.cfg.feedback!.agentHost, rs.cfg.feedback!.agentPort, rs.cfg.feedback!.agentProtocol, rs.cfg.feedback!.timeout)));
    if (vs !== this.services.get(vs.cfg.key) || !this.started) return;
    // input indicator: each server's share of the service's new connections since last round
    const svc = this.director?.table.find(vs.cfg.spec);
    const deltas = list.map((rs) => {
      const addr = IpAddr.tryParse(rs.cfg.dest.addr);
      const d = addr ? svc?.findDest(addr, rs.cfg.dest.port) : undefined;
      const now = d?.stats.conns;
      const prev = rs.feedback!.lastConns;
      rs.feedback!.lastConns = now;
      return now !== undefined && prev !== undefined ? Math.max(0, now - prev) : 0;
    });
    const shares = inputShares(deltas);
    let changed = false;
    list.forEach((rs, i) => {
      const f = rs.cfg.feedback!;
      const fb = rs.feedback!;
      const p = polls[i]!;
      fb.lastAt = new Date().toISOString();
      const fields = { service: vs.label, realServer: rs.label };
      if (p.status === 'rejected') {
        const err = (p.reason as Error).message;
        if (fb.agentUp) {
          this.log.warn({ ...fields, err }, `feedback: agent of ${rs.label} does not answer (${err})${f.onAgentFailure === 'zero' ? '; weight 0 until it does' : ''}`);
          if (f.onAgentFailure === 'zero' && rs.health.alive) this.recordChange(rs, fb.weight, 0, `feedback: agent unreachable (${err})`);
          changed = true;
        }
        fb.agentUp = false;
        fb.lastError = err;
        return;
      }
      if (!fb.agentUp) {
        this.log.info(fields, `feedback: agent of ${rs.label} answers again`);
        changed = true;
      }
      fb.agentUp = true;
      delete fb.lastError;
      fb.lastPoll = p.value;
      const values = indicatorValues(p.value.report, p.value.rttMs, shares[i], f.capacity);
      const agg = aggregateLoad(values, f.coefficients);
      fb.lastLoad = agg;
      const base = this.baseWeight(rs);
      if (base <= 0) return; // a server configured at weight 0 is left alone
      fb.fw = nextWeight(fb.fw, base, agg.load, f);
      const w = Math.round(fb.fw);
      if (worthWriting(w, fb.weight, f.threshold)) {
        const terms = Object.entries(agg.terms)
          .map(([k, t]) => `${t!.r.toFixed(2)}·${k} ${t!.value.toFixed(3)}`)
          .join(' + ');
        this.log.info(
          { ...fields, from: fb.weight, to: w, load: agg.load, terms: agg.terms, loopWeight: fb.fw },
          `Changing weight from ${fb.weight} to ${w} for ${rs.health.alive ? 'active' : 'inactive'} service ${rs.label} of VS ${vs.label} (feedback: load ${agg.load.toFixed(3)} = ${terms || '0'})`,
        );
        this.recordChange(rs, fb.weight, w, `feedback: aggregate load ${agg.load.toFixed(3)} (${terms || 'no indicators'})`);
        fb.weight = w;
        changed = true;
      }
    });
    if (changed) this.sync(vs);
  }

  // ---- Scripts -----------------------------------------------------------------------------

  /** notify_up/down, quorum_up/down: run as configured through sh, bounded in time. */
  private runScript(cmd: string, what: string): void {
    this.log.info({ script: cmd }, `Executing [${cmd}] for ${what}`);
    try {
      const child = spawn('/bin/sh', ['-c', cmd], { detached: true, stdio: 'ignore' });
      this.children.add(child);
      const timer = setTimeout(() => killTree(child), SCRIPT_TIMEOUT_MS);
      timer.unref();
      child.on('error', (e) => this.log.warn({ script: cmd, err: e.message }, 'notify script failed to start'));
      child.on('exit', () => {
        clearTimeout(timer);
        this.children.delete(child);
      });
      child.unref();
    } catch (e) {
      this.log.warn({ script: cmd, err: (e as Error).message }, 'notify script failed to start');
    }
  }

  // ---- Metrics -----------------------------------------------------------------------------

  /** Prometheus text for the health state (the metrics module may include it as is). */
  metricsText(): string {
    const lines: string[] = [];
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const family = (name: string, type: string, help: string, samples: [Record<string, string>, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) {
        const l = Object.entries(labels)
          .map(([k, x]) => `${k}="${esc(x)}"`)
          .join(',');
        lines.push(`${name}${l ? `{${l}}` : ''} ${v}`);
      }
    };
    const rsLabels = (rs: RsState) => ({ service: rs.vs.cfg.key, real_server: `${rs.cfg.dest.addr}:${rs.cfg.dest.port}` });
    const all = [...this.services.values()].flatMap((vs) => [...vs.rs.values()]);
    family('tsvs_health_real_server_up', 'gauge', '1 while every checker of the real server passes.', all.map((rs) => [rsLabels(rs), rs.health.alive ? 1 : 0]));
    family('tsvs_health_weight_configured', 'gauge', 'The weight the config gives the real server.', all.map((rs) => [rsLabels(rs), rs.cfg.configuredWeight]));
    family('tsvs_health_weight_current', 'gauge', 'The weight health checks and feedback impose (-1: out of the table).', all.map((rs) => [rsLabels(rs), this.desiredWeight(rs) ?? -1]));
    family(
      'tsvs_health_checks_total',
      'counter',
      'Check attempts by result.',
      all.flatMap((rs) =>
        rs.cfg.checkers.flatMap((c) => {
          const r = this.runners.get(c.key);
          const base = { ...rsLabels(rs), checker: c.kind };
          return [
            [{ ...base, result: 'success' }, r?.stats.successes ?? 0],
            [{ ...base, result: 'failure' }, r?.stats.failures ?? 0],
          ] as [Record<string, string>, number][];
        }),
      ),
    );
    family('tsvs_health_transitions_total', 'counter', 'Real servers that went up or down.', [
      [{ to: 'up' }, this.counters.transitions.up],
      [{ to: 'down' }, this.counters.transitions.down],
    ]);
    family(
      'tsvs_health_quorum_up',
      'gauge',
      '1 while the service has quorum.',
      [...this.services.values()].map((vs) => [{ service: vs.cfg.key }, vs.quorum.state === 'up' ? 1 : 0]),
    );
    family(
      'tsvs_health_sorry_server_active',
      'gauge',
      '1 while the sorry server takes the traffic.',
      [...this.services.values()].filter((vs) => vs.cfg.sorry).map((vs) => [{ service: vs.cfg.key }, vs.sorryActive ? 1 : 0]),
    );
    const fbs = all.filter((rs) => rs.feedback?.lastLoad);
    family('tsvs_feedback_aggregate_load', 'gauge', 'Aggregate load of the real server (1 = fully loaded).', fbs.map((rs) => [rsLabels(rs), rs.feedback!.lastLoad!.load]));
    family(
      'tsvs_feedback_indicator',
      'gauge',
      'Normalised load indicators reported for the real server.',
      fbs.flatMap((rs) => Object.entries(rs.feedback!.lastLoad!.terms).map(([k, t]) => [{ ...rsLabels(rs), indicator: k }, t!.value] as [Record<string, string>, number])),
    );
    family('tsvs_feedback_agent_up', 'gauge', '1 while the real server\'s agent answers.', all.filter((rs) => rs.feedback).map((rs) => [rsLabels(rs), rs.feedback!.agentUp ? 1 : 0]));
    family('tsvs_health_weight_changes_total', 'counter', 'Weight changes made by health checks and feedback.', [[{}, this.counters.weightChanges]]);
    return `${lines.join('\n')}\n`;
  }
}

function killTree(c: ChildProcess): void {
  if (c.pid === undefined || c.exitCode !== null) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    // gone
  }
}
