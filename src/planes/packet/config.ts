// The `packet:` section of vsd's config: which interfaces the packet plane attaches to and how
// it runs. Validated here (the daemon's schema leaves the section to this plane), with errors
// that name the file and line (configErrorAt).
//
//   packet:
//     interfaces: [eth0, eth1]    # required (or vsd --packet eth0,eth1)
//     mode: single                # single (one thread, the default) | threads (workers + fanout)
//     threads: 2                  # workers in threads mode (default: the CPU count)
//     answerArp: true             # answer ARP/ND for VIPs the host has not configured
//     guard: true                 # install the nftables guard (inet tsvs)
//     routeRefreshMs: 2000        # re-read routes, addresses and neighbours this often
//     rxBlockTimeoutMs: 1         # receive ring block timeout (latency at low rates)
//     fwmarks:                    # what the kernel's firewall marks, for fwmark services
//       1: ["tcp 198.18.0.100:80", "tcp 198.18.0.100:443", "udp [2001:2::100]:5000-5010"]
//     virtualPaths:               # health checks via: virtual (DR, TUN); false: off
//       v4: 198.18.255.0/24       # probe sources, one per (service, real server)
//       v6: 2001:2:0:ffff::/64
//       table: 7470               # ip rule from <sources> iif lo lookup <table> pref <priority>
//       priority: 7470
//       device: tsvsvp            # the veth pair tsvsvp0 (kernel side) / tsvsvp1 (the plane's)

import { z } from 'zod';
import { type Config, configErrorAt } from '../../control/config.js';
import { IpAddr } from '../../core/addr.js';
import type { MarkRule } from './served.js';
import { parseCidr, VIRTUAL_PATHS_DEFAULTS, type VirtualPathsConfig } from './virtual-paths.js';

export interface PacketConfig {
  interfaces: string[];
  mode: 'single' | 'threads';
  threads?: number;
  answerArp: boolean;
  guard: boolean;
  routeRefreshMs: number;
  rxBlockTimeoutMs: number;
  fwmarks: MarkRule[];
  /** Health checks via: virtual (virtual-paths.ts); false when turned off. */
  virtualPaths: VirtualPathsConfig | false;
}

const ifname = z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'an interface name (1 to 15 characters)');

const schema = z
  .object({
    interfaces: z.array(ifname).min(1).optional(),
    mode: z.enum(['single', 'threads']).default('single'),
    threads: z.number().int().min(1).max(64).optional(),
    answerArp: z.boolean().default(true),
    guard: z.boolean().default(true),
    routeRefreshMs: z.number().int().min(100).max(600_000).default(2000),
    rxBlockTimeoutMs: z.number().int().min(1).max(100).default(1),
    fwmarks: z.record(z.string().regex(/^\d+$/, 'a firewall mark (a number)'), z.array(z.string())).default({}),
    virtualPaths: z.union([z.boolean(), z.record(z.string(), z.unknown())]).default(true),
  })
  .strict();

const vpathSchema = z
  .object({
    v4: z.union([z.string(), z.literal(false)]).optional(),
    v6: z.union([z.string(), z.literal(false)]).optional(),
    table: z
      .number()
      .int()
      .min(1)
      .max(0xfffffffe)
      .refine((t) => t < 253 || t > 255, 'not a table of the kernel (253 default, 254 main, 255 local)')
      .optional(),
    priority: z.number().int().min(1).max(32765).optional(),
    device: z.string().regex(/^[A-Za-z0-9_.-]{1,14}$/, 'an interface name of 1 to 14 characters (0 and 1 are appended)').optional(),
  })
  .strict();

const PROTOS: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/** "tcp 198.18.0.100:80", "udp [2001:2::1]:53-54", "tcp 198.18.0.100" (every port) → a rule; a string on error. */
export function parseMarkRule(mark: number, text: string): MarkRule | string {
  const m = /^(tcp|udp|sctp)\s+(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))(?::(\d{1,5})(?:-(\d{1,5}))?)?$/.exec(text.trim());
  if (!m) return 'expected "PROTO ADDRESS[:PORT[-PORT]]" (IPv6 in brackets), e.g. "tcp 198.18.0.100:80"';
  const addr = IpAddr.tryParse(m[2] ?? m[3] ?? '');
  if (!addr) return `invalid address ${m[2] ?? m[3]}`;
  const lo = m[4] === undefined ? 0 : Number(m[4]);
  const hi = m[5] === undefined ? (m[4] === undefined ? 65535 : lo) : Number(m[5]);
  if (lo > 65535 || hi > 65535 || hi < lo) return 'invalid port range';
  return { mark, family: addr.family, protocol: PROTOS[m[1]!]!, words: [addr.w0 >>> 0, addr.w1 >>> 0, addr.w2 >>> 0, addr.w3 >>> 0], portLo: lo, portHi: hi };
}

/**
 * The packet section of a loaded config, validated; undefined when there is none. `cliInterfaces`
 * (vsd --packet) replace the configured interfaces. Throws ConfigError.
 */
export function packetConfig(cfg: Config | undefined, cliInterfaces?: string[]): PacketConfig | undefined {
  const raw = cfg?.packet;
  if (raw === undefined && !cliInterfaces) return undefined;
  const r = schema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (!cfg) throw new Error(`packet: ${issue.message}`);
    throw configErrorAt(cfg, ['packet', ...(issue.path as (string | number)[])], issue.message);
  }
  const v = r.data;
  const interfaces = cliInterfaces ?? v.interfaces;
  if (!interfaces || interfaces.length === 0) {
    const msg = 'the packet plane needs interfaces (packet.interfaces, or vsd --packet IFACE[,IFACE])';
    if (!cfg) throw new Error(msg);
    throw configErrorAt(cfg, ['packet', 'interfaces'], msg);
  }
  const fwmarks: MarkRule[] = [];
  for (const [k, list] of Object.entries(v.fwmarks)) {
    const mark = Number(k);
    if (mark < 1 || mark > 0xffffffff) throw configErrorAt(cfg!, ['packet', 'fwmarks', k], 'a firewall mark is 1..4294967295');
    list.forEach((text, i) => {
      const rule = parseMarkRule(mark, text);
      if (typeof rule === 'string') throw configErrorAt(cfg!, ['packet', 'fwmarks', k, i], rule);
      fwmarks.push(rule);
    });
  }
  let virtualPaths: VirtualPathsConfig | false = false;
  if (v.virtualPaths !== false) {
    const r = vpathSchema.safeParse(v.virtualPaths === true ? {} : v.virtualPaths);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      if (!cfg) throw new Error(`packet: virtualPaths: ${issue.message}`);
      throw configErrorAt(cfg, ['packet', 'virtualPaths', ...(issue.path as (string | number)[])], issue.message);
    }
    const o = r.data;
    virtualPaths = {
      ...VIRTUAL_PATHS_DEFAULTS,
      ...o,
      v4: o.v4 === false ? '' : (o.v4 ?? VIRTUAL_PATHS_DEFAULTS.v4),
      v6: o.v6 === false ? '' : (o.v6 ?? VIRTUAL_PATHS_DEFAULTS.v6),
    };
    for (const fam of [4, 6] as const) {
      const text = virtualPaths[`v${fam}`];
      if (!text) continue;
      try {
        parseCidr(text, fam);
      } catch (e) {
        if (!cfg) throw new Error(`packet: virtualPaths.v${fam}: ${(e as Error).message}`);
        throw configErrorAt(cfg, ['packet', 'virtualPaths', `v${fam}`], (e as Error).message);
      }
    }
  }
  return {
    interfaces: [...new Set(interfaces)],
    mode: v.mode,
    ...(v.threads !== undefined ? { threads: v.threads } : {}),
    answerArp: v.answerArp,
    guard: v.guard,
    routeRefreshMs: v.routeRefreshMs,
    rxBlockTimeoutMs: v.rxBlockTimeoutMs,
    fwmarks,
    virtualPaths,
  };
}
