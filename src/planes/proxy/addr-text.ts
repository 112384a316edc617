// Address text <-> the core's four 32-bit words, on the per-connection path of the JS relays
// (Node hands socket addresses as text). IPv4 is parsed by hand (no split, no allocation);
// IPv6 goes through IpAddr.

import { IpAddr, v4ToString } from '../../core/addr.js';
import type { Flow } from '../../core/flow.js';

/** Dotted quad to a number; -1 when the text is not one. */
export function parseV4Fast(t: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return (n * 256 + part) >>> 0;
}

/**
 * Fill the flow's source from a socket's remote address text and port. IPv4-mapped IPv6
 * text (::ffff:a.b.c.d) is taken as IPv4 when the flow family is 4. False if unparsable.
 */
export function setFlowSourceText(flow: Flow, family: 4 | 6, text: string, port: number): boolean {
  flow.sport = port;
  if (family === 4) {
    const t = text.startsWith('::ffff:') ? text.slice(7) : text;
    const v = parseV4Fast(t);
    if (v < 0) return false;
    flow.s0 = v;
    flow.s1 = 0;
    flow.s2 = 0;
    flow.s3 = 0;
    return true;
  }
  const a = IpAddr.tryParse(text);
  if (a?.family !== 6) return false;
  flow.s0 = a.w0;
  flow.s1 = a.w1;
  flow.s2 = a.w2;
  flow.s3 = a.w3;
  return true;
}

/** Text of an address given as words (what Node's socket calls take). */
export function wordsToText(family: number, w0: number, w1: number, w2: number, w3: number): string {
  return family === 6 ? new IpAddr(6, w0, w1, w2, w3).toString() : v4ToString(w0);
}
