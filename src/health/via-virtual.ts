// Checks that travel the clients' way (`via: virtual`): for a direct-routing or tunnel real
// server, connect to the virtual address and port and let the data plane carry the probe to
// that one real server, so the check sees what clients see (the VIP configured on the server's
// loopback, its ARP settings, the tunnel decapsulation, the service bound to the VIP).
//
// Something must make the probe's packets reach the chosen real server rather than whichever
// one the scheduler would pick. Two ways, tried in this order:
//
//  1. A VirtualPathProvider registered by the packet plane: it hands out a source address (and
//     port) for each (service, real server); packets from that source to the VIP are forwarded
//     to that real server by the service's method, without scheduling. The probe binds to it.
//  2. `bindto` on the checker: the operator's policy routing sends packets from that source to
//     the VIP via the real server (DR: `ip rule add from SRC lookup 100; ip route add VIP via
//     RIP table 100`; TUN: the route goes through the tunnel device). Works with the kernel's
//     own stack today.
//
// With neither, the probe cannot pick the real server: it falls back to checking the real
// server directly and says so (status, `vsadm -L --json`, a warning in the log), rather than
// probing the VIP and judging whichever server happened to answer.

import type { ServiceKeySpec } from '../core/model.js';

export interface VirtualPathRequest {
  service: ServiceKeySpec;
  dest: { af: 4 | 6; addr: string; port: number };
  /** FWD_DROUTE or FWD_TUNNEL */
  method: number;
  /** FWD_TUNNEL: the configured tunnel (TUN_TYPE_*, GUE port, TUN_F_*); IPIP when absent. */
  tunnel?: { type: number; port: number; flags: number };
  protocol: 'tcp' | 'udp';
}

export interface VirtualPath {
  /** The source the probe binds to; the plane forwards its packets to the pinned real server. */
  bind: { address: string; port?: number };
  release(): void;
}

export interface VirtualPathProvider {
  readonly name: string;
  /** A path to one real server through the data plane, or null if this one cannot be pinned. */
  open(req: VirtualPathRequest): VirtualPath | null;
}

let provider: VirtualPathProvider | null = null;

/** Called by the packet plane when it starts (and with null when it stops). */
export function registerVirtualPathProvider(p: VirtualPathProvider | null): void {
  provider = p;
}

export function virtualPathProvider(): VirtualPathProvider | null {
  return provider;
}
