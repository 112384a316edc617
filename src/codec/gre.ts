// GRE (RFC 2784/2890) as IPVS sends it: version 0, protocol 0x0800/0x86dd, checksum present
// or not (4 or 8 bytes), no key, no sequence. The parser also skips key and sequence.

import { rd16, wr16 } from './bytes.js';
import { checksumValid } from './checksum.js';
import { Reason } from './reasons.js';

export const GRE_CSUM = 0x8000;
export const GRE_ROUTING = 0x4000;
export const GRE_KEY = 0x2000;
export const GRE_SEQ = 0x1000;
export const GRE_VERSION = 0x0007;

/** Writes the GRE header (checksum field zero for now); returns its length, 4 or 8. */
export function writeGreHeader(out: Uint8Array, off: number, protocol: number, withChecksum: boolean): number {
  wr16(out, off, withChecksum ? GRE_CSUM : 0);
  wr16(out, off + 2, protocol);
  if (!withChecksum) return 4;
  wr16(out, off + 4, 0);
  wr16(out, off + 6, 0);
  return 8;
}

/**
 * Parses the GRE header at `off` of a packet ending at `end`; returns the header length or a
 * negative Reason. Routing and non-zero versions are refused, as the kernel's
 * gre_parse_header does. With verify, a present checksum must be good.
 */
export function parseGre(buf: Uint8Array, off: number, end: number, verify: boolean): number {
  if (off + 4 > end) return Reason.Truncated;
  const flags = rd16(buf, off);
  if ((flags & (GRE_ROUTING | GRE_VERSION)) !== 0) return Reason.BadTunnel;
  const hlen = 4 + (flags & GRE_CSUM ? 4 : 0) + (flags & GRE_KEY ? 4 : 0) + (flags & GRE_SEQ ? 4 : 0);
  if (off + hlen > end) return Reason.Truncated;
  if (verify && flags & GRE_CSUM && !checksumValid(buf, off, end - off)) return Reason.BadChecksum;
  return hlen;
}

/** The protocol field of the GRE header at `off`. */
export function greProtocol(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 2);
}
