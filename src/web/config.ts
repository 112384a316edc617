// The dashboard's config section (top-level `web`):
//
//   web:                        # present = dashboard on (opt-in)
//     listen: 127.0.0.1:9502    # loopback by default
//     token: …  | tokenFile: …  # else one is generated into <runtime dir>/web-token
//     enabled: true
//
// On loopback the page and its read-only data are open (like /proc/net/ip_vs); changes always
// need the token. Bound elsewhere, everything but the static assets needs the token.

import { z } from 'zod';
import { type Config, configErrorAt, parseHostPort } from '../control/config.js';

export const DEFAULT_WEB_LISTEN = '127.0.0.1:9502';

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: 'expected "address:port" (IPv6 as "[address]:port")' });

const webSchema = z
  .object({
    enabled: z.boolean().default(true),
    listen: hostPort.default(DEFAULT_WEB_LISTEN),
    token: z.string().min(16).optional(),
    tokenFile: z.string().min(1).optional(),
  })
  .strict();

export interface WebSettings {
  host: string;
  port: number;
  token?: string;
  tokenFile?: string;
}

/** The web section as settings; null when absent or disabled. Throws ConfigError. */
export function webSettings(cfg: Config): WebSettings | null {
  const raw = cfg.web;
  if (raw === undefined || raw === null || raw === false) return null;
  const r = webSchema.safeParse(raw === true ? {} : raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw configErrorAt(cfg, ['web', ...(issue.path as (string | number)[])], issue.message);
  }
  const w = r.data;
  if (!w.enabled) return null;
  if (w.token && w.tokenFile) throw configErrorAt(cfg, ['web', 'tokenFile'], 'give token or tokenFile, not both');
  const hp = parseHostPort(w.listen)!;
  return { host: hp.addr.toString(), port: hp.port, ...(w.token ? { token: w.token } : {}), ...(w.tokenFile ? { tokenFile: w.tokenFile } : {}) };
}
