// Replays of the real kernel's scheduling decisions (spec/golden/scheduling) at scheduler level.
// The connection counters are simulated as the kernel keeps them: a held TCP connection is
// active, a closed one sits in TIME_WAIT and counts as inactive, a UDP connection is always
// inactive; UDP datagrams of one socket reuse their connection entry (every datagram is
// scheduled with one-packet scheduling), persistent services reuse a template per client
// network. Each service is built exactly as its .rules file lists it.

import { GOLDEN_SCHEDULING } from '../../helpers/golden.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { IpAddr } from '../../../src/core/addr.js';
import { IPPROTO_UDP } from '../../../src/core/constants.js';
import type { Dest } from '../../../src/core/service.js';
import { GOLDEN_SCENARIOS, type GoldenScenario } from './golden-data.js';
import { rsName, serviceFromRules } from './util.js';

const SHARED = GOLDEN_SCHEDULING.replace(/\/$/, '');
/** scheduling.sh closes held connections #0 and #1 after the sixth connection of lc_held. */
const CLOSES: Record<string, { before: number; held: number[] }> = { lc_held: { before: 6, held: [0, 1] } };
/** twos is random: only its proportions are meaningful (tested in twos.test.ts). */
const RANDOM = new Set(['twos_held', 'twos_w_seq']);

function replay(sc: GoldenScenario): (string | null)[] {
  const { t, protocol, persistent, netmask, onePacket } = serviceFromRules(sc.rules);
  const held: Dest[] = [];
  const udpConns = new Map<string, Dest>();
  const templates = new Map<number, Dest>();
  const got: (string | null)[] = [];
  sc.events.forEach(([src, flag], i) => {
    const close = CLOSES[sc.name];
    if (close && close.before === i) {
      for (const k of close.held) {
        const d = held[k]!;
        t.setConns(d, d.activeconns - 1, d.inactconns + 1);
      }
    }
    const [ip, port] = src.split(':') as [string, string];
    let d: Dest | null;
    if (protocol === IPPROTO_UDP) {
      const conn = onePacket ? undefined : udpConns.get(flag);
      if (conn) d = conn;
      else {
        d = t.pick(ip, Number(port));
        if (d && !onePacket) {
          udpConns.set(flag, d);
          t.setConns(d, d.activeconns, d.inactconns + 1);
        }
      }
    } else {
      const client = (IpAddr.parse(ip).w0 & netmask) >>> 0;
      const template = persistent ? templates.get(client) : undefined;
      d = template ?? t.pick(ip, Number(port));
      if (d && persistent) templates.set(client, d);
      if (d) {
        if (flag === 'h') {
          held.push(d);
          t.setConns(d, d.activeconns + 1, d.inactconns);
        } else t.setConns(d, d.activeconns, d.inactconns + 1);
      }
    }
    got.push(rsName(d));
  });
  return got;
}

for (const sc of GOLDEN_SCENARIOS) {
  if (RANDOM.has(sc.name)) continue;
  test(`golden ${sc.name}: the kernel's sequence`, () => {
    assert.deepEqual(
      replay(sc),
      sc.events.map((e) => e[2]),
    );
  });
}

test('golden: the embedded copy matches spec/golden/scheduling', (t) => {
  if (!existsSync(`${SHARED}/results.jsonl`)) {
    t.skip(`${SHARED} not present`);
    return;
  }
  const summary = readFileSync(`${SHARED}/SUMMARY.txt`, 'utf8').trim().split('\n');
  assert.equal(summary.length, GOLDEN_SCENARIOS.length);
  for (const sc of GOLDEN_SCENARIOS) {
    const rules = readFileSync(`${SHARED}/${sc.name}.rules`, 'utf8').trim().split('\n');
    assert.deepEqual(rules, sc.rules, sc.name);
    const line = summary.find((l) => l.split(/\s+/)[0] === sc.name)!;
    const servers = line.slice(line.lastIndexOf('}') + 1).trim().split(/\s+/);
    assert.deepEqual(
      servers,
      sc.events.map((e) => e[2] ?? 'None'),
      sc.name,
    );
  }
});
