// keepalived's per-checker state machine, and the real-server aggregation over checkers.
//
// Each checker kind in keepalived has its own epilog deciding when to retry and when to change
// state; they differ in small ways that show in the timing, so each is reproduced here as read
// in keepalived 2.2 (check_tcp.c, check_udp.c, check_dns.c, check_smtp.c, check_misc.c,
// check_http.c). Common to all: a checker starts up (or down with alpha); `retry` extra attempts
// spaced `delay_before_retry` apart precede a DOWN, so a server goes down on the retry+1-th
// consecutive failure; at start-up the retry counter starts exhausted, so the first failure is
// decisive (SMTP excepted: it resets the counter at each cycle); one success brings a checker UP.
//
// Pure: no timers. The runner feeds each attempt's result in and sleeps for the delay it gets.

import type { CheckerKind, ResolvedTiming } from './config.js';

export type Transition = 'up' | 'down' | null;

export interface Step {
  /** ms until the next attempt. */
  delay: number;
  /** The delay counts from the start of the attempt (MISC), not from its end. */
  fromStart: boolean;
  /** The checker's state change, if any (an "up" on a first success is reported too). */
  change: Transition;
  /** A DOWN after this many retries (for keepalived's "failed after N retries"). */
  retries: number;
}

type Style = 'tcp' | 'dns' | 'smtp' | 'misc' | 'http';

const STYLE: Record<CheckerKind, Style> = { tcp: 'tcp', udp: 'tcp', dns: 'dns', smtp: 'smtp', misc: 'misc', http: 'http', https: 'http' };

export class CheckerMachine {
  /** keepalived's is_up. */
  isUp: boolean;
  /** keepalived's has_run: at least one decisive result was seen. */
  hasRun = false;
  retryIt: number;
  /** HTTP: index of the URL the next attempt fetches; failedUrl: the one that failed (or -1). */
  urlIt = 0;
  failedUrl = -1;
  /** SMTP: the next attempt starts a new cycle (resets the retry counter). */
  private newCycle = true;
  private readonly style: Style;

  constructor(
    kind: CheckerKind,
    readonly timing: Pick<ResolvedTiming, 'delayLoop' | 'delayBeforeRetry' | 'retry' | 'alpha'>,
    readonly nUrls = 1,
    readonly fastRecovery = false,
  ) {
    this.style = STYLE[kind];
    this.isUp = !timing.alpha;
    // "For non alpha mode, one failure is enough initially" (check_data.c)
    this.retryIt = timing.retry;
  }

  /** Record one attempt's result; returns when to try next and any state change. */
  result(ok: boolean): Step {
    switch (this.style) {
      case 'tcp':
        return this.tcp(ok);
      case 'dns':
        return this.dns(ok);
      case 'smtp':
        return this.smtp(ok);
      case 'misc':
        return this.misc(ok);
      case 'http':
        return this.http(ok);
    }
  }

  private up(): Transition {
    const changed = !this.isUp || !this.hasRun;
    this.isUp = true;
    return changed ? 'up' : null;
  }

  private down(): Transition {
    const changed = this.isUp || !this.hasRun;
    this.isUp = false;
    return changed ? 'down' : null;
  }

  /** tcp_epilog / udp_epilog: retries even while down, without effect on the state. */
  private tcp(ok: boolean): Step {
    const t = this.timing;
    let change: Transition = null;
    let delay: number;
    let retries = 0;
    if (ok || this.retryIt >= t.retry) {
      delay = t.delayLoop;
      retries = this.hasRun ? t.retry : 0;
      this.retryIt = 0;
      if (ok && (!this.isUp || !this.hasRun)) change = this.up();
      else if (!ok && (this.isUp || !this.hasRun)) change = this.down();
    } else {
      delay = t.delayBeforeRetry;
      this.retryIt++;
    }
    this.hasRun = true;
    return { delay, fromStart: false, change, retries };
  }

  /** dns_final: retries only while up (or before the first result). */
  private dns(ok: boolean): Step {
    const t = this.timing;
    let change: Transition = null;
    let retries = 0;
    if (!ok) {
      if (this.isUp || !this.hasRun) {
        if (this.retryIt < t.retry) {
          this.retryIt++;
          this.hasRun = true;
          return { delay: t.delayBeforeRetry, fromStart: false, change: null, retries: 0 };
        }
        retries = this.hasRun ? t.retry : 0;
        change = this.down();
      }
    } else if (!this.isUp || !this.hasRun) {
      change = this.up();
    }
    this.retryIt = 0;
    this.hasRun = true;
    return { delay: t.delayLoop, fromStart: false, change, retries };
  }

  /** smtp_final: each cycle starts with a fresh retry counter; retries even while down. */
  private smtp(ok: boolean): Step {
    const t = this.timing;
    if (this.newCycle) this.retryIt = 0;
    if (!ok) {
      if (++this.retryIt <= t.retry) {
        this.newCycle = false;
        return { delay: t.delayBeforeRetry, fromStart: false, change: null, retries: 0 };
      }
      const change = this.isUp || !this.hasRun ? this.down() : null;
      this.newCycle = true;
      return { delay: t.delayLoop, fromStart: false, change, retries: t.retry };
    }
    this.retryIt = 0;
    const change = !this.isUp || !this.hasRun ? this.up() : null;
    this.hasRun = true;
    this.newCycle = true;
    return { delay: t.delayLoop, fromStart: false, change, retries: 0 };
  }

  /** misc_check_child_thread: the next run is timed from the start of this one. */
  private misc(ok: boolean): Step {
    const t = this.timing;
    let change: Transition = null;
    let retries = 0;
    if (ok) {
      if (!this.isUp || !this.hasRun) change = this.up();
      this.retryIt = 0;
    } else if (this.isUp || !this.hasRun) {
      if (this.retryIt < t.retry) {
        this.retryIt++;
      } else {
        this.retryIt = 0;
        retries = t.retry;
        change = this.down();
      }
    }
    this.hasRun = true;
    return { delay: this.retryIt ? t.delayBeforeRetry : t.delayLoop, fromStart: true, change, retries };
  }

  /**
   * check_http.c epilog: one URL per attempt; all URLs must pass in a row (a delay_loop apart,
   * back to back with fast_recovery while recovering) before the checker is up; a URL that
   * fails retry+1 times takes it down, and once down only that URL is retried, every
   * max(delay_before_retry, delay_loop), until it passes and the whole list is checked again.
   */
  private http(ok: boolean): Step {
    const t = this.timing;
    let method: 'new' | 'retry' | 'failed';
    if (ok) method = 'new';
    else if (this.isUp || !this.hasRun) {
      this.hasRun = true;
      method = 'retry';
    } else method = 'failed';

    let change: Transition = null;
    let retries = 0;
    if (method === 'new') {
      this.urlIt = this.urlIt + 1 >= this.nUrls ? -1 : this.urlIt + 1;
      this.retryIt = 0;
    } else if (method === 'retry') this.retryIt++;

    if (method === 'new' && this.urlIt === -1 && this.failedUrl === -1) {
      if (!this.isUp || !this.hasRun) {
        change = this.up();
        this.hasRun = true;
      }
      this.urlIt = 0;
      this.retryIt = 0;
    } else if (method === 'retry' && this.retryIt > t.retry) {
      if (this.isUp || !this.hasRun) {
        retries = this.retryIt - 1;
        change = this.down();
      }
      this.failedUrl = this.urlIt;
    } else if (method === 'new' && this.failedUrl !== -1) {
      this.failedUrl = -1;
      this.urlIt = 0;
      this.retryIt = 0;
    }

    let delay: number;
    if (method === 'new') {
      delay = t.delayLoop;
      if (!this.hasRun) this.retryIt = t.retry;
    } else if (this.failedUrl !== -1) delay = Math.max(t.delayBeforeRetry, t.delayLoop);
    else delay = t.delayBeforeRetry;
    if (this.fastRecovery && (!this.hasRun || (!this.isUp && this.failedUrl === -1))) delay = 0;
    return { delay, fromStart: false, change, retries };
  }

  /** Which URL the next attempt fetches (HTTP). */
  get nextUrl(): number {
    return Math.max(this.urlIt , 0);
  }
}

/**
 * A real server over its checkers (ipwrapper.c update_svr_checker_state): alive only while no
 * checker has failed; the first failing checker takes it down, the last recovering one brings
 * it back.
 */
export class RealServerHealth {
  readonly failed = new Set<string>();
  alive: boolean;

  constructor(initiallyAlive: boolean) {
    this.alive = initiallyAlive;
  }

  /** A checker changed state; returns the real server's transition, if any. */
  checker(id: string, up: boolean): Transition {
    if (up) {
      if (!this.failed.delete(id) && this.alive) return null;
      if (this.failed.size === 0 && !this.alive) {
        this.alive = true;
        return 'up';
      }
      return null;
    }
    this.failed.add(id);
    if (this.alive) {
      this.alive = false;
      return 'down';
    }
    return null;
  }

  /** A checker went away (reload): its failure no longer counts. */
  forget(id: string): Transition {
    if (this.failed.delete(id) && this.failed.size === 0 && !this.alive) {
      this.alive = true;
      return 'up';
    }
    return null;
  }
}
