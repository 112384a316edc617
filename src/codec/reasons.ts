// Why a frame was refused. Every parser and rewriter in the codec returns Reason.Ok (0) or one
// of these negative codes and never throws, so the data plane counts drops by reason with an
// array indexed by -code instead of a try/catch per packet.

export const Reason = {
  Ok: 0,
  /** The frame ends before a header it announces (Ethernet, IP, L4, option, quoted packet). */
  Truncated: -1,
  /** IP version nibble is not 4 or 6, or does not match the EtherType / the carrying header. */
  BadVersion: -2,
  /** IPv4 IHL below 5. */
  BadHeaderLength: -3,
  /** IPv4 total length shorter than its header; IPv6 jumbogram (payload length 0 + hop-by-hop). */
  BadTotalLength: -4,
  /** IPv4 header checksum wrong, or an L4/ICMP/tunnel checksum when verification was asked. */
  BadChecksum: -5,
  /** A fragment that would end past 65535 bytes (ping of death). */
  BadFragment: -6,
  /** TCP data offset below 5 or beyond the segment. */
  BadTcpHeader: -7,
  /** UDP length below 8 or beyond the IP payload. */
  BadUdpLength: -8,
  /** IPv6 extension header that runs past the packet. */
  BadExtensionHeader: -9,
  /** More IPv6 extension headers than we are willing to walk. */
  TooManyExtensionHeaders: -10,
  /** A second VLAN tag (QinQ), which the plane does not forward. */
  StackedVlan: -11,
  /** ARP that is not Ethernet/IPv4, or an operation other than request/reply. */
  BadArp: -12,
  /** ICMP message that is not what was asked (not an error, no usable quoted header). */
  BadIcmp: -13,
  /** Neighbour solicitation/advertisement failing the RFC 4861 validity checks. */
  BadNeighborDiscovery: -14,
  /** Tunnel header we do not decapsulate (GUE version/control/flags, GRE version/routing, inner type). */
  BadTunnel: -15,
  /** Not a packet of a tunnel kind (or GUE port) we were asked to strip. */
  NotTunnel: -16,
  /** TTL or hop limit would reach 0: the sender gets ICMP time exceeded. */
  TtlExceeded: -17,
  /** Output buffer or headroom too small for what was asked. */
  NoRoom: -18,
  /** The result would exceed the 65535-byte IP limit. */
  TooBig: -19,
  /** RFC 1122 / RFC 4443 forbid an ICMP error about this packet (error about an error, non-first fragment, non-unicast). */
  IcmpSuppressed: -20,
  /** A destination that is not unicast where a unicast one is required (echo reply to multicast). */
  NotUnicast: -21,
  /** A protocol or combination the codec does not handle. */
  Unsupported: -22,
} as const;

export type Reason = (typeof Reason)[keyof typeof Reason];

/** Label-friendly names indexed by -code (Prometheus labels, logs). */
export const REASON_NAMES: readonly string[] = [
  'ok',
  'truncated',
  'bad_version',
  'bad_header_length',
  'bad_total_length',
  'bad_checksum',
  'bad_fragment',
  'bad_tcp_header',
  'bad_udp_length',
  'bad_extension_header',
  'too_many_extension_headers',
  'stacked_vlan',
  'bad_arp',
  'bad_icmp',
  'bad_neighbor_discovery',
  'bad_tunnel',
  'not_tunnel',
  'ttl_exceeded',
  'no_room',
  'too_big',
  'icmp_suppressed',
  'not_unicast',
  'unsupported',
];

/** Number of distinct codes, for a per-reason counter array `new Float64Array(REASON_COUNT)`. */
export const REASON_COUNT = REASON_NAMES.length;

/** Name of a code; positive values (offsets, lengths) are "ok". */
export function reasonName(code: number): string {
  if (code >= 0) return 'ok';
  return REASON_NAMES[-code] ?? `unknown_${code}`;
}
