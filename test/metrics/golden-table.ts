// The table and traffic of the golden /proc captures (shared/spec/golden/ipvsadm, cases proc_*),
// rebuilt on a director: the same ipvsadm commands in the recording script's order (so real
// servers keep the kernel's newest-first order), then the recorded TCP SYNs from 198.18.9.9.

import { GOLDEN_IPVSADM, GOLDEN_IPVSADM_SETUP_NUMERIC } from '../helpers/golden.js';
import { existsSync, readFileSync } from 'node:fs';
import { ServicesDb, StaticResolver } from '../../src/cli/vsadm/names.js';
import { runVsadm } from '../../src/cli/vsadm/run.js';
import type { IpvsApi } from '../../src/control/ipvs-api.js';
import { LocalApi } from '../../src/control/local-api.js';
import { ManualClock } from '../../src/core/clock.js';
import { Director } from '../../src/core/director.js';
import { TCP_SYN } from '../../src/core/proto/tcp.js';
import '../../src/core/schedulers/index.js';
import { Client } from '../helpers/director.js';

export const GOLDEN_DIR = GOLDEN_IPVSADM;
export const HAVE_GOLDENS = existsSync(`${GOLDEN_DIR}proc_ip_vs.out`);

export function golden(name: string): string {
  return readFileSync(`${GOLDEN_DIR}${name}.out`, 'utf8');
}

/** ipvsadm commands the recording ran before the proc_* cases (numeric forms). */
export const GOLDEN_SETUP = GOLDEN_IPVSADM_SETUP_NUMERIC;

const resolver = new StaticResolver(ServicesDb.fromText(''));

/** Run one ipvsadm command line against an API; throws with its stderr when it fails. */
export async function ipvsadm(api: IpvsApi, args: string): Promise<string> {
  let out = '';
  let err = '';
  const argv = args.split(/\s+/).filter(Boolean);
  const status = await runVsadm(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: '', argv0: 'ipvsadm', resolver }, api);
  if (status !== 0) throw new Error(`ipvsadm ${args}: exit ${status}: ${err}`);
  return out;
}

export async function buildGoldenTable(director: Director): Promise<void> {
  const api = new LocalApi(director);
  for (const cmd of GOLDEN_SETUP) await ipvsadm(api, cmd);
}

/**
 * The recorded traffic that left entries: SYNs from 198.18.9.9:40000–40005 to 198.18.0.1:80 and
 * 40006–40008 to 198.18.0.2:443 (persistent: one template), and 40009–40010 to 198.18.1.20:80
 * (its only real server has weight 0: no entry). The handshakes never complete; the clients
 * retransmit 5 s later, and the capture is taken 8 s after that, so the entries show 52 s left
 * and the template 347 s.
 */
export function playGoldenTraffic(director: Director, clock: ManualClock): void {
  const clients: Client[] = [];
  for (let p = 40000; p <= 40010; p++) {
    const vip = p <= 40005 ? '198.18.0.1:80' : p <= 40008 ? '198.18.0.2:443' : '198.18.1.20:80';
    clients.push(new Client(director, `198.18.9.9:${p}`, vip));
  }
  for (const c of clients) c.in(TCP_SYN);
  clock.advance(5000);
  director.advance();
  for (const c of clients) c.in(TCP_SYN);
  clock.advance(8000);
  director.advance();
}

export async function goldenDirector(): Promise<{ director: Director; clock: ManualClock }> {
  const clock = new ManualClock(1_000_000);
  const director = new Director({ now: clock.now });
  await buildGoldenTable(director);
  playGoldenTraffic(director, clock);
  return { director, clock };
}
