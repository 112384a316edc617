// GUE (Generic UDP Encapsulation, draft-ietf-intarea-gue) as IPVS uses it: a 4-byte header
// (version 0, control 0, hlen, inner protocol, flags) with the optional private-flags field
// carrying remote checksum offload (start and offset of the inner transport checksum).

import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { onesSum } from './checksum.js';
import { Reason } from './reasons.js';

export const GUE_HLEN = 4;
export const GUE_FLAG_PRIV = 0x0001;
export const GUE_PFLAG_REMCSUM = 0x80000000;
/** Private-flags word + the two 16-bit remote checksum fields. */
export const GUE_REMCSUM_OPTLEN = 8;

/**
 * Writes a GUE header at `off` for inner protocol 4 or 41. With csumStart >= 0 the remote
 * checksum option is added (csumStart relative to the inner packet, csumOffset the field's
 * offset from there, as skb csum_start/csum_offset). Returns the header length.
 */
export function writeGueHeader(out: Uint8Array, off: number, innerProto: number, csumStart: number, csumOffset: number): number {
  const remcsum = csumStart >= 0;
  const optlen = remcsum ? GUE_REMCSUM_OPTLEN : 0;
  out[off] = optlen >> 2; // version 0, control 0, hlen in 32-bit words
  out[off + 1] = innerProto;
  wr16(out, off + 2, remcsum ? GUE_FLAG_PRIV : 0);
  if (remcsum) {
    wr32(out, off + 4, GUE_PFLAG_REMCSUM);
    wr16(out, off + 8, csumStart);
    wr16(out, off + 10, csumStart + csumOffset);
  }
  return GUE_HLEN + optlen;
}

/**
 * Result of parseGue, reused: the inner packet's offset and protocol, and the remote checksum
 * fields (-1 when absent).
 */
export class GueHeader {
  innerOff = 0;
  innerProto = 0;
  remcsumStart = -1;
  remcsumField = -1;
}

/**
 * Parses the GUE header at `off` (UDP payload up to `end`). Version 1 (direct IPv4/IPv6) is
 * accepted; version 0 must be a data message whose only flag is the private one, whose only
 * private flag is remote checksum, and whose options fit hlen.
 */
export function parseGue(buf: Uint8Array, off: number, end: number, out: GueHeader): number {
  if (off + 1 > end) return Reason.Truncated;
  const b0 = buf[off];
  const version = b0 >> 6;
  out.remcsumStart = -1;
  out.remcsumField = -1;
  if (version === 1) {
    // Version 1 is the IP header itself: its first nibble 4 or 6 reads as version bits 01.
    const ipv = b0 >> 4;
    if (ipv !== 4 && ipv !== 6) return Reason.BadTunnel;
    out.innerOff = off;
    out.innerProto = ipv === 4 ? 4 : 41;
    return Reason.Ok;
  }
  if (version !== 0) return Reason.BadTunnel;
  if (off + GUE_HLEN > end) return Reason.Truncated;
  if ((b0 & 0x20) !== 0) return Reason.BadTunnel; // control message, not data
  const hlen = (b0 & 0x1f) << 2;
  const flags = rd16(buf, off + 2);
  if (off + GUE_HLEN + hlen > end) return Reason.Truncated;
  if ((flags & ~GUE_FLAG_PRIV) !== 0) return Reason.BadTunnel;
  if (flags & GUE_FLAG_PRIV) {
    if (hlen < 4) return Reason.BadTunnel;
    const pflags = rd32(buf, off + 4);
    if ((pflags & ~GUE_PFLAG_REMCSUM) >>> 0 !== 0) return Reason.BadTunnel;
    if (pflags & GUE_PFLAG_REMCSUM) {
      if (hlen < GUE_REMCSUM_OPTLEN) return Reason.BadTunnel;
      out.remcsumStart = rd16(buf, off + 8);
      out.remcsumField = rd16(buf, off + 10);
    }
  }
  out.innerOff = off + GUE_HLEN + hlen;
  out.innerProto = buf[off + 1];
  return Reason.Ok;
}

/**
 * Finishes a remote-checksum-offloaded inner packet buf[innerOff, innerEnd): the field at
 * innerOff + field holds the pseudo-header sum; the checksum over [innerOff + start, innerEnd)
 * including it is stored there (as the kernel's remcsum_adjust does).
 */
export function applyGueRemoteChecksum(buf: Uint8Array, innerOff: number, innerEnd: number, start: number, field: number): number {
  if (start < 0 || field < start || innerOff + field + 2 > innerEnd || innerOff + start >= innerEnd) return Reason.BadTunnel;
  const from = innerOff + start;
  wr16(buf, innerOff + field, 0xffff - onesSum(buf, from, innerEnd - from));
  return Reason.Ok;
}
