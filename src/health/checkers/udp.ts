// UDP_CHECK: send the payload (random bytes when none is configured) to the target. Without
// require_reply the check passes unless an ICMP error (port, host or net unreachable) comes back
// within connect_timeout — silence counts as success, as in keepalived. With require_reply a
// reply must come, its length within [min, max] (0..255 by default) and its first bytes equal
// to the pattern where the pattern's nibbles are not x.

import { randomBytes } from 'node:crypto';
import type { CheckerConfig, ResolvedChecker } from '../config.js';
import { exchangeDatagram, parseHexPattern, type Probe, type ProbeContext } from './probe.js';

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
      return exchangeDatagram({
        target: c.target,
        bind: ctx.bind ?? c.bind,
        timeoutMs: c.timing.connectTimeout,
        payload: () => payload ?? randomBytes(16),
        onTimeout: requireReply ? { ok: false, detail: `no reply within ${c.timing.connectTimeout} ms` } : { ok: true, detail: 'no ICMP error' },
        onError: (code) => ({ ok: false, detail: code }),
        onSendError: (code) => ({ ok: false, detail: code }),
        onMessage: (msg) => {
          if (!requireReply) return { ok: true, detail: 'reply received' };
          if (msg.length < minLen || msg.length > maxLen) return { ok: false, detail: `reply length ${msg.length} outside ${minLen}..${maxLen}` };
          if (pattern && !replyMatches(msg, pattern)) return { ok: false, detail: 'reply does not match' };
          return { ok: true, detail: 'reply matches' };
        },
        inflight: open,
      });
    },
    close() {
      for (const a of [...open]) a();
    },
  };
}
