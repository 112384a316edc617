// SMTP_CHECK: connect, expect a 220 greeting, send "HELO <name>", expect 250, send "QUIT" and
// read its reply. connect_timeout bounds the connection and each wait for a reply line. Unlike
// keepalived (which reads the first line only), multi-line replies ("250-…") are read to their
// last line, so servers with multi-line greetings are not marked down.

import type { Socket } from 'node:net';
import type { CheckerConfig, ResolvedChecker } from '../config.js';
import { connectTcp, Inflight, type Probe, type ProbeContext } from './probe.js';

type SmtpOptions = Extract<CheckerConfig, { type: 'smtp' }>;

export const DEFAULT_HELO = 'smtpchecker.keepalived.org';
const MAX_LINE = 4096;

/** Reads SMTP replies (a code with its continuation lines) one at a time, with a timeout each. */
class ReplyReader {
  private buf = '';
  private waiter: ((line: string | Error) => void) | null = null;
  private lines: string[] = [];
  private ended: Error | null = null;

  constructor(sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      if (this.buf.length > MAX_LINE * 8) this.buf = this.buf.slice(-MAX_LINE);
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i).replace(/\r$/, ''));
        this.buf = this.buf.slice(i + 1);
      }
      this.pump();
    });
    sock.on('end', () => this.end(new Error('Read failure (connection closed)')));
    sock.on('error', (e) => this.end(new Error(`Read failure (${e.message})`)));
  }

  private end(e: Error) {
    if (!this.ended) this.ended = e;
    this.pump();
  }

  private pump() {
    if (!this.waiter) return;
    // A reply is complete at its first line without the "-" continuation mark.
    const idx = this.lines.findIndex((l) => !/^\d{3}-/.test(l));
    if (idx >= 0) {
      const line = this.lines[idx]!;
      this.lines = this.lines.slice(idx + 1);
      const w = this.waiter;
      this.waiter = null;
      w(line);
    } else if (this.ended) {
      const w = this.waiter;
      this.waiter = null;
      w(this.ended);
    }
  }

  next(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error('Read timeout'));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.pump();
    });
  }
}

function code(line: string): number {
  const m = /^(\d{3})(?:[ \r]|$)/.exec(line);
  return m ? Number(m[1]) : -1;
}

export function smtpProbe(c: ResolvedChecker): Probe {
  const o = c.options as SmtpOptions;
  const helo = o.helo ?? DEFAULT_HELO;
  const inflight = new Inflight();
  return {
    async run(ctx: ProbeContext) {
      let sock: Socket | null = null;
      const t = c.timing.connectTimeout;
      try {
        sock = await connectTcp({ ...c.target, bind: ctx.bind ?? c.bind, timeoutMs: t }, (s) => inflight.add(s));
        const r = new ReplyReader(sock);
        if (code(await r.next(t)) !== 220) return { ok: false, detail: 'Bad greeting banner' };
        sock.write(`HELO ${helo}\r\n`);
        if (code(await r.next(t)) !== 250) return { ok: false, detail: 'Bad HELO response' };
        sock.write('QUIT\r\n');
        await r.next(t);
        return { ok: true, detail: 'greeting, HELO and QUIT answered' };
      } catch (e) {
        return { ok: false, detail: (e as Error).message };
      } finally {
        sock?.destroy();
      }
    },
    close: () => inflight.close(),
  };
}
