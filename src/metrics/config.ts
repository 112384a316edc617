// The config sections of the observability parts (top-level `metrics` and `procDir`):
//
//   metrics:                       # present = Prometheus endpoint on (opt-in)
//     listen: 127.0.0.1:9501       # loopback by default
//     path: /metrics
//     backendLabels: [local_address, local_port, remote_address, remote_port, proto, local_mark]
//     token: …  | tokenFile: …     # optional bearer token for scrapes
//     defaultMetrics: true         # Node's process_* and nodejs_* metrics
//     enabled: true
//   procDir: /run/tsvs/proc        # /proc-format files under <procDir>/net/
//
// Checked by the extensions' checkConfig, errors point at the file and line.

import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { type Config, configErrorAt, parseHostPort } from '../control/config.js';
import { type BackendLabel, parseBackendLabels } from './labels.js';

export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9501';

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: 'expected "address:port" (IPv6 as "[address]:port")' });

const metricsSchema = z
  .object({
    enabled: z.boolean().default(true),
    listen: hostPort.default(DEFAULT_METRICS_LISTEN),
    path: z.string().regex(/^\/[^\s?#]*$/, 'a path starting with /').default('/metrics'),
    backendLabels: z.array(z.string()).optional(),
    token: z.string().min(16).optional(),
    tokenFile: z.string().min(1).optional(),
    defaultMetrics: z.boolean().default(true),
  })
  .strict();

export interface MetricsSettings {
  host: string;
  port: number;
  path: string;
  backendLabels?: BackendLabel[];
  token?: string;
  tokenFile?: string;
  defaultMetrics: boolean;
}

/** The metrics section as settings; null when absent or disabled. Throws ConfigError. */
export function metricsSettings(cfg: Config): MetricsSettings | null {
  const raw = cfg.metrics;
  if (raw === undefined || raw === null || raw === false) return null;
  const r = metricsSchema.safeParse(raw === true ? {} : raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw configErrorAt(cfg, ['metrics', ...(issue.path as (string | number)[])], issue.message);
  }
  const m = r.data;
  if (!m.enabled) return null;
  let labels: BackendLabel[] | undefined;
  if (m.backendLabels) {
    try {
      labels = parseBackendLabels(m.backendLabels);
    } catch (e) {
      throw configErrorAt(cfg, ['metrics', 'backendLabels'], (e as Error).message);
    }
  }
  if (m.token && m.tokenFile) throw configErrorAt(cfg, ['metrics', 'tokenFile'], 'give token or tokenFile, not both');
  const hp = parseHostPort(m.listen)!;
  return {
    host: hp.addr.toString(),
    port: hp.port,
    path: m.path,
    ...(labels ? { backendLabels: labels } : {}),
    ...(m.token ? { token: m.token } : {}),
    ...(m.tokenFile ? { tokenFile: m.tokenFile } : {}),
    defaultMetrics: m.defaultMetrics,
  };
}

/** procDir as a directory; undefined when absent. Throws ConfigError. */
export function procDirSetting(cfg: Config): string | undefined {
  const d = cfg.procDir;
  if (d === undefined) return undefined;
  if (!d || !isAbsolute(d)) throw configErrorAt(cfg, ['procDir'], 'expected an absolute directory path');
  if (d === '/proc' || d.startsWith('/proc/')) throw configErrorAt(cfg, ['procDir'], 'not under /proc: that is the kernel’s');
  return d;
}
