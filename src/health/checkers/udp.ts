// UDP_CHECK: send the payload (random bytes when none is configured) to the target. Without
// require_reply the check passes unless an ICMP error (port, host or net unreachable) comes back
// within connect_timeout — silence counts as success, as in keepalived. With require_reply a
// reply must come, its length within [min, max] (0..255 by default) and its first bytes equal
// to the pattern where the pattern's nibbles are not x.

import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { CheckerConfig, ResolvedChecker } from '../config.js';
import { type CheckOutcome, parseHexPattern, type Probe, type ProbeContext } from './probe.js';

type UdpOptions = Extract<CheckerConfig, { type: 'udp' }>;

export function replyMatches(reply: Buffer, pattern: { bytes: Buffer; mask: Buffer }): boolean {
  const n = Math.min(reply.length, pattern.bytes.length);
  for (let i = 0; i < n; i++) if ((reply[i]! & pattern.mask[i]!) !== (pattern.bytes[i]! & pattern.mask[i]!)) return false;
  return true;
}

export function udpProbe(c: ResolvedChecker): Probe {
  const o = c.options as UdpOptions;
  const payload = o.payload ? parseHexPattern(o.payload).bytes : null;
  const pattern = typeof o.requireReply === 'string' ? parseHexPattern(o.requireReply) : null;
  const requireReply = o.requireReply !== undefined && o.requireReply !== false;
  const minLen = o.minReplyLength ?? 0;
  const maxLen = o.maxReplyLength ?? 255;
  const open = new Set<() => void>();
  return {
    run(ctx: ProbeContext) {
      return new Promise<CheckOutcome>((resolve) => {
        const sock = createSocket({ type: c.target.family === 6 ? 'udp6' : 'udp4' });
        let done = false;
        const finish = (r: CheckOutcome) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          open.delete(abort);
          try {
            sock.close();
          } catch {
            // already closed
          }
          resolve(r);
        };
        const abort = () => finish({ ok: false, detail: 'aborted' });
        open.add(abort);
        const timer = setTimeout(() => finish(requireReply ? { ok: false, detail: `no reply within ${c.timing.connectTimeout} ms` } : { ok: true, detail: 'no ICMP error' }), c.timing.connectTimeout);
        sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, detail: e.code ?? e.message }));
        sock.on('message', (msg) => {
          if (!requireReply) {
            finish({ ok: true, detail: 'reply received' });
            return;
          }
          if (msg.length < minLen || msg.length > maxLen) finish({ ok: false, detail: `reply length ${msg.length} outside ${minLen}..${maxLen}` });
          else if (pattern && !replyMatches(msg, pattern)) finish({ ok: false, detail: 'reply does not match' });
          else finish({ ok: true, detail: 'reply matches' });
        });
        const bind = ctx.bind ?? c.bind;
        const go = () =>
          sock.connect(c.target.port, c.target.host, () => {
            sock.send(payload ?? randomBytes(16), (e) => {
              if (e) finish({ ok: false, detail: (e as NodeJS.ErrnoException).code ?? e.message });
            });
          });
        try {
          if (bind) sock.bind({ ...(bind.address ? { address: bind.address } : {}), port: bind.port ?? 0 }, go);
          else go();
        } catch (e) {
          finish({ ok: false, detail: (e as Error).message });
        }
      });
    },
    close() {
      for (const a of [...open]) a();
    },
  };
}
