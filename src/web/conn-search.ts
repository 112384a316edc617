// Searching the connection table for the dashboard. The table may hold millions of entries, so
// it is scanned in slices with the event loop let through in between, and the scan stops as
// soon as enough matches are found.

import { CONN_F_ONE_PACKET } from '../core/constants.js';
import type { Director } from '../core/director.js';
import type { ConnInfo } from '../core/model.js';
import { procProtoName } from '../metrics/proc-format.js';

export interface ConnSearchResult {
  /** Entries in the table when the search started. */
  total: number;
  /** Entries looked at. */
  scanned: number;
  matches: ConnInfo[];
  /** More entries would match than `limit`. */
  more: boolean;
}

function endpoint(af: number, addr: string, port: number): string {
  return af === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** The text a query is matched against: "tcp 10.0.0.9:40000 10.0.0.1:80 10.0.1.2:8080 established". */
export function connHaystack(c: ConnInfo): string {
  return `${procProtoName(c.protocol)} ${endpoint(c.af, c.caddr, c.cport)} ${endpoint(c.af, c.vaddr, c.vport)} ${endpoint(c.daf, c.daddr, c.dport)} ${c.state}`.toLowerCase();
}

/** Entries whose text holds every word of the query (case-insensitive); all entries for "". */
export async function searchConns(director: Director, query: string, limit: number, sliceEntries = 8192): Promise<ConnSearchResult> {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const c = director.conns;
  const res: ConnSearchResult = { total: c.count, scanned: 0, matches: [], more: false };
  for (let start = 0; start < c.high; start += sliceEntries) {
    if (start > 0) await new Promise((r) => setImmediate(r));
    const end = Math.min(c.high, start + sliceEntries);
    for (let i = start; i < end; i++) {
      if (c.af[i] === 0) continue;
      if (c.flags[i]! & CONN_F_ONE_PACKET && !c.isHashed(i) && c.isDue(i)) continue;
      res.scanned++;
      const info = director.connInfo(i);
      if (words.length) {
        const hay = connHaystack(info);
        if (!words.every((w) => hay.includes(w))) continue;
      }
      if (res.matches.length >= limit) {
        res.more = true;
        return res;
      }
      res.matches.push(info);
    }
  }
  return res;
}
