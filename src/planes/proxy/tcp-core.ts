// The TCP relays' one way into the director: a new client connection is scheduled like the
// kernel schedules a SYN, and the life of the connection is then fed to the core as the
// segments a NAT director would have seen, so states, active/inactive counts, per-state
// timeouts and counters stay what IPVS would show:
//
//   client connects        inPacket(SYN)                 -> SYN_RECV (active)
//   real server accepts    OUTPUT SYN|ACK, INPUT ACK     -> ESTABLISHED
//   bytes either way       INPUT/OUTPUT ACK with the byte count (at most once a second per
//                          connection: counters, and the idle timer of the current state)
//   FIN from either side   INPUT/OUTPUT FIN|ACK          -> CLOSE_WAIT / FIN_WAIT -> TIME_WAIT
//   reset from either side INPUT/OUTPUT RST              -> CLOSE
//   connect refused        OUTPUT RST (the server's RST) -> CLOSE
//
// Byte counters count payload bytes (the kernel counts IP packet lengths) and one packet per
// read (the kernel counts segments): documented in docs/planes.md.

import type { Director } from '../../core/director.js';
import { VERDICT_UNREACH } from '../../core/director.js';
import { Flow } from '../../core/flow.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../core/proto/tcp.js';
import type { ListenerInfo } from './types.js';

export const ECONNREFUSED = 111;

export class TcpCore {
  private readonly flow = new Flow();

  constructor(
    readonly director: Director,
    /** True when address:port is one of the plane's own listeners (connecting there would loop). */
    private readonly isOwnEndpoint: (family: number, w0: number, w1: number, w2: number, w3: number, port: number) => boolean,
  ) {}

  /** A client connection accepted on l: the entry that carries it (≥ 0) or a VERDICT_* (< 0). */
  open(l: ListenerInfo, s0: number, s1: number, s2: number, s3: number, sport: number): number {
    const f = this.flow;
    f.family = l.family;
    f.protocol = 6;
    f.s0 = s0;
    f.s1 = s1;
    f.s2 = s2;
    f.s3 = s3;
    f.sport = sport;
    const a = l.addr;
    f.d0 = a.w0;
    f.d1 = a.w1;
    f.d2 = a.w2;
    f.d3 = a.w3;
    f.dport = l.port;
    f.mark = 0;
    return this.checked(this.director.inPacket(f, TCP_SYN, 0));
  }

  /** Same as open() with the flow's source already filled by the caller (JS relay). */
  openFlow(l: ListenerInfo, fill: (f: Flow) => boolean): number {
    const f = this.flow;
    f.family = l.family;
    f.protocol = 6;
    if (!fill(f)) return VERDICT_UNREACH;
    const a = l.addr;
    f.d0 = a.w0;
    f.d1 = a.w1;
    f.d2 = a.w2;
    f.d3 = a.w3;
    f.dport = l.port;
    f.mark = 0;
    return this.checked(this.director.inPacket(f, TCP_SYN, 0));
  }

  private checked(cp: number): number {
    if (cp < 0) return cp;
    const c = this.director.conns;
    const o = cp * 4;
    if (this.isOwnEndpoint(c.daf[cp]!, c.daddr[o]!, c.daddr[o + 1]!, c.daddr[o + 2]!, c.daddr[o + 3]!, c.dport[cp]!)) {
      // A real server that is this very virtual service: refuse rather than loop.
      this.director.connPacket(cp, DIR_OUTPUT, TCP_RST, 0);
      return VERDICT_UNREACH;
    }
    return cp;
  }

  /** PROXY protocol version the entry's service asks for (0: none). */
  proxyVersion(cp: number): number {
    return this.director.connDest(cp)?.svc.proxyProtocol ?? 0;
  }

  connected(cp: number): void {
    this.director.connPacket(cp, DIR_OUTPUT, TCP_SYN | TCP_ACK, 0);
    this.director.connPacket(cp, DIR_INPUT, TCP_ACK, 0);
  }

  /** The real server refused (its RST moves the entry to CLOSE); other errors leave the entry
   * to its SYN_RECV timer, as an unanswered SYN would. */
  connectFailed(cp: number, errno: number): void {
    if (errno === ECONNREFUSED) this.director.connPacket(cp, DIR_OUTPUT, TCP_RST, 0);
  }

  bytes(cp: number, inBytes: number, inSegs: number, outBytes: number, outSegs: number): void {
    const d = this.director;
    if (inBytes > 0) {
      d.connPacket(cp, DIR_INPUT, TCP_ACK, inBytes);
      if (inSegs > 1) d.connBytes(cp, DIR_INPUT, inSegs - 1, 0);
    }
    if (outBytes > 0) {
      d.connPacket(cp, DIR_OUTPUT, TCP_ACK, outBytes);
      if (outSegs > 1) d.connBytes(cp, DIR_OUTPUT, outSegs - 1, 0);
    }
  }

  /** FIN from the client (DIR_INPUT) or from the real server (DIR_OUTPUT). */
  fin(cp: number, dir: typeof DIR_INPUT | typeof DIR_OUTPUT): void {
    this.director.connPacket(cp, dir, TCP_FIN | TCP_ACK, 0);
  }

  reset(cp: number, dir: typeof DIR_INPUT | typeof DIR_OUTPUT): void {
    this.director.connPacket(cp, dir, TCP_RST, 0);
  }
}
