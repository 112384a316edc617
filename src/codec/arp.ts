// ARP for Ethernet/IPv4 (RFC 826): parse requests and replies, build replies (answering for
// VIPs and director addresses) and requests (resolving next hops, gratuitous announcements).

import { copyBytes, fillBytes, rd16, rd32, wr16, wr32 } from './bytes.js';
import { ETH_ALEN, ETH_P_ARP, ETH_P_IP } from './constants.js';
import { ethernetHeaderLength, writeEthernet, writeEthernetHeader } from './ethernet.js';
import type { PacketInfo } from './info.js';
import { Reason } from './reasons.js';

export const ARP_LEN = 28;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;
/** Offsets inside the ARP payload. */
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;

const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** Parses the ARP payload at info.l3off (after parseEthernet); sets arpOp and the IPs. */
export function parseArp(buf: Uint8Array, end: number, info: PacketInfo): number {
  const a = info.l3off;
  if (end - a < ARP_LEN) return Reason.Truncated;
  if (rd16(buf, a) !== 1 || rd16(buf, a + 2) !== ETH_P_IP || buf[a + 4] !== ETH_ALEN || buf[a + 5] !== 4) return Reason.BadArp;
  const op = rd16(buf, a + 6);
  if (op !== ARPOP_REQUEST && op !== ARPOP_REPLY) return Reason.BadArp;
  info.arpOp = op;
  info.arpSenderIp = rd32(buf, a + ARP_SPA);
  info.arpTargetIp = rd32(buf, a + ARP_TPA);
  return Reason.Ok;
}

function writeArp(
  out: Uint8Array,
  a: number,
  op: number,
  sha: Uint8Array,
  shaOff: number,
  spa: number,
  tha: Uint8Array | null,
  thaOff: number,
  tpa: number,
): void {
  wr16(out, a, 1);
  wr16(out, a + 2, ETH_P_IP);
  out[a + 4] = ETH_ALEN;
  out[a + 5] = 4;
  wr16(out, a + 6, op);
  copyBytes(out, a + ARP_SHA, sha, shaOff, ETH_ALEN);
  wr32(out, a + ARP_SPA, spa);
  if (tha) copyBytes(out, a + ARP_THA, tha, thaOff, ETH_ALEN);
  else fillBytes(out, a + ARP_THA, ETH_ALEN, 0);
  wr32(out, a + ARP_TPA, tpa);
}

/**
 * Builds a broadcast who-has request for targetIp; targetIp === srcIp makes a gratuitous ARP.
 * Returns the frame length (42, unpadded) or NoRoom.
 */
export function buildArpRequest(
  out: Uint8Array,
  off: number,
  outEnd: number,
  srcMac: Uint8Array,
  srcIp: number,
  targetIp: number,
  vlanTci = -1,
): number {
  const h = writeEthernet(out, off, outEnd, BROADCAST_MAC, srcMac, ETH_P_ARP, vlanTci);
  if (h < 0 || off + h + ARP_LEN > outEnd) return Reason.NoRoom;
  writeArp(out, off + h, ARPOP_REQUEST, srcMac, 0, srcIp, null, 0, targetIp);
  return h + ARP_LEN;
}

/** Builds a unicast is-at reply: srcIp is at srcMac, sent to dstMac/dstIp. */
export function buildArpReply(
  out: Uint8Array,
  off: number,
  outEnd: number,
  srcMac: Uint8Array,
  srcIp: number,
  dstMac: Uint8Array,
  dstIp: number,
  vlanTci = -1,
): number {
  const h = writeEthernet(out, off, outEnd, dstMac, srcMac, ETH_P_ARP, vlanTci);
  if (h < 0 || off + h + ARP_LEN > outEnd) return Reason.NoRoom;
  writeArp(out, off + h, ARPOP_REPLY, srcMac, 0, srcIp, dstMac, 0, dstIp);
  return h + ARP_LEN;
}

/**
 * Answers a parsed request (the caller decided it owns info.arpTargetIp): reply from myMac to
 * the requester, on the same VLAN. Reads everything from the request; returns the length.
 */
export function buildArpReplyTo(
  out: Uint8Array,
  off: number,
  outEnd: number,
  req: Uint8Array,
  info: PacketInfo,
  myMac: Uint8Array,
): number {
  if (info.arpOp !== ARPOP_REQUEST) return Reason.BadArp;
  const a = info.l3off;
  if (off < 0 || off + ethernetHeaderLength(info.vlanTci) + ARP_LEN > outEnd) return Reason.NoRoom;
  const h = writeEthernetHeader(out, off, req, a + ARP_SHA, myMac, 0, ETH_P_ARP, info.vlanTci);
  writeArp(out, off + h, ARPOP_REPLY, myMac, 0, info.arpTargetIp, req, a + ARP_SHA, info.arpSenderIp);
  return h + ARP_LEN;
}
