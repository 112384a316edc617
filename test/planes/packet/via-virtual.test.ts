// Health checks via: virtual through vsd and its packet plane (root, namespaces built here):
// a one-arm director with three real servers, DR (one thread) and TUN (vsrs on the real
// servers, worker threads). Every real server has an HTTP check via: virtual and one direct.
// The via: virtual checks pass through the plane, each probe source reaching only its own real
// server; without the VIP on a server's loopback (clients reaching it through the director
// would fail) its via: virtual check fails and the manager takes it out while its direct check
// still passes; with the VIP back it returns. A vsd killed with SIGKILL leaves its probe pair,
// rules and table; the next one removes them and checks again; SIGTERM removes everything.
// The director filters reverse paths strictly (rp_filter 1): the probes' replies pass.
//
// What the real servers need (and all they need beyond DR/TUN as usual): a route for the probe
// sources via the director. The topology gives them no default route, only that.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../../src/control/client.js';
import { createLvsTopology, type LvsTopology, type NsProcess } from '../../helpers/netns.js';
import { curl, httpServers, packetSkipReason, runAsync, type Servers, scratchDir, sleep, startVsrs, who } from './lvs.js';

const VSD = new URL('../../../src/cli/vsd.ts', import.meta.url).pathname;
const vsdCode = (args: string[]) => `import(${JSON.stringify(VSD)}).then(async (m) => { process.exitCode = await m.main(${JSON.stringify(args)}); })`;
const PROBES4 = '198.18.255.0/24';
const PROBES6 = '2001:2:0:ffff::/64';

interface CheckerStatus {
  type: string;
  via?: string;
  up: boolean;
  hasRun: boolean;
  attempts: number;
  failures: number;
  last?: { ok: boolean; detail: string };
}
interface RsStatus {
  address: string;
  state: string;
  checkers: CheckerStatus[];
}

const skip = packetSkipReason(['curl', 'nft']);

for (const method of ['dr', 'tun'] as const) {
  describe(`health checks via: virtual, ${method.toUpperCase()} through vsd's packet plane (root)`, { skip, timeout: 240_000 }, () => {
    let lvs: LvsTopology;
    let http: Servers;
    let agents: NsProcess[] = [];
    let vsd: NsProcess | undefined;
    let client: ControlClient | undefined;
    const dir = scratchDir();
    const sock = join(dir.dir, 'vsd.sock');
    const cfg = join(dir.dir, 'vsd.yaml');

    const startVsd = async (): Promise<void> => {
      vsd = lvs.director.ns.spawn(process.execPath, ['--import', 'tsx', '-e', vsdCode(['-c', cfg, '--no-proxy', '--socket', sock, '--log-level', 'warn'])]);
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          client = await ControlClient.connect(sock);
          const st = await client.status();
          if ((st.planes as Record<string, unknown>).packet) return;
          client.close();
        } catch {
          // not up yet
        }
        if (Date.now() > deadline || !vsd.running) throw new Error(`vsd did not start: ${vsd.stderr}${vsd.stdout}`);
        await sleep(200);
      }
    };

    const realServers = async (): Promise<RsStatus[]> => {
      const st = await client!.status();
      const h = (st.extensions as { health: { services: Array<{ service: string; realServers: RsStatus[] }> } }).health;
      return h.services.flatMap((s) => s.realServers);
    };

    /** The table's real servers of the IPv4 service. */
    const inTable = async (): Promise<string[]> => {
      const svcs = await client!.getServices();
      const s = svcs.find((x) => x.addr === lvs.vip4 && x.port === 80);
      return (s?.dests ?? []).map((d) => d.addr).sort();
    };

    const waitFor = async (what: string, pred: () => Promise<boolean>, ms = 20_000): Promise<void> => {
      const until = Date.now() + ms;
      while (!(await pred())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await realServers(), null, 1)}`);
        await sleep(200);
      }
    };

    const allVirtualUp = async (): Promise<boolean> => {
      const rs = await realServers();
      return rs.length === 6 && rs.every((r) => r.checkers.every((c) => c.hasRun && c.up && c.attempts > 0 && (c.via === undefined || c.via === 'virtual (packet plane)')));
    };

    before(async () => {
      lvs = createLvsTopology(`vv${method}`, { arms: 'one', servers: 3, dr: true, serversViaDirector: false });
      const d = lvs.director;
      // Strict reverse-path filtering on the director: the replies reach the probes anyway.
      for (const k of ['all', d.clientIf]) d.ns.sysctl(`net.ipv4.conf.${k}.rp_filter`, 1);
      for (const r of lvs.servers) {
        r.ns.ip('-4', 'route', 'add', PROBES4, 'via', d.serverV4);
        r.ns.ip('-6', 'route', 'add', PROBES6, 'via', d.serverV6);
      }
      if (method === 'tun') agents = await Promise.all(lvs.servers.map((r) => startVsrs(r.ns, ['-i', r.ifname])));
      http = await httpServers(lvs);
      const checks = (extra: string[]) => [
        '        check:',
        '          checkers:',
        '            - { type: http, via: virtual, urls: [{ path: / }] }',
        ...extra,
      ];
      writeFileSync(
        cfg,
        [
          'services:',
          `  - address: "${lvs.vip4}:80"`,
          '    scheduler: rr',
          '    health: { delayLoop: 0.5, connectTimeout: 1, retry: 1, delayBeforeRetry: 0.3, warmup: 0 }',
          '    realServers:',
          ...lvs.servers.flatMap((r) => [`      - address: "${r.v4}:80"`, `        method: ${method}`, ...checks(['            - { type: http, urls: [{ path: / }] }'])]),
          `  - address: "[${lvs.vip6}]:80"`,
          '    scheduler: rr',
          '    health: { delayLoop: 0.5, connectTimeout: 1, retry: 1, delayBeforeRetry: 0.3, warmup: 0 }',
          '    realServers:',
          ...lvs.servers.flatMap((r) => [`      - address: "[${r.v6}]:80"`, `        method: ${method}`, ...checks([])]),
          'packet:',
          `  interfaces: [${d.clientIf}]`,
          ...(method === 'tun' ? ['  mode: threads', '  threads: 2'] : []),
          '',
        ].join('\n'),
      );
      await startVsd();
    });

    after(async () => {
      client?.close();
      await vsd?.stop(3000);
      await http?.stop();
      await Promise.all(agents.map((a) => a.stop()));
      await lvs?.destroy();
      dir.remove();
    });

    test('every via: virtual check passes through the plane; each probe source reaches only its own real server', async () => {
      await waitFor('every checker up', allVirtualUp);
      const failed = (await realServers()).flatMap((r) => r.checkers.filter((c) => c.failures !== 0).map((c) => `${r.address} ${c.via ?? 'direct'}: ${c.last?.detail}`));
      assert.deepEqual(failed, [], 'no check failed, the first ones included');
      const conns = (await client!.getConnections()).filter((c) => c.caddr.startsWith('198.18.255.') || c.caddr.startsWith('2001:2:0:ffff:'));
      const bySource = new Map<string, Set<string>>();
      for (const c of conns) bySource.set(c.caddr, (bySource.get(c.caddr) ?? new Set()).add(c.daddr));
      assert.equal(bySource.size, 6, `one source per (service, real server): ${[...bySource.keys()].join(' ')}`);
      for (const [src, servers] of bySource) assert.equal(servers.size, 1, `${src} reached ${[...servers].join(' ')}`);
      const reached = [...bySource.values()].map((s) => [...s][0]!).sort();
      assert.deepEqual(reached, [...lvs.servers.map((r) => r.v4), ...lvs.servers.map((r) => r.v6)].sort());
      // Clients are scheduled as before.
      const seen = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
        assert.equal(r.code, 0, r.stderr);
        seen.add(who(r.stdout));
      }
      assert.equal(seen.size, 3);
      const pkt = (await client!.status()).planes as Record<string, { virtualPaths: { paths: unknown[] } }>;
      assert.equal(pkt.packet!.virtualPaths.paths.length, 6);
    });

    test('without the VIP on its loopback a real server fails via: virtual and leaves the table (its direct check passes); with it back it returns', async () => {
      const rs = lvs.servers[1]!;
      const addr = `${rs.v4}:80`;
      rs.ns.ip('addr', 'del', `${lvs.vip4}/32`, 'dev', 'lo');
      try {
        await waitFor('the server out of the table', async () => !(await inTable()).includes(rs.v4));
        const st = (await realServers()).find((r) => r.address === addr)!;
        assert.equal(st.state, 'down');
        const virtual = st.checkers.find((c) => c.via !== undefined)!;
        const direct = st.checkers.find((c) => c.via === undefined)!;
        assert.equal(virtual.up, false, JSON.stringify(virtual));
        assert.equal(direct.up, true, 'the direct check still passes');
        assert.equal(direct.last?.ok, true);
        for (let i = 0; i < 4; i++) {
          const r = await curl(lvs.client.ns, `http://${lvs.vip4}/`);
          assert.equal(r.code, 0, r.stderr);
          assert.notEqual(who(r.stdout), 'rs2');
        }
        // Other servers and the IPv6 service are untouched.
        assert.deepEqual(await inTable(), [lvs.servers[0]!.v4, lvs.servers[2]!.v4].sort());
      } finally {
        rs.ns.ip('addr', 'add', `${lvs.vip4}/32`, 'dev', 'lo');
      }
      await waitFor('the server back in the table', async () => (await inTable()).includes(rs.v4));
      await waitFor('every checker up again', allVirtualUp);
    });

    test('SIGKILL leaves the probe pair, rules and table; the next vsd removes them and checks again; SIGTERM removes all', async () => {
      const ns = lvs.director.ns;
      const present = async () => ({
        link: (await runAsync(ns, 'ip', ['link', 'show', 'dev', 'tsvsvp0'])).code === 0,
        rule4: (await runAsync(ns, 'ip', ['-4', 'rule', 'show', 'pref', '7470'])).stdout.toString().includes(PROBES4),
        rule6: (await runAsync(ns, 'ip', ['-6', 'rule', 'show', 'pref', '7470'])).stdout.toString().includes(PROBES6),
        table: (await runAsync(ns, 'nft', ['list', 'table', 'inet', 'tsvs_vpath'])).code === 0,
      });
      assert.deepEqual(await present(), { link: true, rule4: true, rule6: true, table: true });
      client!.close();
      vsd!.signal('SIGKILL');
      await vsd!.exited;
      assert.deepEqual(await present(), { link: true, rule4: true, rule6: true, table: true }, 'a killed vsd cleans nothing');
      await startVsd();
      await waitFor('the checks through the new vsd', allVirtualUp);
      assert.match(vsd!.stdout, /removed the probe pair, rules and table left by a previous packet plane/);
      const rules = (await runAsync(ns, 'ip', ['-4', 'rule', 'show', 'pref', '7470'])).stdout.toString().trim().split('\n');
      assert.equal(rules.length, 1, 'one rule, not two');
      client!.close();
      await vsd!.stop(5000);
      assert.equal(vsd!.exitCode, 0, vsd!.stderr);
      assert.deepEqual(await present(), { link: false, rule4: false, rule6: false, table: false });
    });
  });
}
