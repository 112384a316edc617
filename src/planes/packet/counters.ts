// The packet plane's counters: frames and bytes each way, drops by reason (the codec's Reason
// codes plus the plane's own), errors. One Float64Array per engine, so a worker thread can keep
// its counters in shared memory and the owner sums them without messages.

import { REASON_COUNT, REASON_NAMES } from '../../codec/index.js';

/** Plane drop reasons, numbered after the codec's (a codec Reason r counts at index -r). */
export const Drop = {
  /** Larger than the interface MTU allows: a GSO/GRO super-frame from an offloading peer. */
  Oversize: REASON_COUNT,
  /** Cut by the receive ring (longer than a ring frame). */
  RingTruncated: REASON_COUNT + 1,
  /** The core said drop (defense, deleted real server). */
  Core: REASON_COUNT + 2,
  /** No real server: answered with ICMP port unreachable. */
  NoDest: REASON_COUNT + 3,
  /** No route toward the destination. */
  NoRoute: REASON_COUNT + 4,
  /** The route uses an interface the plane is not attached to. */
  NotAttached: REASON_COUNT + 5,
  /** The next hop's link-layer address could not be resolved. */
  NeighbourFailed: REASON_COUNT + 6,
  /** Waiting for a next hop's address with a full queue. */
  NeighbourQueueFull: REASON_COUNT + 7,
  /** DF packet larger than the path MTU: answered with frag-needed / packet-too-big. */
  FragNeeded: REASON_COUNT + 8,
  /** A non-first fragment the plane cannot tie to a connection. */
  Fragment: REASON_COUNT + 9,
  /** A real server that is an address of this host. */
  LocalServer: REASON_COUNT + 10,
  /** A forwarding method the plane does not transmit (local node, bypass, proxy). */
  Method: REASON_COUNT + 11,
  /** No free transmit slot. */
  TxFull: REASON_COUNT + 12,
  /** Tunnel MTU below the minimum (68, IPv6 inner 1280): dropped silently as the kernel does. */
  TunnelMtu: REASON_COUNT + 13,
  /** A segment without a connection, answered as an idle host (TCP reset) or dropped. */
  NoConn: REASON_COUNT + 14,
  /** Direct routing to a real server that is not on a connected network. */
  NotOnLink: REASON_COUNT + 15,
  /** Multicast/broadcast or other traffic for the VIP the plane answers for but does not forward. */
  VipOther: REASON_COUNT + 16,
  /** A client packet from a health-check probe source that did not come from the plane's probe port. */
  ProbeSpoofed: REASON_COUNT + 17,
} as const;

const PLANE_NAMES = [
  'oversize',
  'ring_truncated',
  'core',
  'no_dest',
  'no_route',
  'not_attached',
  'neighbour_failed',
  'neighbour_queue_full',
  'frag_needed',
  'fragment',
  'local_real_server',
  'method',
  'tx_full',
  'tunnel_mtu',
  'no_conn',
  'not_on_link',
  'vip_other',
  'probe_spoofed',
];

export const DROP_NAMES: readonly string[] = [...REASON_NAMES, ...PLANE_NAMES];
export const DROP_COUNT = DROP_NAMES.length;

/** Fixed counter slots after the drops. */
export const C = {
  RX_FRAMES: DROP_COUNT,
  RX_BYTES: DROP_COUNT + 1,
  TX_FRAMES: DROP_COUNT + 2,
  TX_BYTES: DROP_COUNT + 3,
  /** Frames for the core (IN/OUT/ICMP) among the received ones. */
  CORE_PACKETS: DROP_COUNT + 4,
  /** ICMP errors, resets, ARP/ND answers the plane built. */
  ANSWERS: DROP_COUNT + 5,
  /** Frames of the kernel's own traffic, not ours (ignored). */
  IGNORED: DROP_COUNT + 6,
  /** Receive ring: frames the kernel dropped because the ring was full (refreshed periodically). */
  RING_DROPS: DROP_COUNT + 7,
  /** Transmit errors (send() failures other than a full ring). */
  TX_ERRORS: DROP_COUNT + 8,
  /** Frames waiting for a neighbour right now. */
  QUEUED: DROP_COUNT + 9,
} as const;

export const COUNTER_SLOTS = DROP_COUNT + 10;

export function newCounters(shared = false): Float64Array {
  return shared ? new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8)) : new Float64Array(COUNTER_SLOTS);
}

/** Drop index for a codec Reason code (negative) or a plane Drop value. */
export function dropIndex(code: number): number {
  return code < 0 ? -code : code;
}

/** The status() shape the metrics read by convention: drops by name (non-zero), packets, bytes, errors. */
export function summarize(sets: Float64Array[]): {
  drops: Record<string, number>;
  packets: { rx: number; tx: number };
  bytes: { rx: number; tx: number };
  errors: Record<string, number>;
  corePackets: number;
  answers: number;
  ignored: number;
  queued: number;
} {
  const sum = (i: number): number => sets.reduce((n, s) => n + s[i]!, 0);
  const drops: Record<string, number> = {};
  for (let i = 1; i < DROP_COUNT; i++) {
    const n = sum(i);
    if (n) drops[DROP_NAMES[i]!] = n;
  }
  return {
    drops,
    packets: { rx: sum(C.RX_FRAMES), tx: sum(C.TX_FRAMES) },
    bytes: { rx: sum(C.RX_BYTES), tx: sum(C.TX_BYTES) },
    errors: { ringDrops: sum(C.RING_DROPS), tx: sum(C.TX_ERRORS) },
    corePackets: sum(C.CORE_PACKETS),
    answers: sum(C.ANSWERS),
    ignored: sum(C.IGNORED),
    queued: sum(C.QUEUED),
  };
}
