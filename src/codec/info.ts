// What a parse learned about one packet. The data plane allocates one PacketInfo per worker
// (two when it looks inside ICMP errors or tunnels) and the parsers overwrite it per packet:
// every field is a number or boolean with a fixed shape, so parsing allocates nothing.

/**
 * An IP address as four 32-bit words in network order, IPv4 in w0 (unsigned numbers): the
 * shape of core's IpAddr, so connection entries can be passed as they are.
 */
export interface AddrWords {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
}

export class PacketInfo {
  // --- link layer
  /** Offset of the Ethernet header, -1 when the parse began at the IP header. */
  l2off = -1;
  /** TCI of the single 802.1Q tag, -1 when untagged. */
  vlanTci = -1;
  etherType = 0;

  // --- network layer
  l3off = 0;
  /** 4, 6, or 0 for a frame that is not IP. */
  ipVersion = 0;
  /** IPv4: IHL*4; IPv6: 40 plus the extension headers walked. */
  ipHeaderLen = 0;
  /** Offset just past the IP packet as its length field says (link padding excluded). */
  ipEnd = 0;
  /** Upper-layer protocol (after IPv6 extension headers). */
  protocol = 0;
  /** TTL / hop limit. */
  ttl = 0;
  /** IPv4 TOS / IPv6 traffic class: DSCP << 2 | ECN. */
  tos = 0;
  flowLabel = 0;
  /** IPv4 identification; IPv6 fragment-header identification. */
  ipId = 0;
  /** Fragment offset in bytes. */
  fragOffset = 0;
  moreFragments = false;
  dontFragment = false;
  /** IPv6: offset of the fragment header, -1 when absent. */
  fragHeaderOff = -1;
  saddrOff = 0;
  daddrOff = 0;
  /** IPv4 addresses as unsigned numbers (0 for IPv6: read the words at saddrOff/daddrOff). */
  saddr4 = 0;
  daddr4 = 0;

  // --- transport layer
  /** Offset of the upper-layer header, -1 when it is not in this packet (non-first fragment). */
  l4off = -1;
  /** TCP: data offset * 4; UDP 8; ICMP 8; 0 when not parsed. */
  l4HeaderLen = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  tcpSeq = 0;
  tcpAck = 0;
  udpLength = 0;
  icmpType = -1;
  icmpCode = -1;
  /** ICMP echo identifier/sequence, or the MTU of frag-needed / packet-too-big. */
  icmpId = 0;
  icmpSeq = 0;
  icmpMtu = 0;

  // --- ARP
  arpOp = 0;
  arpSenderIp = 0;
  arpTargetIp = 0;

  // --- neighbour discovery
  /** Offset of the target address of an NS/NA, -1 when not ND. */
  ndTargetOff = -1;
  /** Offset of the 6-byte MAC of the source (NS) / target (NA) link-layer address option, or -1. */
  ndLinkAddrOff = -1;
  /** NA flags byte (R 0x80, S 0x40, O 0x20). */
  ndFlags = 0;

  /** Clears every field; the parsers call it first. */
  reset(): void {
    this.l2off = -1;
    this.vlanTci = -1;
    this.etherType = 0;
    this.l3off = 0;
    this.ipVersion = 0;
    this.ipHeaderLen = 0;
    this.ipEnd = 0;
    this.protocol = 0;
    this.ttl = 0;
    this.tos = 0;
    this.flowLabel = 0;
    this.ipId = 0;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.dontFragment = false;
    this.fragHeaderOff = -1;
    this.saddrOff = 0;
    this.daddrOff = 0;
    this.saddr4 = 0;
    this.daddr4 = 0;
    this.resetL4();
    this.arpOp = 0;
    this.arpSenderIp = 0;
    this.arpTargetIp = 0;
  }

  resetL4(): void {
    this.l4off = -1;
    this.l4HeaderLen = 0;
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    this.tcpSeq = 0;
    this.tcpAck = 0;
    this.udpLength = 0;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.icmpId = 0;
    this.icmpSeq = 0;
    this.icmpMtu = 0;
    this.ndTargetOff = -1;
    this.ndLinkAddrOff = -1;
    this.ndFlags = 0;
  }

  /**
   * Moves every offset by `delta`, for a frame copied elsewhere after parsing (from the receive
   * ring into a transmit slot, maybe with headroom): cheaper than parsing it again.
   */
  shift(delta: number): void {
    if (this.l2off >= 0) this.l2off += delta;
    this.l3off += delta;
    this.ipEnd += delta;
    this.saddrOff += delta;
    this.daddrOff += delta;
    if (this.fragHeaderOff >= 0) this.fragHeaderOff += delta;
    if (this.l4off >= 0) this.l4off += delta;
    if (this.ndTargetOff >= 0) this.ndTargetOff += delta;
    if (this.ndLinkAddrOff >= 0) this.ndLinkAddrOff += delta;
  }

  /** A fragment of a larger datagram (first or later). */
  get isFragment(): boolean {
    return this.moreFragments || this.fragOffset !== 0;
  }

  /** Length of the IP packet (header included). */
  get ipLength(): number {
    return this.ipEnd - this.l3off;
  }

  /** Offset of the L4 payload, -1 when the L4 header is absent. */
  get payloadOff(): number {
    return this.l4off < 0 ? -1 : this.l4off + this.l4HeaderLen;
  }
}
