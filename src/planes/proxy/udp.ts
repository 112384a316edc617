// The UDP relay. Every datagram from a client goes through the core (inPacket), which finds the
// client's entry or schedules a new one and refreshes its UDP timeout (300 s by default,
// `--set`). Each entry gets one upstream socket toward its real server, kept until the core
// frees the entry (onConnFree), so all datagrams of a client address and port reach the same
// real server until the entry times out. Replies are sent back from the virtual address's own
// socket (the client sees them come from VIP:port) and fed to the core as OUTPUT packets.
//
// One-packet scheduling (-o): each datagram is its own entry, scheduled independently and freed
// right after; upstream sockets are then kept per (client, real server) pair by this relay,
// with the same idle timeout, so replies still find their way back.
//
// PROXY protocol: version 2 (DGRAM) headers are prepended to every datagram toward the real
// server when the service asks for version 2; version 1 has no UDP form and is not sent.

import dgram from 'node:dgram';
import { IpAddr } from '../../core/addr.js';
import { CONN_F_ONE_PACKET } from '../../core/constants.js';
import type { Director } from '../../core/director.js';
import { Flow } from '../../core/flow.js';
import { DIR_OUTPUT } from '../../core/proto/tcp.js';
import { setFlowSourceText, wordsToText } from './addr-text.js';
import { proxyHeaderV2 } from './proxy-protocol.js';
import type { ListenerInfo } from './types.js';

interface Upstream {
  readonly sock: dgram.Socket;
  /** Entry it serves; -1 for one-packet upstreams (no lasting entry). */
  readonly cp: number;
  readonly key: string;
  readonly l: ListenerInfo;
  readonly clientHost: string;
  readonly clientPort: number;
  readonly destHost: string;
  readonly destPort: number;
  readonly header: Buffer | null;
  lastUsed: number;
  closed: boolean;
}

export class UdpRelay {
  private readonly socks = new Map<number, dgram.Socket>();
  private byCp: (Upstream | undefined)[] = [];
  private readonly ops = new Map<string, Upstream>();
  private readonly flow = new Flow();
  private readonly timer: NodeJS.Timeout;
  private accepting = true;
  private upstreams = 0;
  datagramsIn = 0;
  datagramsOut = 0;
  dropped = 0;

  constructor(
    private readonly director: Director,
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    this.timer = setInterval(() => this.sweepOps(), 1000);
    this.timer.unref();
  }

  get size(): number {
    return this.upstreams;
  }

  listen(l: ListenerInfo): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: l.family === 6 ? 'udp6' : 'udp4', ipv6Only: l.family === 6 });
      const onErr = (e: Error) => {
        sock.close();
        reject(e);
      };
      sock.once('error', onErr);
      sock.on('message', (m, r) => this.fromClient(l, sock, m, r));
      sock.bind({ address: l.host, port: l.port, exclusive: true }, () => {
        sock.off('error', onErr);
        sock.on('error', (e) => this.onError(e));
        this.socks.set(l.id, sock);
        resolve();
      });
    });
  }

  /** Stop receiving on l. Its flows lose their way back to the clients, as the VIP is gone. */
  async unlisten(id: number): Promise<void> {
    const s = this.socks.get(id);
    if (!s) return;
    this.socks.delete(id);
    s.close();
  }

  /** Only datagrams of existing entries pass from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** The core freed entry cp: close its upstream socket. */
  connFree(cp: number): void {
    const up = this.byCp[cp];
    if (!up) return;
    this.byCp[cp] = undefined;
    this.closeUp(up);
  }

  forEachConn(fn: (cp: number) => void): void {
    for (let i = 0; i < this.byCp.length; i++) if (this.byCp[i]) fn(i);
  }

  close(): void {
    clearInterval(this.timer);
    for (const s of this.socks.values()) s.close();
    this.socks.clear();
    for (const up of this.byCp) if (up) this.closeUp(up);
    this.byCp = [];
    for (const up of this.ops.values()) this.closeUp(up);
    this.ops.clear();
  }

  status(): Record<string, unknown> {
    return { listeners: this.socks.size, upstreams: this.upstreams, datagramsIn: this.datagramsIn, datagramsOut: this.datagramsOut, dropped: this.dropped };
  }

  private fromClient(l: ListenerInfo, sock: dgram.Socket, msg: Buffer, r: dgram.RemoteInfo): void {
    const f = this.flow;
    f.family = l.family;
    f.protocol = 17;
    if (!setFlowSourceText(f, l.family, r.address, r.port)) return;
    const a = l.addr;
    f.d0 = a.w0;
    f.d1 = a.w1;
    f.d2 = a.w2;
    f.d3 = a.w3;
    f.dport = l.port;
    f.mark = 0;
    const d = this.director;
    if (!this.accepting && d.conns.lookupIn(f.family, 17, f.s0, f.s1, f.s2, f.s3, f.sport, f.d0, f.d1, f.d2, f.d3, f.dport) < 0) {
      this.dropped++;
      return;
    }
    const cp = d.inPacket(f, 0, msg.length);
    if (cp < 0) {
      // no real server (or dropped): the kernel would send ICMP port unreachable, which an
      // unprivileged socket cannot; the datagram is dropped.
      this.dropped++;
      return;
    }
    this.datagramsIn++;
    const c = d.conns;
    let up: Upstream | undefined;
    if (c.flags[cp]! & CONN_F_ONE_PACKET) {
      const w = cp * 4;
      const key = `${r.address}|${r.port}|${c.daddr[w]}|${c.daddr[w + 1]}|${c.daddr[w + 2]}|${c.daddr[w + 3]}|${c.dport[cp]}|${l.id}`;
      up = this.ops.get(key);
      if (!up || up.closed) {
        up = this.open(l, sock, cp, -1, key, r);
        this.ops.set(key, up);
      }
    } else {
      up = this.byCp[cp];
      if (!up || up.closed) {
        up = this.open(l, sock, cp, cp, '', r);
        if (cp >= this.byCp.length) this.byCp.length = cp + 1;
        this.byCp[cp] = up;
      }
    }
    up.lastUsed = performance.now();
    if (up.header) up.sock.send([up.header, msg], up.destPort, up.destHost);
    else up.sock.send(msg, up.destPort, up.destHost);
  }

  private open(l: ListenerInfo, vsock: dgram.Socket, cp: number, owner: number, key: string, r: dgram.RemoteInfo): Upstream {
    const c = this.director.conns;
    const w = cp * 4;
    const family = c.daf[cp]!;
    const destHost = wordsToText(family, c.daddr[w]!, c.daddr[w + 1]!, c.daddr[w + 2]!, c.daddr[w + 3]!);
    const destPort = c.dport[cp]!;
    const ppv = this.director.connDest(cp)?.svc.proxyProtocol ?? 0;
    const clientHost = r.address;
    const header = ppv === 2 ? proxyHeaderV2('dgram', IpAddr.parse(clientHost), r.port, l.addr, l.port) : null;
    const sock = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    const up: Upstream = { sock, cp: owner, key, l, clientHost, clientPort: r.port, destHost, destPort, header, lastUsed: performance.now(), closed: false };
    this.upstreams++;
    sock.on('error', (e) => this.onError(e));
    sock.on('message', (m, from) => {
      // only the real server's replies (the socket is not connected: filter here)
      if (from.port !== destPort || from.address !== destHost || up.closed) return;
      up.lastUsed = performance.now();
      if (!this.socks.has(l.id)) return;
      vsock.send(m, up.clientPort, up.clientHost);
      this.datagramsOut++;
      if (up.cp >= 0) this.director.connPacket(up.cp, DIR_OUTPUT, 0, m.length);
    });
    return up;
  }

  private closeUp(up: Upstream): void {
    if (up.closed) return;
    up.closed = true;
    this.upstreams--;
    try {
      up.sock.close();
    } catch {
      // already closed
    }
  }

  /** One-packet upstreams live as long as an entry would: the UDP timeout after last use. */
  private sweepOps(): void {
    if (this.ops.size === 0) return;
    const ttl = this.director.getTimeouts().udp * 1000;
    const now = performance.now();
    for (const [k, up] of this.ops) {
      if (now - up.lastUsed >= ttl) {
        this.ops.delete(k);
        this.closeUp(up);
      }
    }
  }
}
