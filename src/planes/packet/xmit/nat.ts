// The masquerading transmitter (spec §6.1): the client's packet gets the real server's address
// and port as destination (ip_vs_nat_xmit), the real server's reply gets the virtual address and
// port as source (the OUT hook's SNAT), both with incremental checksum updates in place. The
// common steps (TTL, MTU, next hop) are the engine's; this is the rewrite.

import { type AddrWords, natRewriteDest, natRewriteSource, type PacketInfo, Reason, recomputeL4Checksum } from '../../../codec/index.js';

/**
 * DNAT toward the real server. `partial`: the frame came with a partial checksum (a local
 * peer's offload); the rewrite folds the address change into it and the full checksum is then
 * computed, since the frame leaves without offload metadata.
 */
export function natToRealServer(buf: Uint8Array, info: PacketInfo, daddr: AddrWords, dport: number, partial: boolean): number {
  const r = natRewriteDest(buf, info, daddr, dport, partial);
  if (r < 0 || !partial) return r;
  return info.isFragment ? Reason.Ok : recomputeL4Checksum(buf, info);
}

/** SNAT of a real server's reply: source becomes the virtual address and port. */
export function natToClient(buf: Uint8Array, info: PacketInfo, vaddr: AddrWords, vport: number, partial: boolean): number {
  const r = natRewriteSource(buf, info, vaddr, vport, partial);
  if (r < 0 || !partial) return r;
  return info.isFragment ? Reason.Ok : recomputeL4Checksum(buf, info);
}
