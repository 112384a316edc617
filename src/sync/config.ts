// The `sync` section of vsd's config: which connection-sync daemons vsd starts itself, with
// the options of `ipvsadm --start-daemon` (see docs/sync.md):
//
//   sync:
//     master:                  # and/or backup: (at most one of each)
//       interface: eth0        # --mcast-interface (required)
//       syncid: 10             # --syncid, 0..255 (default 0: a backup then accepts any id)
//       maxlen: 1472           # --sync-maxlen (default from the MTU)
//       group: 224.0.0.81      # --mcast-group (IPv4 or IPv6 multicast)
//       port: 8848             # --mcast-port
//       ttl: 1                 # --mcast-ttl
//
// The tunables (sync_version, sync_threshold, sync_refresh_period, sync_ports, …) live in the
// `sysctl` section like every other one. Errors point at the file and line.

import { z } from 'zod';
import { IpAddr } from '../core/addr.js';
import { type Config, configErrorAt } from '../control/config.js';
import type { DaemonSpec } from '../control/ipvs-api.js';

const multicast = z.string().refine(
  (s) => {
    const a = IpAddr.tryParse(s);
    return a !== null && (a.family === 4 ? a.w0 >>> 28 === 0xe : a.w0 >>> 24 === 0xff);
  },
  { message: 'expected an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address' },
);

const daemonSchema = z
  .object({
    interface: z.string().min(1).max(15),
    syncid: z.number().int().min(0).max(255).default(0),
    maxlen: z.number().int().min(1).max(65507).optional(),
    group: multicast.optional(),
    port: z.number().int().min(1).max(65535).optional(),
    ttl: z.number().int().min(1).max(255).optional(),
  })
  .strict();

const syncSchema = z.object({ master: daemonSchema.optional(), backup: daemonSchema.optional() }).strict();

export interface SyncSettings {
  master?: DaemonSpec;
  backup?: DaemonSpec;
}

/** The sync section as daemon specs (empty when absent). Throws ConfigError. */
export function syncSettings(cfg: Config): SyncSettings {
  const raw = cfg.sync;
  if (raw === undefined || raw === null) return {};
  const r = syncSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw configErrorAt(cfg, ['sync', ...(issue.path as (string | number)[])], issue.message);
  }
  const out: SyncSettings = {};
  for (const state of ['master', 'backup'] as const) {
    const d = r.data[state];
    if (!d) continue;
    out[state] = {
      state,
      mcastIfn: d.interface,
      syncid: d.syncid,
      ...(d.maxlen !== undefined ? { syncMaxlen: d.maxlen } : {}),
      ...(d.group !== undefined ? { mcastGroup: d.group } : {}),
      ...(d.port !== undefined ? { mcastPort: d.port } : {}),
      ...(d.ttl !== undefined ? { mcastTtl: d.ttl } : {}),
    };
  }
  return out;
}
