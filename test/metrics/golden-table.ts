// The table and traffic of the golden /proc captures (shared/spec/golden/ipvsadm, cases proc_*),
// rebuilt on a director: the same ipvsadm commands in the recording script's order (so real
// servers keep the kernel's newest-first order), then the recorded TCP SYNs from 198.18.9.9.

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

export const GOLDEN_DIR = new URL('../../../shared/spec/golden/ipvsadm/', import.meta.url).pathname;
export const HAVE_GOLDENS = existsSync(`${GOLDEN_DIR}proc_ip_vs.out`);

export function golden(name: string): string {
  return readFileSync(`${GOLDEN_DIR}${name}.out`, 'utf8');
}

/** ipvsadm commands the recording ran before the proc_* cases (numeric forms). */
export const GOLDEN_SETUP = [
  '-A -t 198.18.0.1:80 -s wlc',
  '-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1',
  '-a -t 198.18.0.1:80 -r 198.19.0.3:80 -g -w 0',
  '-a -t 198.18.0.1:80 -r 198.19.0.4:8080 -m -w 5 -x 1000 -y 750',
  '-a -t 198.18.0.1:80 -r 198.18.9.9:80 -m -w 2',
  '-A -t 198.18.0.2:443 -s rr -p 360 -M 255.255.255.0',
  '-a -t 198.18.0.2:443 -r 198.19.0.5 -i -w 5',
  '-A -u 198.18.0.3:53 -s sh -o -b sh-fallback,sh-port',
  '-a -u 198.18.0.3:53 -r 198.19.0.53:5353 -m -w 3',
  '-A -t [2001:db8::80]:80 -s rr',
  '-a -t [2001:db8::80]:80 -r [2001:db8::a0a0]:80 -m -w 1',
  '-A -t [2001:db8::443]:443 -s wlc -p 1200 -M 64',
  '-a -t [2001:db8::443]:443 -r [2001:db8::a0a1]:443 -g -w 7',
  '-A -f 1 -s wrr',
  '-a -f 1 -r 198.19.0.6 -g -w 1',
  '-A -f 2 -6 -s mh -b mh-fallback,mh-port -p 600 -M 64',
  '-a -f 2 -6 -r [2001:db8::b]:0 -g -w 1',
  '-A -f 4294967295 -s lc -p',
  '-A -t 198.18.0.4:80 -s rr',
  '-a -t 198.18.0.4:80 -r 198.19.0.7:80 -i --tun-type gue --tun-port 6080 --tun-nocsum',
  '-a -t 198.18.0.4:80 -r 198.19.0.8 -i --tun-type gre --tun-csum',
  '-a -t 198.18.0.4:80 -r 198.19.0.9 -i --tun-type gue --tun-port 6081 --tun-remcsum',
  '-a -t 198.18.0.4:80 -r 198.19.0.10 -m',
  '-a -t 198.18.0.4:80 -r 198.19.0.11 -i --tun-type gue --tun-port 6082 --tun-csum',
  '-a -t 198.18.0.4:80 -r 198.19.0.12 -i --tun-type gre',
  '-a -t 198.18.0.4:80 -r 198.19.0.13:9999 -i --tun-type ipip',
  '-a -t 198.18.0.4:80 -r [2001:db8::c]:80 -i',
  '-A -u 198.18.0.5:5060 -s rr -p 1800 --pe sip',
  '-a -u 198.18.0.5:5060 -r 198.19.0.14:5060 -m',
  '-A --sctp-service 198.18.0.6:9000 -s rr',
  '-a --sctp-service 198.18.0.6:9000 -r 198.19.0.15:9001 -m -w 65535',
  '-A -t 198.18.0.7:80 -s rr -b flag-1,flag-2,flag-3',
  '-A -t 198.18.0.8:0 -s sed -p 30',
  '-a -t 198.18.0.8:0 -r 198.19.0.16 -m -w 2147483647',
  '-A -t 198.18.0.9:80 -s nq',
  '-a -t 198.18.0.9:80 -r 198.19.0.17:443 -m',
  '-A -t 198.18.0.10:80 -p -s fo',
  ...['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh'].flatMap((s, k) => [
    `-A -t 198.18.1.${20 + k}:80 -s ${s}`,
    `-a -t 198.18.1.${20 + k}:80 -r 198.19.1.${20 + k}:80 -m -w ${(20 + k) % 5}`,
  ]),
  '-A -u 198.18.0.11:53 -s rr -o',
  '-A -f 3 -s rr -o',
  '-A -u 198.18.0.12:53 -s rr -p 60 -o',
];

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
