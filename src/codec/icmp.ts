// ICMP and ICMPv6 headers: type/code, echo identifiers, the MTU of frag-needed/packet-too-big,
// which types are errors (and so carry a quoted packet), and answering an echo in place.

import { rd16, rd32, wr16 } from './bytes.js';
import { csumReplace16 } from './checksum.js';
import {
  DEFAULT_TTL,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_FRAG_NEEDED,
  ICMP_HLEN,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PKT_TOOBIG,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
} from './constants.js';
import { swapMacAddresses } from './ethernet.js';
import type { PacketInfo } from './info.js';
import { isLimitedBroadcast4, isMulticast4, setTtl4 } from './ipv4.js';
import { Reason } from './reasons.js';

/** Offset of the quoted packet (or echo data) after the ICMP header. */
export const ICMP_QUOTE_OFFSET = ICMP_HLEN;
export const ICMP_CHECK = 2;

/**
 * Parses the ICMP (IPv4) or ICMPv6 (IPv6) header at info.l4off. Strict: the 8-byte header
 * must be present. Quoted: whatever is present.
 */
export function parseIcmp(buf: Uint8Array, info: PacketInfo, quoted = false): number {
  const l4 = info.l4off;
  if (l4 < 0) return Reason.Ok;
  const avail = info.ipEnd - l4;
  if (avail < ICMP_HLEN) {
    if (!quoted) return Reason.Truncated;
    if (avail >= 2) {
      info.icmpType = buf[l4];
      info.icmpCode = buf[l4 + 1];
    } else {
      info.l4off = -1;
    }
    return Reason.Ok;
  }
  const type = buf[l4];
  const code = buf[l4 + 1];
  info.icmpType = type;
  info.icmpCode = code;
  if (!quoted) info.l4HeaderLen = ICMP_HLEN;
  if (info.ipVersion === 6) {
    if (type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) {
      info.icmpId = rd16(buf, l4 + 4);
      info.icmpSeq = rd16(buf, l4 + 6);
    } else if (type === ICMPV6_PKT_TOOBIG) {
      info.icmpMtu = rd32(buf, l4 + 4);
    }
  } else if (type === ICMP_ECHO || type === ICMP_ECHOREPLY) {
    info.icmpId = rd16(buf, l4 + 4);
    info.icmpSeq = rd16(buf, l4 + 6);
  } else if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) {
    info.icmpMtu = rd16(buf, l4 + 6);
  }
  return Reason.Ok;
}

/** An ICMPv4 error type (Linux icmp_pointers[].error) or an ICMPv6 error (type < 128). */
export function isIcmpErrorType(ipVersion: number, type: number): boolean {
  if (ipVersion === 6) return type >= 0 && type < 128;
  return (
    type === ICMP_DEST_UNREACH ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAMETERPROB
  );
}

/** The parsed packet is an ICMP/ICMPv6 error message (so it quotes another packet). */
export function isIcmpError(info: PacketInfo): boolean {
  const icmp = info.ipVersion === 6 ? info.protocol === IPPROTO_ICMPV6 : info.protocol === IPPROTO_ICMP;
  return icmp && info.l4off >= 0 && isIcmpErrorType(info.ipVersion, info.icmpType);
}

/**
 * Turns a parsed echo request into the echo reply in place: addresses and MACs swapped, type
 * changed, TTL/hop limit reset to 64, checksums updated incrementally (swapping addresses
 * leaves both the IPv4 header sum and the ICMPv6 pseudo-header sum unchanged). Requests to a
 * multicast or broadcast address return NotUnicast: the reply needs an address of our own.
 */
export function icmpEchoToReply(buf: Uint8Array, info: PacketInfo): number {
  const l4 = info.l4off;
  if (l4 < 0 || info.isFragment) return Reason.Unsupported;
  const v6 = info.ipVersion === 6;
  const request = v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO;
  if (info.protocol !== (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP) || info.icmpType !== request) return Reason.BadIcmp;
  const o = info.l3off;
  if (v6) {
    if (buf[info.daddrOff] === 0xff) return Reason.NotUnicast;
    buf[o + 7] = DEFAULT_TTL;
  } else {
    if (isMulticast4(info.daddr4) || isLimitedBroadcast4(info.daddr4)) return Reason.NotUnicast;
    setTtl4(buf, o, DEFAULT_TTL);
    const s = info.saddr4;
    info.saddr4 = info.daddr4;
    info.daddr4 = s;
  }
  const a = info.saddrOff;
  const b = info.daddrOff;
  const n = v6 ? 16 : 4;
  for (let i = 0; i < n; i++) {
    const t = buf[a + i];
    buf[a + i] = buf[b + i];
    buf[b + i] = t;
  }
  const reply = v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHOREPLY;
  const code = buf[l4 + 1];
  wr16(buf, l4 + ICMP_CHECK, csumReplace16(rd16(buf, l4 + ICMP_CHECK), (request << 8) | code, (reply << 8) | code));
  buf[l4] = reply;
  info.icmpType = reply;
  info.ttl = DEFAULT_TTL;
  if (info.l2off >= 0) swapMacAddresses(buf, info.l2off);
  return Reason.Ok;
}
