// keepalived.conf as vsd's config: the virtual_server / real_server / checker blocks become the
// tsvs Config (health included), with keepalived's defaults and corrections and its messages;
// whatever tsvs does not support is named in a warning with its file and line.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, desiredTable } from '../../src/control/config.js';
import { expandRange, formatWarning, loadKeepalivedFile, looksLikeKeepalived, parseKeepalived } from '../../src/control/keepalived.js';
import { resolveHealth } from '../../src/health/config.js';
import { Cleanup, scoped, startVsd, TcpServer, waitFor } from '../health/helpers.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const tmp = mkdtempSync(join(tmpdir(), 'tsvs-keepalived-'));
cleanup.add(tmp, (d) => rmSync(d, { recursive: true, force: true }));

const warnings = (text: string) => parseKeepalived(text, 'k.conf').warnings.map(formatWarning);

test('the spec’s example (§2.9): two real servers, DR, wrr, persistence, TCP_CHECK and HTTP_GET', () => {
  const { config, warnings: w } = parseKeepalived(
    `virtual_server 10.0.0.1 80 {
    delay_loop 6
    lvs_sched wrr
    lvs_method DR
    persistence_timeout 300
    protocol TCP
    real_server 192.168.1.2 80 {
        weight 3
        TCP_CHECK { connect_timeout 3  retry 2  delay_before_retry 2 }
    }
    real_server 192.168.1.3 80 {
        weight 1
        inhibit_on_failure
        HTTP_GET { url { path /health  status_code 200 } }
    }
}
`,
    'k.conf',
  );
  assert.deepEqual(w, []);
  const t = desiredTable(config);
  assert.equal(t.services.length, 1);
  const s = t.services[0]!;
  assert.deepEqual([s.protocol, s.addr, s.port, s.schedName, s.timeout, s.flags & 1], [6, '10.0.0.1', 80, 'wrr', 300, 1]);
  assert.deepEqual(
    s.dests.map((d) => [d.addr, d.port, d.connFlags, d.weight]),
    [
      ['192.168.1.2', 80, 3, 3],
      ['192.168.1.3', 80, 3, 1],
    ],
  );
  const h = resolveHealth(config).services[0]!;
  const [r1, r2] = h.realServers as [(typeof h.realServers)[0], (typeof h.realServers)[0]];
  assert.deepEqual([r1.checkers[0]!.kind, r1.checkers[0]!.timing.connectTimeout, r1.checkers[0]!.timing.retry, r1.checkers[0]!.timing.delayBeforeRetry, r1.checkers[0]!.timing.delayLoop], ['tcp', 3000, 2, 2000, 6000]);
  assert.deepEqual([r2.inhibit, r2.checkers[0]!.kind, (r2.checkers[0]!.options as { urls: unknown[] }).urls], [true, 'http', [{ path: '/health', status: [200] }]]);
});

test('keepalived’s defaults and corrections, with its messages', () => {
  const { config, warnings: w } = parseKeepalived(
    `virtual_server 10.0.0.1 80 {
  real_server 192.168.1.2 8080 {
  }
}
virtual_server 10.0.0.2 0 {
  protocol TCP
  lvs_method DR
  lvs_sched rr
  real_server 192.168.1.3 80 {
  }
}
virtual_server 10.0.0.3 80 {
  protocol TCP
  lvs_method NAT
  lvs_sched rr
}
virtual_server 10.0.0.4 80 {
  protocol TCP
  lvs_method DR
  lvs_sched rr
  real_server 192.168.1.5 8080 {
  }
  real_server 192.168.1.5 80 {
  }
}
`,
    'k.conf',
  );
  assert.deepEqual(w.map(formatWarning), [
    'Virtual server [10.0.0.1]:none:80: no protocol set - defaulting to UDP',
    'Virtual server [10.0.0.1]:udp:80: no forwarding method set, setting default NAT',
    "Virtual server [10.0.0.1]:udp:80: no scheduler set, setting default 'wlc'",
    'Virtual server [10.0.0.2]:tcp:0: zero port only valid for persistent services - setting',
    // a DR real server takes the service's port, even 0
    "WARNING - virtual server [10.0.0.2]:tcp:0 and real server [192.168.1.3]:tcp:80 ports don't match - resetting",
    'Virtual server [10.0.0.3]:tcp:80 has no real servers - ignoring',
    "WARNING - virtual server [10.0.0.4]:tcp:80 and real server [192.168.1.5]:tcp:8080 ports don't match - resetting",
    'real server 192.168.1.5:80 is a duplicate in virtual server [10.0.0.4]:tcp:80 - removing',
  ].map((m, i) => `(k.conf: Line ${[1, 1, 1, 5, 9, 12, 21, 23][i]}) ${m}`));
  const t = desiredTable(config);
  assert.deepEqual(
    t.services.map((s) => [s.protocol, s.addr, s.port, s.schedName, s.timeout, s.dests.map((d) => `${d.addr}:${d.port}/${d.connFlags}`)]),
    [
      [17, '10.0.0.1', 80, 'wlc', 0, ['192.168.1.2:8080/0']],
      [6, '10.0.0.2', 0, 'rr', 360, ['192.168.1.3:0/3']],
      [6, '10.0.0.4', 80, 'rr', 0, ['192.168.1.5:80/3']],
    ],
  );
});

test('every checker kind and its keywords', () => {
  const { config, warnings: w } = parseKeepalived(
    `virtual_server 10.0.0.1 80 {
  protocol TCP
  lvs_method NAT
  lvs_sched wlc
  delay_loop 2.5
  alpha
  quorum 2
  hysteresis 1
  quorum_up "/usr/local/bin/up"
  sorry_server 192.168.9.9 8080
  sorry_server_inhibit
  virtualhost www.example.com
  real_server 192.168.1.2 80 {
    weight 2
    notify_down "/bin/echo down"
    HTTP_GET {
      url {
        path /a
        digest 0123456789ABCDEF0123456789abcdef
        status_code 200-299 404
      }
      url { path /b }
      http_protocol 1.1
      fast_recovery
      nb_get_retry 4
      delay_before_retry 0.5
    }
    SSL_GET {
      url { path / virtualhost sni.example }
      enable_sni
    }
    UDP_CHECK {
      connect_port 53
      payload 01 02 0a
      require_reply 0102xx
      max_reply_length 64
    }
    DNS_CHECK {
      connect_port 53
      type A
      name www.example.com
    }
    SMTP_CHECK {
      connect_port 25
      helo_name probe.example
    }
    MISC_CHECK {
      misc_path "/usr/local/bin/check --quick 192.168.1.2"
      misc_timeout 3
      misc_dynamic
    }
  }
}
`,
    'k.conf',
  );
  assert.deepEqual(w.map(formatWarning), ["(k.conf: Line 25) nb_get_retry is deprecated - please use 'retry'"]);
  const svc = config.services[0]!;
  assert.deepEqual(svc.health, {
    delayLoop: 2.5,
    alpha: true,
    quorum: 2,
    hysteresis: 1,
    quorumUp: '/usr/local/bin/up',
    virtualhost: 'www.example.com',
    sorryServer: { address: '192.168.9.9:8080', method: 'nat', inhibit: true },
  });
  const check = svc.realServers[0]!.check as { notifyDown: string; checkers: Record<string, unknown>[] };
  assert.equal(check.notifyDown, '/bin/echo down');
  assert.deepEqual(check.checkers, [
    { type: 'http', urls: [{ path: '/a', digest: '0123456789abcdef0123456789abcdef', status: ['200-299', 404] }, { path: '/b' }], protocol: '1.1', fastRecovery: true, retry: 4, delayBeforeRetry: 0.5 },
    { type: 'https', urls: [{ path: '/', virtualhost: 'sni.example' }], sni: true },
    { type: 'udp', connectPort: 53, payload: '01 02 0a', requireReply: '0102xx', maxReplyLength: 64 },
    { type: 'dns', connectPort: 53, query: 'A', name: 'www.example.com' },
    { type: 'smtp', connectPort: 25, helo: 'probe.example' },
    { type: 'misc', command: '/usr/local/bin/check --quick 192.168.1.2', timeout: 3, dynamic: true },
  ]);
  const h = resolveHealth(config).services[0]!;
  assert.equal(h.realServers[0]!.checkers[0]!.timing.delayLoop, 2500);
  assert.equal(h.sorry!.inhibit, true);
});

test('unsupported keywords and blocks are named with file and line, never silently dropped', () => {
  const w = warnings(`! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
   lvs_timeouts tcp 7200 tcpfin 120 udp 300
   enable_script_security
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
}
$DEF=1
virtual_server 10.0.0.1 80 {
  protocol TCP
  lvs_method DR
  lvs_sched rr
  ha_suspend
  snmp_name web
  bogus_keyword 3
  real_server 192.168.1.2 80 {
    PING_CHECK { }
    FILE_CHECK { track_file f }
    TCP_CHECK {
      fwmark 7
      bind_if eth1
      nb_get_retry 3
    }
    MISC_CHECK {
      misc_path /bin/true
      user nobody
    }
    HTTP_GET { url { path / regex_options caseless } }
  }
}
`);
  assert.deepEqual(w, [
    '(k.conf: Line 12) \'$DEF=1\': keepalived parameter substitution, conditional and sequence lines are not supported - line ignored',
    '(k.conf: Line 3) global_defs router_id: used only in e-mail alerts, which tsvs does not send - ignored',
    "(k.conf: Line 5) global_defs enable_script_security: scripts run as the user vsd runs as - ignored",
    '(k.conf: Line 7) vrrp_instance: VRRP is not part of tsvs (run keepalived for VRRP next to vsd) - block ignored',
    '(k.conf: Line 17) ha_suspend is not supported (tsvs does not watch for the VIP on local interfaces): checkers always run',
    '(k.conf: Line 18) snmp_name: SNMP is not supported - ignored',
    "(k.conf: Line 19) Unknown keyword 'bogus_keyword'",
    '(k.conf: Line 21) PING_CHECK is not supported by tsvs (needs raw ICMP sockets): real server [192.168.1.2]:80 is checked without it',
    '(k.conf: Line 22) FILE_CHECK is not supported by tsvs (track_file is not supported): real server [192.168.1.2]:80 is checked without it',
    '(k.conf: Line 24) fwmark on checker packets (SO_MARK) is not supported - ignored; with policy routing use bindto and a rule on the source address',
    '(k.conf: Line 25) bind_if is not supported (bind to an address with bindto) - ignored',
    "(k.conf: Line 26) Unknown keyword 'nb_get_retry'",
    '(k.conf: Line 30) MISC_CHECK user: scripts run as the user vsd runs as - ignored',
    '(k.conf: Line 32) regex_options is not supported (regexes are JavaScript\'s, matched on the first MiB of the body) - ignored',
  ]);
});

test('lvs_timeouts, tunnels, scheduler flags, fwmark services, IPv6, persistence granularity', () => {
  const { config, warnings: w } = parseKeepalived(
    `global_defs {
  lvs_timeouts tcp 7200 udp 60
  checker_log_all_failures on
}
virtual_server fwmark 7 {
  lvs_method TUN type gue port 6080 csum
  lvs_sched sh
  sh-port
  mh-fallback
  persistence_timeout
  persistence_granularity 255.255.255.0
  real_server 192.168.1.2 80 {
    weight 5
    uthreshold 100
    lthreshold 10
  }
}
virtual_server 2001:db8::1 443 {
  protocol TCP
  lvs_method NAT
  lvs_sched mh
  mh-port
  real_server 2001:db8::10 8443 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`,
    'k.conf',
  );
  assert.deepEqual(w.map(formatWarning), ['(k.conf: Line 9) mh-fallback only applies to mh scheduler - ignoring']);
  assert.deepEqual(config.timeouts, { tcp: 7200, tcpfin: 0, udp: 60 });
  assert.deepEqual(config.health, { logAllFailures: true });
  const [fw, v6] = config.services as [(typeof config.services)[0], (typeof config.services)[0]];
  assert.deepEqual([fw.fwmark, fw.scheduler, fw.schedFlags, fw.persistent, fw.netmask], [7, 'sh', ['sh-port'], true, '255.255.255.0']);
  assert.deepEqual(fw.realServers[0], { address: '192.168.1.2:0', method: 'tun', weight: 5, upperThreshold: 100, lowerThreshold: 10, tunnel: { type: 'gue', port: 6080, checksum: 'csum' } });
  assert.deepEqual([v6.address, v6.schedFlags, v6.realServers[0]!.address], ['[2001:db8::1]:443', ['mh-port'], '[2001:db8::10]:8443']);
});

test('virtual_server_group: each entry (addresses, ranges, CIDR, fwmarks) becomes a service with the same real servers', () => {
  const { config, warnings: w } = parseKeepalived(
    `virtual_server_group web {
  10.0.0.1 80
  10.0.0.10-12 80
  10.0.1.8/30 8080
  fwmark 9
}
virtual_server group web {
  protocol TCP
  lvs_method NAT
  lvs_sched rr
  real_server 192.168.1.2 80 {
    TCP_CHECK { }
  }
}
`,
    'k.conf',
  );
  assert.deepEqual(w, []);
  assert.deepEqual(
    config.services.map((s) => s.address ?? `fwmark ${s.fwmark}`),
    ['10.0.0.1:80', '10.0.0.10:80', '10.0.0.11:80', '10.0.0.12:80', '10.0.1.8:8080', '10.0.1.9:8080', '10.0.1.10:8080', '10.0.1.11:8080', 'fwmark 9'],
  );
  // one probe for the real server, shared by every service of the group (same target and options)
  const h = resolveHealth(config);
  assert.equal(new Set(h.services.slice(0, 4).map((s) => s.realServers[0]!.checkers[0]!.key)).size, 1);
  assert.deepEqual(expandRange('10.0.0.250-10.0.1.1'), ['10.0.0.250', '10.0.0.251', '10.0.0.252', '10.0.0.253', '10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1']);
  assert.deepEqual(expandRange('2001:db8::a-c'), ['2001:db8::a', '2001:db8::b', '2001:db8::c']);
  assert.match(expandRange('10.0.0.0/16') as string, /more than 256/);
});

test('include files (globs, relative to the including file); errors point at the included file', () => {
  mkdirSync(join(tmp, 'conf.d'), { recursive: true });
  writeFileSync(join(tmp, 'conf.d', 'a.conf'), 'virtual_server 10.0.0.1 80 {\n  protocol TCP\n  lvs_method NAT\n  lvs_sched rr\n  real_server 192.168.1.2 80 {\n  }\n}\n');
  writeFileSync(join(tmp, 'conf.d', 'b.conf'), 'virtual_server 10.0.0.2 80 {\n  protocol TCP\n  lvs_method NAT\n  lvs_sched rr\n  real_server 192.168.1.3 80 {\n    weight 99999999999\n  }\n}\n');
  writeFileSync(join(tmp, 'main.conf'), 'global_defs {\n  lvs_flush\n}\ninclude conf.d/a.conf\ninclude conf.d/nothing*.conf\n');
  const r = loadKeepalivedFile(join(tmp, 'main.conf'));
  assert.deepEqual(r.config.services.map((s) => s.address), ['10.0.0.1:80']);
  assert.deepEqual(r.warnings.map(formatWarning), [`(${join(tmp, 'main.conf')}: Line 5) include conf.d/nothing*.conf: no such file`]);
  writeFileSync(join(tmp, 'main2.conf'), 'include conf.d/*.conf\n');
  const w = loadKeepalivedFile(join(tmp, 'main2.conf')).warnings.map(formatWarning);
  assert.deepEqual(w, [`(${join(tmp, 'conf.d', 'b.conf')}: Line 6) weight '99999999999' is invalid (expected 0..2147483647) - ignoring`]);
  // a health error (validated as part of loading) names keepalived's file and line
  writeFileSync(join(tmp, 'conf.d', 'c.conf'), 'virtual_server 10.0.0.3 80 {\n  protocol TCP\n  lvs_method NAT\n  lvs_sched rr\n  real_server 192.168.1.4 0 {\n  }\n  sorry_server 192.168.1.4 80\n}\n');
  writeFileSync(join(tmp, 'main3.conf'), 'include conf.d/c.conf\n');
  assert.throws(
    () => loadKeepalivedFile(join(tmp, 'main3.conf')),
    (e: unknown) => e instanceof ConfigError && e.file === join(tmp, 'conf.d', 'c.conf') && e.line === 7 && /sorry server is also a real server/.test(e.problem),
  );
  writeFileSync(join(tmp, 'loop.conf'), `include ${join(tmp, 'loop.conf')}\n`);
  assert.throws(() => loadKeepalivedFile(join(tmp, 'loop.conf')), /includes itself/);
});

test('telling a keepalived.conf from a YAML config', () => {
  assert.equal(looksLikeKeepalived('! Configuration File for keepalived\n\nglobal_defs {\n}\n'), true);
  assert.equal(looksLikeKeepalived('# comment\nvirtual_server 10.0.0.1 80 {\n'), true);
  assert.equal(looksLikeKeepalived('services:\n  - address: 10.0.0.1:80\n'), false);
  assert.equal(looksLikeKeepalived('{"services": []}'), false);
});

test('a keepalived.conf runs in vsd: its checkers take a stopped server out and put it back', async (ctx) => {
  const cleanup = scoped(ctx);
  const a = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const b = cleanup.add(await new TcpServer().start(), (s) => s.stop());
  const { config } = parseKeepalived(
    `virtual_server 127.0.0.60 80 {
  protocol TCP
  lvs_method NAT
  lvs_sched rr
  delay_loop 0.05
  warmup 0
  real_server 127.0.0.1 ${a.port} {
    weight 2
    TCP_CHECK { connect_timeout 0.5 retry 0 }
  }
  real_server 127.0.0.1 ${b.port} {
    TCP_CHECK { connect_timeout 0.5 retry 0 }
  }
}
`,
    'k.conf',
  );
  const t = cleanup.add(await startVsd(JSON.stringify(config)), (x) => x.stop());
  const A = `127.0.0.1:${a.port}`;
  assert.equal(t.table()[A], 2);
  await a.stop();
  await waitFor(() => !(A in t.table()), 2000, 'A removed');
  assert.ok(t.logged(/Removing service \[127.0.0.1\]:tcp:\d+ from VS \[127.0.0.60\]:tcp:80/));
  await a.start();
  await waitFor(() => t.table()[A] === 2, 2000, 'A back');
});
