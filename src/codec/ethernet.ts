// Ethernet II with at most one 802.1Q tag. MAC addresses are passed as Uint8Arrays whose first
// six bytes are the address (the caller keeps them; nothing is allocated per frame).

import { copyBytes, rd16, wr16 } from './bytes.js';
import { ETH_ALEN, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, VLAN_HLEN } from './constants.js';
import type { PacketInfo } from './info.js';
import { Reason } from './reasons.js';

/** Parses the Ethernet header at `off`; sets l2off, vlanTci, etherType and l3off. */
export function parseEthernet(buf: Uint8Array, off: number, end: number, info: PacketInfo): number {
  if (end - off < ETH_HLEN) return Reason.Truncated;
  let type = rd16(buf, off + 12);
  let l3 = off + ETH_HLEN;
  info.l2off = off;
  info.vlanTci = -1;
  if (type === ETH_P_8021Q) {
    if (end - off < ETH_HLEN + VLAN_HLEN) return Reason.Truncated;
    info.vlanTci = rd16(buf, off + 14);
    type = rd16(buf, off + 16);
    l3 += VLAN_HLEN;
    if (type === ETH_P_8021Q || type === ETH_P_8021AD) return Reason.StackedVlan;
  } else if (type === ETH_P_8021AD) {
    return Reason.StackedVlan;
  }
  info.etherType = type;
  info.l3off = l3;
  return Reason.Ok;
}

/** Header length for a frame with (vlanTci >= 0) or without a tag. */
export function ethernetHeaderLength(vlanTci: number): number {
  return vlanTci >= 0 ? ETH_HLEN + VLAN_HLEN : ETH_HLEN;
}

/**
 * Writes an Ethernet header at `off` (with an 802.1Q tag when vlanTci >= 0); returns its
 * length, or NoRoom when it does not fit before outEnd.
 */
export function writeEthernet(
  out: Uint8Array,
  off: number,
  outEnd: number,
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  etherType: number,
  vlanTci = -1,
): number {
  const len = ethernetHeaderLength(vlanTci);
  if (off < 0 || off + len > outEnd) return Reason.NoRoom;
  writeEthernetHeader(out, off, dstMac, 0, srcMac, 0, etherType, vlanTci);
  return len;
}

/** Unchecked form with MAC offsets, for copying addresses straight out of another frame. */
export function writeEthernetHeader(
  out: Uint8Array,
  off: number,
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  etherType: number,
  vlanTci: number,
): number {
  copyBytes(out, off, dst, dstOff, ETH_ALEN);
  copyBytes(out, off + 6, src, srcOff, ETH_ALEN);
  if (vlanTci >= 0) {
    wr16(out, off + 12, ETH_P_8021Q);
    wr16(out, off + 14, vlanTci);
    wr16(out, off + 16, etherType);
    return ETH_HLEN + VLAN_HLEN;
  }
  wr16(out, off + 12, etherType);
  return ETH_HLEN;
}

/**
 * Writes an Ethernet header just in front of the IP packet at l3off (headroom left by the
 * caller, e.g. for an encapsulated packet); returns the frame start or NoRoom.
 */
export function prependEthernet(
  buf: Uint8Array,
  l3off: number,
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  etherType: number,
  vlanTci = -1,
): number {
  const start = l3off - ethernetHeaderLength(vlanTci);
  if (start < 0) return Reason.NoRoom;
  writeEthernet(buf, start, l3off, dstMac, srcMac, etherType, vlanTci);
  return start;
}

/** Rewrites both MAC addresses of a frame in place (DR, and NAT/forwarding next hop). */
export function setMacAddresses(buf: Uint8Array, frameOff: number, dstMac: Uint8Array, srcMac: Uint8Array): void {
  copyBytes(buf, frameOff, dstMac, 0, ETH_ALEN);
  copyBytes(buf, frameOff + 6, srcMac, 0, ETH_ALEN);
}

/** Swaps source and destination MAC in place (answering a frame on the link it came from). */
export function swapMacAddresses(buf: Uint8Array, frameOff: number): void {
  for (let i = 0; i < ETH_ALEN; i++) {
    const t = buf[frameOff + i];
    buf[frameOff + i] = buf[frameOff + 6 + i];
    buf[frameOff + 6 + i] = t;
  }
}

/** Group bit of the first octet: multicast or broadcast. */
export function isMulticastMac(buf: Uint8Array, off: number): boolean {
  return (buf[off] & 1) === 1;
}

export function isBroadcastMac(buf: Uint8Array, off: number): boolean {
  return (buf[off] & buf[off + 1] & buf[off + 2] & buf[off + 3] & buf[off + 4] & buf[off + 5]) === 0xff;
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with '-') into 6 bytes; null when malformed. Control path only. */
export function parseMac(text: string): Uint8Array | null {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (!m) return null;
  const out = new Uint8Array(ETH_ALEN);
  for (let i = 0; i < ETH_ALEN; i++) out[i] = Number.parseInt(m[i + 1]!, 16);
  return out;
}

export function formatMac(buf: Uint8Array, off = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < ETH_ALEN; i++) parts.push(buf[off + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}
