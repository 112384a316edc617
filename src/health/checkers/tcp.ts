// TCP_CHECK: a TCP connection to the target within connect_timeout, then closed. Nothing is
// sent; a server that accepts is up.

import type { ResolvedChecker } from '../config.js';
import { connectTcp, Inflight, type Probe, type ProbeContext } from './probe.js';

export function tcpProbe(c: ResolvedChecker): Probe {
  const inflight = new Inflight();
  return {
    async run(ctx: ProbeContext) {
      const bind = ctx.bind ?? c.bind;
      try {
        const sock = await connectTcp({ ...c.target, bind, timeoutMs: c.timing.connectTimeout }, (s) => inflight.add(s));
        sock.destroy();
        return { ok: true, detail: 'connected' };
      } catch (e) {
        return { ok: false, detail: (e as Error).message };
      }
    },
    close: () => inflight.close(),
  };
}
