// UDP header (and SCTP's common header, which starts with the same two ports).

import { rd16 } from './bytes.js';
import { SCTP_HLEN, UDP_HLEN } from './constants.js';
import type { PacketInfo } from './info.js';
import { Reason } from './reasons.js';

/** Checksum field offsets. */
export const UDP_CHECK = 6;
export const SCTP_CHECK = 8;

/**
 * Parses the UDP header at info.l4off (no-op when l4off < 0). Strict: 8 <= length <= IP
 * payload (checked only for unfragmented datagrams; a first fragment carries the whole
 * datagram's length). Quoted: whatever is present.
 */
export function parseUdp(buf: Uint8Array, info: PacketInfo, quoted = false): number {
  const l4 = info.l4off;
  if (l4 < 0) return Reason.Ok;
  const avail = info.ipEnd - l4;
  if (quoted) {
    if (avail < 4) {
      info.l4off = -1;
      return Reason.Ok;
    }
    info.sport = rd16(buf, l4);
    info.dport = rd16(buf, l4 + 2);
    if (avail >= 6) info.udpLength = rd16(buf, l4 + 4);
    return Reason.Ok;
  }
  if (avail < UDP_HLEN) return Reason.Truncated;
  const ulen = rd16(buf, l4 + 4);
  if (!info.moreFragments && info.fragOffset === 0 && (ulen < UDP_HLEN || ulen > avail)) return Reason.BadUdpLength;
  info.l4HeaderLen = UDP_HLEN;
  info.udpLength = ulen;
  info.sport = rd16(buf, l4);
  info.dport = rd16(buf, l4 + 2);
  return Reason.Ok;
}

/** Parses the SCTP common header (ports, 12 bytes) at info.l4off. */
export function parseSctp(buf: Uint8Array, info: PacketInfo, quoted = false): number {
  const l4 = info.l4off;
  if (l4 < 0) return Reason.Ok;
  const avail = info.ipEnd - l4;
  if (avail < (quoted ? 4 : SCTP_HLEN)) {
    if (!quoted) return Reason.Truncated;
    info.l4off = -1;
    return Reason.Ok;
  }
  if (!quoted) info.l4HeaderLen = SCTP_HLEN;
  info.sport = rd16(buf, l4);
  info.dport = rd16(buf, l4 + 2);
  return Reason.Ok;
}
