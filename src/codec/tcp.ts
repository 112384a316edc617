// TCP header fields the director needs: ports, flags (state machine), sequence numbers
// (sync, app helpers), data offset.

import { rd16, rd32 } from './bytes.js';
import { TCP_HLEN } from './constants.js';
import type { PacketInfo } from './info.js';
import { Reason } from './reasons.js';

/** Checksum field offset inside the TCP header. */
export const TCP_CHECK = 16;

/**
 * Parses the TCP header at info.l4off (no-op when l4off < 0). Strict: the full header and its
 * options must lie inside the packet. Quoted (first 8 bytes in an ICMP error): whatever is
 * present; l4off becomes -1 when not even the ports are.
 */
export function parseTcp(buf: Uint8Array, info: PacketInfo, quoted = false): number {
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
    if (avail >= 8) info.tcpSeq = rd32(buf, l4 + 4);
    if (avail >= 14) info.tcpFlags = buf[l4 + 13];
    return Reason.Ok;
  }
  if (avail < TCP_HLEN) return Reason.Truncated;
  const hl = (buf[l4 + 12] >> 4) << 2;
  if (hl < TCP_HLEN || hl > avail) return Reason.BadTcpHeader;
  info.l4HeaderLen = hl;
  info.sport = rd16(buf, l4);
  info.dport = rd16(buf, l4 + 2);
  info.tcpSeq = rd32(buf, l4 + 4);
  info.tcpAck = rd32(buf, l4 + 8);
  info.tcpFlags = buf[l4 + 13];
  return Reason.Ok;
}
