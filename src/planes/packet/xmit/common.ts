// What every transmitter does before its own rewrite (spec §6, ip_vs_xmit.c's route step):
// decrement the TTL / hop limit (the sender gets time exceeded at 1), then check the packet
// against the MTU toward the next hop (DF IPv4 and all IPv6: frag-needed / packet-too-big; an
// ICMP error being relayed and GSO frames are exempt), and finally set the link-layer header
// for the next hop. IPv4 packets without DF that do not fit are fragmented here, as the
// kernel's output path would.

import {
  copyBytes,
  decrementHopLimit6,
  decrementTtl4,
  IP_DF,
  IP_MF,
  type PacketInfo,
  Reason,
  rd16,
  setIpv4HeaderChecksum,
  wr16,
} from '../../../codec/index.js';

/** A packet that does not fit: the sender must be told (frag-needed / packet-too-big). */
export const TOO_BIG = -1000;
/** An IPv4 packet without DF that does not fit: fragment it (fragment4). */
export const NEEDS_FRAGMENTS = -1001;

/** Minimum IPv6 MTU (RFC 8200) and IPv4's minimum. */
export const IPV6_MIN_MTU = 1280;
export const IPV4_MIN_MTU = 68;

/** TTL / hop limit decrement: Reason.Ok or Reason.TtlExceeded (packet untouched). */
export function decrementTtl(buf: Uint8Array, info: PacketInfo): number {
  const r = info.ipVersion === 4 ? decrementTtl4(buf, info) : decrementHopLimit6(buf, info);
  return r < 0 ? r : Reason.Ok;
}

/**
 * ensure_mtu_is_adequate: Ok, TOO_BIG (send frag-needed/packet-too-big with `mtu`), or
 * NEEDS_FRAGMENTS (IPv4 without DF). `relayedIcmp`: an ICMP error being relayed is never refused.
 */
export function checkMtu(info: PacketInfo, mtu: number, relayedIcmp: boolean): number {
  const len = info.ipEnd - info.l3off;
  if (len <= mtu) return Reason.Ok;
  if (info.ipVersion === 6) return relayedIcmp ? Reason.Ok : TOO_BIG;
  if (info.dontFragment) return relayedIcmp ? NEEDS_FRAGMENTS : TOO_BIG;
  return NEEDS_FRAGMENTS;
}

/** Writes destination and source MAC at the frame start (the next hop's and ours). */
export function setMacs(buf: Uint8Array, l2off: number, dstMacs: Uint8Array, dstOff: number, srcMac: Uint8Array): void {
  copyBytes(buf, l2off, dstMacs, dstOff, 6);
  copyBytes(buf, l2off + 6, srcMac, 0, 6);
}

/**
 * Splits the IPv4 packet buf[l3off, ipEnd) into fragments of at most `mtu` bytes, each written
 * as a whole Ethernet frame (the header copied from `ethHeader` bytes at the packet's frame
 * start) through `emit(frame, off, len)` from `scratch`. Returns the fragment count or a Reason.
 * Options are copied into every fragment (a simplification of ip_options_fragment; tsvs never
 * sees packets with options that must not be copied, and the kernel drops most of them anyway).
 */
export function fragment4(
  buf: Uint8Array,
  l2off: number,
  info: PacketInfo,
  mtu: number,
  scratch: Uint8Array,
  emit: (frame: Uint8Array, off: number, len: number) => void,
): number {
  const l3 = info.l3off;
  const hl = info.ipHeaderLen;
  const eth = l3 - l2off;
  const payload = info.ipEnd - l3 - hl;
  const chunk = (mtu - hl) & ~7;
  if (chunk < 8) return Reason.NoRoom;
  const baseField = rd16(buf, l3 + 6);
  const baseOffset = (baseField & 0x1fff) << 3;
  const lastMf = baseField & IP_MF;
  let n = 0;
  for (let done = 0; done < payload; done += chunk) {
    const size = Math.min(chunk, payload - done);
    const total = eth + hl + size;
    if (total > scratch.length) return Reason.NoRoom;
    copyBytes(scratch, 0, buf, l2off, eth + hl);
    copyBytes(scratch, eth + hl, buf, l3 + hl + done, size);
    const more = done + size < payload ? IP_MF : lastMf;
    wr16(scratch, eth + 2, hl + size);
    wr16(scratch, eth + 6, (baseField & IP_DF) | more | (((baseOffset + done) >> 3) & 0x1fff));
    setIpv4HeaderChecksum(scratch, eth);
    emit(scratch, 0, total);
    n++;
  }
  return n;
}
