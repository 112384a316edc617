// ldirectord drives IPVS by running `ipvsadm -L -n` and `ipvsadm -L -n --thresholds` and
// reading them with fixed regular expressions (spec ipvsadm-keepalived.md §3.4): it skips the
// first three lines blindly, then reads service lines and real-server lines. vsadm's output
// must give it the same table it put in.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newApi, vsadm } from './harness.js';

const ADDR = String.raw`(\d+\.\d+\.\d+\.\d+:\d+|\[[0-9A-Fa-f:]+\]:\d+)`;
const SERVICE = /^(\w+)\s+(\d+\.\d+\.\d+\.\d+:\d+|\[[0-9A-Fa-f:]+\]:\d+|\d+)( IPv6)?\s+(\w+)(?:\s+persistent\s+(\d+))?(?:\s+mask\s+(.*))?/;
const REAL = new RegExp(String.raw`^  ->\s+${ADDR}\s+(\w+)\s+(\d+)`);
const REAL_THRESHOLDS = new RegExp(String.raw`^  ->\s+${ADDR}\s+(\d+)\s+(\d+)\s+(\d+)`);
const FORWARD: Record<string, string> = { Route: 'gate', Tunnel: 'ipip', Masq: 'masq' };

interface LdService {
  proto: string;
  vip: string;
  sched: string;
  persistent?: string;
  mask?: string;
  reals: Record<string, { forward?: string; weight?: number; u?: number; l?: number }>;
}

function ldirectordRead(listing: string, thresholds: string): Record<string, LdService> {
  const out: Record<string, LdService> = {};
  for (const [text, withThresholds] of [
    [listing, false],
    [thresholds, true],
  ] as const) {
    let current: LdService | null = null;
    for (const line of text.split('\n').slice(3)) {
      const s = SERVICE.exec(line);
      if (s) {
        const key = `${s[1]} ${s[2]}${s[3] ?? ''}`;
        out[key] ??= { proto: s[1]!, vip: s[2]!, sched: s[4]!, reals: {} };
        if (s[5]) out[key].persistent = s[5];
        if (s[6]) out[key].mask = s[6];
        current = out[key];
        continue;
      }
      if (!current) continue;
      if (withThresholds) {
        const r = REAL_THRESHOLDS.exec(line);
        if (r) current.reals[r[1]!] = { ...current.reals[r[1]!], u: Number(r[2]), l: Number(r[3]) };
      } else {
        const r = REAL.exec(line);
        if (r) current.reals[r[1]!] = { ...current.reals[r[1]!], forward: FORWARD[r[2]!], weight: Number(r[3]) };
      }
    }
  }
  return out;
}

test('ldirectord reads back the table it configured', async () => {
  const { api } = newApi();
  for (const l of [
    '-A -t 192.0.2.10:80 -s wrr',
    '-a -t 192.0.2.10:80 -r 10.1.0.1:80 -g -w 3 -x 100 -y 20',
    '-a -t 192.0.2.10:80 -r 10.1.0.2:8080 -m -w 0',
    '-A -t 192.0.2.10:443 -s wlc -p 300 -M 255.255.255.0',
    '-a -t 192.0.2.10:443 -r 10.1.0.3:443 -i -w 1',
    '-A -u [2001:db8::10]:53 -s rr',
    '-a -u [2001:db8::10]:53 -r [2001:db8::1:1]:53 -m -w 2',
    '-A -f 15 -s sh',
    '-a -f 15 -r 10.1.0.9:0 -g',
  ]) {
    assert.equal((await vsadm(api, l.split(' '))).status, 0, l);
  }
  const listing = (await vsadm(api, ['-L', '-n'])).out;
  const thresholds = (await vsadm(api, ['-L', '-n', '--thresholds'])).out;
  assert.deepEqual(ldirectordRead(listing, thresholds), {
    'TCP 192.0.2.10:80': {
      proto: 'TCP',
      vip: '192.0.2.10:80',
      sched: 'wrr',
      reals: { '10.1.0.1:80': { forward: 'gate', weight: 3, u: 100, l: 20 }, '10.1.0.2:8080': { forward: 'masq', weight: 0, u: 0, l: 0 } },
    },
    'TCP 192.0.2.10:443': {
      proto: 'TCP',
      vip: '192.0.2.10:443',
      sched: 'wlc',
      persistent: '300',
      mask: '255.255.255.0',
      reals: { '10.1.0.3:443': { forward: 'ipip', weight: 1, u: 0, l: 0 } },
    },
    'UDP [2001:db8::10]:53': { proto: 'UDP', vip: '[2001:db8::10]:53', sched: 'rr', reals: { '[2001:db8::1:1]:53': { forward: 'masq', weight: 2, u: 0, l: 0 } } },
    'FWM 15': { proto: 'FWM', vip: '15', sched: 'sh', reals: { '10.1.0.9:0': { forward: 'gate', weight: 1, u: 0, l: 0 } } },
  });
});

test('a full listing starts with exactly the three lines ldirectord skips', async () => {
  const { api } = newApi();
  await vsadm(api, '-A -t 192.0.2.10:80'.split(' '));
  for (const extra of [[], ['--thresholds']]) {
    const lines = (await vsadm(api, ['-L', '-n', ...extra])).out.split('\n');
    assert.match(lines[0]!, /^IP Virtual Server version \d+\.\d+\.\d+ \(size=\d+\)$/);
    assert.match(lines[1]!, /^Prot LocalAddress:Port/);
    assert.match(lines[2]!, /^ {2}-> RemoteAddress:Port/);
    assert.match(lines[3]!, SERVICE);
  }
});
