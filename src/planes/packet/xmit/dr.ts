// The direct-routing transmitter (spec §6.2): the IP packet is not changed (beyond the TTL the
// common step decremented); the frame goes to the real server's MAC on the shared link (the
// engine writes the next hop's MAC), and the real server, which owns the VIP on a non-ARPing
// interface, answers the client directly.

import { type PacketInfo, Reason, recomputeL4Checksum } from '../../../codec/index.js';

/** Prepares the packet for the real server: only a partial checksum must be completed (no offload on the way out). */
export function directRoute(buf: Uint8Array, info: PacketInfo, partial: boolean): number {
  if (partial && !info.isFragment) return recomputeL4Checksum(buf, info);
  return Reason.Ok;
}
