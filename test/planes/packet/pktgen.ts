// Frames for packet-plane tests: TCP, UDP, ICMP over IPv4/IPv6 with correct checksums, built
// with the codec's writers; and a small decoder for assertions.

import {
  ETH_P_IP,
  ETH_P_IPV6,
  internetChecksum,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  PacketInfo,
  parseFrame,
  pseudoSum4,
  pseudoSum6,
  verifyL4Checksum,
  verifyIpv4HeaderChecksum,
  writeEthernetHeader,
  writeIpv4Header,
  writeIpv6Header,
} from '../../../src/codec/index.js';
import { IpAddr } from '../../../src/core/addr.js';

export function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((x) => Number.parseInt(x, 16)));
}

export interface PacketSpec {
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  /** TCP flags (default SYN). */
  flags?: number;
  seq?: number;
  ack?: number;
  ttl?: number;
  df?: boolean;
  payload?: Uint8Array;
  /** ICMP: type, code, rest-of-header word, and the quoted bytes as payload. */
  icmpType?: number;
  icmpCode?: number;
  icmpRest?: number;
}

/** Builds the frame; returns a Buffer holding exactly it. */
export function frame(s: PacketSpec): Buffer {
  const src = IpAddr.parse(s.src);
  const dst = IpAddr.parse(s.dst);
  const v6 = src.family === 6;
  const payload = s.payload ?? new Uint8Array(0);
  const proto = s.protocol === 'tcp' ? IPPROTO_TCP : s.protocol === 'udp' ? IPPROTO_UDP : v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  const l4len = (s.protocol === 'tcp' ? 20 : 8) + payload.length;
  const ipHl = v6 ? 40 : 20;
  const buf = Buffer.alloc(14 + ipHl + l4len);
  writeEthernetHeader(buf, 0, mac(s.dstMac), 0, mac(s.srcMac), 0, v6 ? ETH_P_IPV6 : ETH_P_IP, -1);
  const ip = 14;
  if (v6) writeIpv6Header(buf, ip, 0, 0, l4len, proto, s.ttl ?? 64, src, dst);
  else writeIpv4Header(buf, ip, 0, ipHl + l4len, 0x1234, s.df === false ? 0 : 0x4000, s.ttl ?? 64, proto, src.w0 | 0, dst.w0 | 0);
  const l4 = ip + ipHl;
  if (s.protocol === 'tcp') {
    buf.writeUInt16BE(s.sport ?? 40000, l4);
    buf.writeUInt16BE(s.dport ?? 80, l4 + 2);
    buf.writeUInt32BE((s.seq ?? 1000) >>> 0, l4 + 4);
    buf.writeUInt32BE((s.ack ?? 0) >>> 0, l4 + 8);
    buf[l4 + 12] = 5 << 4;
    buf[l4 + 13] = s.flags ?? 0x02;
    buf.writeUInt16BE(65535, l4 + 14);
    buf.set(payload, l4 + 20);
  } else if (s.protocol === 'udp') {
    buf.writeUInt16BE(s.sport ?? 40000, l4);
    buf.writeUInt16BE(s.dport ?? 53, l4 + 2);
    buf.writeUInt16BE(l4len, l4 + 4);
    buf.set(payload, l4 + 8);
  } else {
    buf[l4] = s.icmpType ?? 8;
    buf[l4 + 1] = s.icmpCode ?? 0;
    buf.writeUInt32BE((s.icmpRest ?? 0) >>> 0, l4 + 4);
    buf.set(payload, l4 + 8);
  }
  const checkAt = s.protocol === 'tcp' ? 16 : s.protocol === 'udp' ? 6 : 2;
  const pseudo = v6 ? pseudoSum6(buf, ip + 8, ip + 24, proto, l4len) : s.protocol === 'icmp' ? 0 : pseudoSum4(src.w0 | 0, dst.w0 | 0, proto, l4len);
  let c = internetChecksum(buf, l4, l4len, pseudo);
  if (c === 0 && s.protocol === 'udp') c = 0xffff;
  buf.writeUInt16BE(c, l4 + checkAt);
  return buf;
}

/** The IP packet of a frame (what an ICMP error quotes). */
export function ipOf(f: Buffer): Buffer {
  return f.subarray(14);
}

export interface Decoded {
  info: PacketInfo;
  dstMac: string;
  srcMac: string;
  src: string;
  dst: string;
  ttl: number;
  /** IPv4 header checksum and L4 checksum are right. */
  checksumsOk: boolean;
  buf: Buffer;
}

const macText = (b: Uint8Array, o: number): string => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

export function decode(buf: Buffer): Decoded {
  const info = new PacketInfo();
  const r = parseFrame(buf, 0, buf.length, info);
  if (r < 0) throw new Error(`undecodable frame (${r})`);
  const addr = (off: number): string => IpAddr.fromBytes(buf.subarray(off, off + (info.ipVersion === 4 ? 4 : 16))).toString();
  const ipOk = info.ipVersion === 6 || verifyIpv4HeaderChecksum(buf, info.l3off);
  return {
    info,
    dstMac: macText(buf, 0),
    srcMac: macText(buf, 6),
    src: info.ipVersion ? addr(info.saddrOff) : '',
    dst: info.ipVersion ? addr(info.daddrOff) : '',
    ttl: info.ttl,
    checksumsOk: ipOk && verifyL4Checksum(buf, info),
    buf,
  };
}
