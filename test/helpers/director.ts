// Test helpers for driving a Director as a data plane would: build services from ipvsadm -S
// lines, and play TCP connections and UDP datagrams through the IN and OUT paths.

import { IpAddr } from '../../src/core/addr.js';
import { ManualClock } from '../../src/core/clock.js';
import { FWD_DROUTE, FWD_MASQ, FWD_TUNNEL, IPPROTO_TCP, IPPROTO_UDP, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3 } from '../../src/core/constants.js';
import { Director } from '../../src/core/director.js';
import { Flow } from '../../src/core/flow.js';
import type { DestSpec, ServiceKeySpec, ServiceSpec } from '../../src/core/model.js';
import '../../src/core/schedulers/index.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../../src/core/proto/tcp.js';

export function makeDirector(seed?: number): { d: Director; clock: ManualClock } {
  const clock = new ManualClock(1_000_000);
  let s = seed ?? 1;
  const random32 = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s;
  };
  return { d: new Director({ now: clock.now, random32 }), clock };
}

function hostPort(text: string): { addr: IpAddr; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^(.+):(\d+)$/.exec(text)!;
  return { addr: IpAddr.parse(m[1]!), port: Number(m[2]) };
}

/** Apply `ipvsadm -S -n` style lines (-A / -a only, the options the goldens use). */
export function applyRules(d: Director, text: string): void {
  for (const line of text.split('\n')) {
    const tok = line.trim().split(/\s+/);
    if (!tok[0]) continue;
    const opt = (name: string) => {
      const i = tok.indexOf(name);
      return i >= 0 ? tok[i + 1] : undefined;
    };
    const proto = tok.includes('-u') ? IPPROTO_UDP : IPPROTO_TCP;
    const svc = hostPort(opt('-t') ?? opt('-u')!);
    const key: ServiceKeySpec = { af: svc.addr.family, protocol: proto, addr: svc.addr.toString(), port: svc.port, fwmark: 0 };
    if (tok[0] === '-A') {
      let flags = 0;
      let timeout = 0;
      if (tok.includes('-p')) {
        flags |= SVC_F_PERSISTENT;
        timeout = Number(opt('-p'));
      }
      if (tok.includes('-o')) flags |= SVC_F_ONEPACKET;
      for (const f of (opt('-b') ?? '').split(',').filter(Boolean)) flags |= f.endsWith('fallback') || f === 'flag-1' ? SVC_F_SCHED1 : f.endsWith('port') || f === 'flag-2' ? SVC_F_SCHED2 : SVC_F_SCHED3;
      const mask = opt('-M') ? IpAddr.parse(opt('-M')!).w0 : 0xffffffff;
      const spec: ServiceSpec = { ...key, schedName: opt('-s') ?? 'wlc', flags, timeout, netmask: mask };
      d.addService(spec);
    } else if (tok[0] === '-a') {
      const rs = hostPort(opt('-r')!);
      const method = tok.includes('-m') ? FWD_MASQ : tok.includes('-i') ? FWD_TUNNEL : FWD_DROUTE;
      const dest: DestSpec = { af: rs.addr.family, addr: rs.addr.toString(), port: rs.port, connFlags: method, weight: Number(opt('-w') ?? 1), uThreshold: Number(opt('-x') ?? 0), lThreshold: Number(opt('-y') ?? 0) };
      d.addDest(key, dest);
    }
  }
}

/** A client socket talking to a virtual service through a director (NAT-style: both directions seen). */
export class Client {
  readonly flow = new Flow();
  private readonly reply = new Flow();
  conn = -1;
  constructor(
    private readonly d: Director,
    client: string,
    vip: string,
    proto = IPPROTO_TCP,
  ) {
    const c = hostPort(client);
    const v = hostPort(vip);
    this.flow.protocol = proto;
    this.flow.setSource(c.addr, c.port).setDest(v.addr, v.port);
    this.reply.protocol = proto;
    this.reply.family = c.addr.family;
  }

  /** Client → service. */
  in(flags: number, len = 60): number {
    const r = this.d.inPacket(this.flow, flags, len);
    if (r >= 0) this.conn = r;
    return r;
  }

  /** Real server → client, from the entry's real server address (NAT reply). */
  out(flags: number, len = 60): number {
    const c = this.d.conns;
    const i = this.conn;
    const daddr = new IpAddr(c.daf[i] as 4 | 6, c.daddr[i * 4]!, c.daddr[i * 4 + 1], c.daddr[i * 4 + 2], c.daddr[i * 4 + 3]);
    this.reply.setSource(daddr, c.dport[i]!);
    this.reply.setDest(this.flow.source(), this.flow.sport);
    return this.d.outPacket(this.reply, flags, len);
  }

  /** TCP three-way handshake plus one answer from the server; returns the real server "addr:port". */
  open(): string | null {
    if (this.in(TCP_SYN) < 0) return null;
    this.out(TCP_SYN | TCP_ACK);
    this.in(TCP_ACK);
    this.out(TCP_ACK | TCP_PSH, 80);
    this.in(TCP_ACK);
    return this.server();
  }

  /** Orderly close started by the client (ends in TIME_WAIT). */
  close(): void {
    this.in(TCP_FIN | TCP_ACK);
    this.out(TCP_FIN | TCP_ACK);
    this.in(TCP_ACK);
  }

  reset(): void {
    this.in(TCP_RST);
  }

  /** One UDP datagram and its reply. */
  datagram(): string | null {
    if (this.in(0, 33) < 0) return null;
    const s = this.server();
    this.out(0, 60);
    return s;
  }

  server(): string {
    const c = this.d.conns;
    const i = this.conn;
    const a = new IpAddr(c.daf[i] as 4 | 6, c.daddr[i * 4]!, c.daddr[i * 4 + 1], c.daddr[i * 4 + 2], c.daddr[i * 4 + 3]);
    return `${a}:${c.dport[i]}`;
  }
}
