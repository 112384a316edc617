// The packet plane's per-packet question to the core and the answer, as fixed-size records of
// 32-bit integers. The engine (the thread that holds the frames) writes one request per packet
// that needs the core; the thread that owns the Director answers each with a response. Both
// live in Int32Arrays: local arrays in "single" mode, SharedArrayBuffer rings in "threads"
// mode, so the two modes run the same code and a record never allocates.

/** What the engine asks. */
export const Kind = {
  /** Client -> virtual service (ip_vs_in). */
  In: 1,
  /** Possibly a NAT real server's reply (ip_vs_out); the answer routes it when it is not. */
  Out: 2,
  /** An ICMP error from the client side about a reply of a connection (§7.1); tuple = quoted packet, inverted. */
  IcmpIn: 3,
  /** An ICMP error from a NAT real server about a client's request (§7.2); tuple = quoted packet. */
  IcmpOut: 4,
  /** An ICMP error about one of our tunnel packets (§7.3); tuple = the inner client request. */
  TunnelIcmp: 5,
  /** Only the next hop toward the destination (forwarding without a connection). */
  Route: 6,
} as const;

export const REQ_STRIDE = 16;
/** Request fields (Int32 offsets in a record). */
export const Q = {
  KIND: 0,
  /** family (4 | 6) | protocol << 8 */
  FAMPROTO: 1,
  /** TCP flags, SCTP first chunk type; Kind.TunnelIcmp: icmp type << 8 | code */
  FLAGS: 2,
  /** IP packet length (core counters); Kind.TunnelIcmp: the MTU the error reports */
  LEN: 3,
  S0: 4,
  SPORT: 8,
  D0: 9,
  DPORT: 13,
  MARK: 14,
  /** Index of the port the frame came in on. */
  PORT: 15,
} as const;

export const RESP_STRIDE = 16;
/** Response fields. */
export const A = {
  /** Connection index (>= 0) or a Verdict. */
  VERDICT: 0,
  /** Forwarding method (FWD_*), for a connection. */
  METHOD: 1,
  /** Next-hop id (NextHops) to send to, -1 for none. */
  NH: 2,
  /** NAT: the port to write (dport in, vport out). */
  PORT: 3,
  /** NAT: the address to write; TUN: the outer destination (real server). Family in FAM. */
  A0: 4,
  /** TUN: type | flags << 8 */
  TUN: 8,
  /** TUN: GUE destination port */
  TUN_PORT: 9,
  /** MTU toward the next hop (route, interface, learned path MTU). */
  MTU: 10,
  /** TUN: outer source; ICMP answers: the source address to use. */
  S0: 11,
  /** Family of A0 (the real server's, which may differ from the packet's for TUN). */
  FAM: 15,
} as const;

/** Answers that are not a connection (the core's VERDICT_* values, and the plane's own). */
export const Verdict = {
  /** Not for a connection: the local stack's business (here: answered as an idle host would). */
  Accept: -1,
  Drop: -2,
  /** No real server: ICMP port unreachable to the client. */
  Unreach: -3,
  /** Forward unchanged toward the destination, as a router (NH, MTU set). */
  Route: -4,
  /** No route to the destination: ICMP host unreachable to the sender. */
  NoRoute: -5,
  /** The core took a connection but the plane cannot transmit it (reason in METHOD). */
  Refused: -6,
} as const;

/**
 * A non-negative answer that is no connection entry: a health-check probe carried to a real
 * server the table no longer holds (virtual-paths.ts). The engine transmits it as a connection's.
 */
export const NO_CONN = 0x7fffffff;

/** Why Verdict.Refused (in A.METHOD). */
export const Refusal = {
  /** The route leaves through an interface the plane is not attached to. */
  NotAttached: 1,
  /** The real server is an address of this host (local delivery is not possible from here). */
  LocalServer: 2,
  /** LOCALNODE, BYPASS, proxy: not a method this plane transmits. */
  Method: 3,
  /** Direct routing to a real server that is not on a connected network. */
  NotOnLink: 4,
} as const;
