// The packet facts the core needs to look up, schedule and account a packet: a reusable,
// monomorphic record of numbers that a data plane fills in place for every packet
// (no allocation per packet). Addresses are four 32-bit words as in IpAddr (IPv4 in w0).

import { IpAddr, type Family } from './addr.js';

export class Flow {
  family: Family = 4;
  protocol = 6;
  s0 = 0;
  s1 = 0;
  s2 = 0;
  s3 = 0;
  sport = 0;
  d0 = 0;
  d1 = 0;
  d2 = 0;
  d3 = 0;
  dport = 0;
  /** Firewall mark of the packet (0: none). */
  mark = 0;

  setSource(a: IpAddr, port: number): this {
    this.family = a.family;
    this.s0 = a.w0;
    this.s1 = a.w1;
    this.s2 = a.w2;
    this.s3 = a.w3;
    this.sport = port;
    return this;
  }

  setDest(a: IpAddr, port: number): this {
    this.d0 = a.w0;
    this.d1 = a.w1;
    this.d2 = a.w2;
    this.d3 = a.w3;
    this.dport = port;
    return this;
  }

  /** ip_vs_addr_fold of the source address. */
  get sourceFold(): number {
    return (this.s0 ^ this.s1 ^ this.s2 ^ this.s3) >>> 0;
  }

  /** ip_vs_addr_fold of the destination address. */
  get destFold(): number {
    return (this.d0 ^ this.d1 ^ this.d2 ^ this.d3) >>> 0;
  }

  source(): IpAddr {
    return new IpAddr(this.family, this.s0, this.s1, this.s2, this.s3);
  }

  dest(): IpAddr {
    return new IpAddr(this.family, this.d0, this.d1, this.d2, this.d3);
  }

  copyFrom(o: Flow): this {
    this.family = o.family;
    this.protocol = o.protocol;
    this.s0 = o.s0;
    this.s1 = o.s1;
    this.s2 = o.s2;
    this.s3 = o.s3;
    this.sport = o.sport;
    this.d0 = o.d0;
    this.d1 = o.d1;
    this.d2 = o.d2;
    this.d3 = o.d3;
    this.dport = o.dport;
    this.mark = o.mark;
    return this;
  }
}
