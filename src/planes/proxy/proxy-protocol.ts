// PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) that the proxy plane
// sends to a real server before any client byte, so the real server learns the client's
// address and port and the virtual address the client connected to. The native relay builds
// the same bytes in C++ (native/relay.cc); the tests hold both to these functions.

import type { IpAddr } from '../../core/addr.js';

/** The 12-byte signature that opens every version 2 header. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Version 1 (text): `PROXY TCP4 <client> <virtual> <cport> <vport>\r\n`. TCP only. */
export function proxyHeaderV1(client: IpAddr, cport: number, virt: IpAddr, vport: number): Buffer {
  const fam = client.family === 6 ? 'TCP6' : 'TCP4';
  return Buffer.from(`PROXY ${fam} ${client} ${virt} ${cport} ${vport}\r\n`, 'latin1');
}

/**
 * Version 2 (binary), command PROXY, no TLVs: signature, 0x21, family/transport (0x11 TCP/IPv4,
 * 0x12 UDP/IPv4, 0x21 TCP/IPv6, 0x22 UDP/IPv6), address block length, then source address,
 * destination address, source port, destination port, all in network order.
 */
export function proxyHeaderV2(transport: 'stream' | 'dgram', client: IpAddr, cport: number, virt: IpAddr, vport: number): Buffer {
  const v6 = client.family === 6;
  const alen = v6 ? 16 : 4;
  const b = Buffer.alloc(16 + 2 * alen + 4);
  PROXY_V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21;
  b[13] = (v6 ? 0x20 : 0x10) | (transport === 'stream' ? 0x01 : 0x02);
  b.writeUInt16BE(2 * alen + 4, 14);
  Buffer.from(client.toBytes()).copy(b, 16);
  Buffer.from(virt.toBytes()).copy(b, 16 + alen);
  b.writeUInt16BE(cport, 16 + 2 * alen);
  b.writeUInt16BE(vport, 18 + 2 * alen);
  return b;
}

/** The header a service asks for (0: none). */
export function proxyHeader(version: number, transport: 'stream' | 'dgram', client: IpAddr, cport: number, virt: IpAddr, vport: number): Buffer | null {
  if (version === 1 && transport === 'stream') return proxyHeaderV1(client, cport, virt, vport);
  if (version === 2) return proxyHeaderV2(transport, client, cport, virt, vport);
  return null;
}
