// Frame I/O for the packet data plane: read and write raw Ethernet frames on one interface,
// in batches, with no allocation per frame.
//
// `FramePort` is what the plane sees. Two implementations:
// - `openFramePort()`: an AF_PACKET socket with mmap()ed TPACKET_V3 rings (native addon in
//   ./native, Linux, root). Receive hands whole ring blocks; transmit writes into ring slots.
// - `createMemoryPortPair()`: two ports wired back to back in memory, for tests of the plane
//   that need no root and no kernel. Another backend (AF_XDP) would slot in the same way.
//
// Batch protocol (the same for both):
//   receive:  n = port.poll()             // releases the previous batch, gathers the next
//             for i < n: frame i is port.rx.buffer[rx.offsets[i] .. + rx.lengths[i]]
//             (valid, and writable in place, until the next poll()/release())
//   transmit: n = port.reserve(max)        // free slots: port.tx.offsets[0..n)
//             write frame i at tx.buffer[tx.offsets[i]], its length into tx.lengths[i]
//             port.send(k)                 // k <= n frames, one syscall
//   forward:  list rx indices in port.forwardIndex, then port.forward(fromPort, k): copies
//             those frames of fromPort's current rx batch into tx slots, one syscall.
//   driving:  port.start(onBatch) on the event loop (libuv polls the socket), or
//             receiveLoop(port, onBatch, shouldStop) owning a worker thread (busy poll).
// Frames received from a local veth peer with checksum offload on carry partial checksums
// (RX_STATUS.CSUM_NOT_READY): fix them before forwarding, or turn the peer's offloads off.
// A TPACKET_V3 block is handed over when full or after rxBlockTimeoutMs (1 ms minimum): at low
// rates that is the latency floor of this backend.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { IpAddr } from '../../core/addr.js';

/** Facts about an interface, from the kernel (ioctl) in the port's namespace. */
export interface InterfaceInfo {
  name: string;
  ifindex: number;
  /** ARPHRD_* type (1 = Ethernet). */
  hwType: number;
  mac: Buffer;
  mtu: number;
  /** IFF_* flags (IFF_UP = 1, IFF_RUNNING = 0x40, IFF_PROMISC = 0x100). */
  flags: number;
}

/** The reused receive batch: frame i is buffer[offsets[i], offsets[i] + lengths[i]). */
export interface RxBatch {
  readonly buffer: Buffer;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  /** TP_STATUS_* bits per frame (see RX_STATUS), plus RX_STATUS.TRUNCATED. */
  readonly status: Int32Array;
  /** Frames in the current batch. */
  count: number;
}

/** The reused transmit batch: reserve() fills offsets; the caller fills frames and lengths. */
export interface TxBatch {
  readonly buffer: Buffer;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  /** Slots reserved by the last reserve(). */
  count: number;
  /** Largest frame a slot holds. */
  readonly frameRoom: number;
}

export interface FramePortStats {
  /** Frames handed to the caller. */
  rxFrames: number;
  /** Frames the kernel saw for this socket, and the ones it dropped because the ring was full. */
  kernelPackets: number;
  kernelDrops: number;
  kernelFreezes: number;
  txFrames: number;
  /** Frames forward() or sendFrame() could not queue (no free slot, bad index or length). */
  txDropped: number;
}

export interface FramePort {
  readonly kind: 'af_packet' | 'memory';
  readonly ifname: string;
  readonly ifindex: number;
  readonly mac: Buffer;
  readonly mtu: number;
  readonly rx: RxBatch;
  readonly tx: TxBatch;
  /** rx indices for forward(); as long as tx.offsets. */
  readonly forwardIndex: Int32Array;
  /** Re-reads MAC, MTU and flags (they can change while the port is open). */
  refresh(): InterfaceInfo;
  /** Non-blocking: releases the previous batch, gathers the next into rx; returns rx.count. */
  poll(): number;
  /** Gives the current batch back (poll() does it too). */
  release(): void;
  /** Blocks the thread up to timeoutMs until frames are ready (for a worker's busy loop). */
  wait(timeoutMs: number): boolean;
  /** Event-loop driven receive: onBatch(rx) for each ready batch; the batch is released after. */
  start(onBatch: (rx: RxBatch) => void): void;
  stop(): void;
  /** Whether a started port keeps the event loop alive (default: it does). */
  ref(): void;
  unref(): void;
  /** Reserves up to max free transmit slots; returns tx.count. */
  reserve(max?: number): number;
  /** Sends the first count reserved slots (lengths from tx.lengths); one syscall. */
  send(count: number): number;
  /** Copies frames forwardIndex[0..count) of from's current rx batch to transmit slots and sends them. */
  forward(from: FramePort, count: number): number;
  /** Slow path: one frame, copied. False when no slot is free. */
  sendFrame(frame: Uint8Array): boolean;
  stats(): FramePortStats;
  close(): void;
}

export type FanoutMode = 'hash' | 'lb' | 'cpu' | 'rollover' | 'random' | 'qm';

export interface FanoutOptions {
  /** Group id, 0..65535, per network namespace: sockets with the same id share the frames. */
  group: number;
  /** Default 'hash' (flow hash: every frame of a flow goes to the same socket). */
  mode?: FanoutMode;
  /** Reassemble IP fragments before hashing, so fragments follow their flow. */
  defrag?: boolean;
  /** Spill to another socket when this one's ring is full. */
  rollover?: boolean;
}

export interface FramePortOptions {
  ifname: string;
  /** Network namespace to open the socket in: a name under /run/netns, or a path. */
  netns?: string;
  /** Open a receive ring (default true). A tx-only port receives nothing. */
  rx?: boolean;
  /** Open a transmit ring (default true). */
  tx?: boolean;
  promiscuous?: boolean;
  /** Do not receive frames leaving the interface, ours or the kernel's (default true). */
  ignoreOutgoing?: boolean;
  /** Transmit straight to the driver, skipping the qdisc (default true). */
  qdiscBypass?: boolean;
  fanout?: FanoutOptions;
  /** Receive ring: block size (multiple of the page size; default 256 KiB) and count (default 32). */
  rxBlockSize?: number;
  rxBlockCount?: number;
  /** A partly filled block is handed over after this long (ms, default 1): the latency bound. */
  rxBlockTimeoutMs?: number;
  /** Most blocks one poll() gathers (default 8). */
  rxMaxBlocks?: number;
  /** Transmit ring: slot size (default 2048) and count (default 1024). */
  txFrameSize?: number;
  txFrameCount?: number;
  /** Extra bytes reserved before each received frame, to prepend headers in place (default 0). */
  headroom?: number;
}

/** TP_STATUS_* receive bits worth knowing, and our own TRUNCATED. */
export const RX_STATUS = {
  /** The checksum is partial (the sender's offload will complete it): do not trust it, fix it. */
  CSUM_NOT_READY: 1 << 3,
  VLAN_VALID: 1 << 4,
  CSUM_VALID: 1 << 7,
  /** The ring cut the frame (larger than a block can hold): never forward it. */
  TRUNCATED: 1 << 28,
} as const;

const FANOUT_MODES: Record<FanoutMode, number> = { hash: 0, lb: 1, cpu: 2, rollover: 3, random: 4, qm: 5 };
const FANOUT_FLAG_ROLLOVER = 0x1000;
const FANOUT_FLAG_DEFRAG = 0x8000;

/** The socket option value for PACKET_FANOUT: id in the low 16 bits, mode and flags above. */
export function fanoutArg(f: FanoutOptions): number {
  if (!Number.isInteger(f.group) || f.group < 0 || f.group > 0xffff) throw new RangeError(`fanout group must be 0..65535, not ${f.group}`);
  const mode = FANOUT_MODES[f.mode ?? 'hash'];
  if (mode === undefined) throw new RangeError(`unknown fanout mode ${String(f.mode)}`);
  const flags = (f.defrag ? FANOUT_FLAG_DEFRAG : 0) | (f.rollover ? FANOUT_FLAG_ROLLOVER : 0);
  return (f.group | ((mode | flags) << 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// The native addon

interface NativeSocket {
  readonly fd: number;
  readonly ifindex: number;
  readonly rxBuffer?: ArrayBuffer;
  readonly rxOffsets?: Int32Array;
  readonly rxLengths?: Int32Array;
  readonly rxStatus?: Int32Array;
  readonly txBuffer?: ArrayBuffer;
  readonly txOffsets?: Int32Array;
  readonly txLengths?: Int32Array;
  readonly forwardIndex?: Int32Array;
  readonly txFrameRoom: number;
  info(): InterfaceInfo;
  rxNext(): number;
  rxRelease(): void;
  wait(timeoutMs: number): boolean;
  startPoll(cb: (status: number) => void): void;
  stopPoll(): void;
  setRef(ref: boolean): void;
  txReserve(max: number): number;
  txSend(n: number): number;
  txForward(src: NativeSocket, n: number): number;
  txFlush(): void;
  stats(): FramePortStats;
  close(): void;
}

interface NativeAddon {
  FrameSocket: new (opts: Record<string, unknown>) => NativeSocket;
  interfaceInfo(ifname: string, netns?: string): InterfaceInfo;
  openTun(name: string): { fd: number; name: string };
  waitAny(fds: number[], timeoutMs: number): number;
  TX_DATA_OFFSET: number;
}

/** The addon is missing (not built, or not Linux). */
export class FrameIoUnavailableError extends Error {
  readonly code = 'ERR_TSVS_FRAMEIO_UNAVAILABLE';
}

const ADDON_RELATIVE = join('src', 'planes', 'packet', 'native', 'build', 'Release', 'tsvs_frameio.node');
let addon: NativeAddon | undefined;
let addonError: string | undefined;

// The addon sits under the package root whether this file runs from src/ (tsx) or dist/.
function findAddon(): string | undefined {
  const override = process.env.TSVS_FRAMEIO_ADDON;
  if (override) return override;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tsvs') return join(dir, ADDON_RELATIVE);
      } catch {
        // not our package.json: keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

function loadAddon(): NativeAddon {
  if (addon) return addon;
  if (addonError === undefined) {
    if (process.platform !== 'linux') addonError = `AF_PACKET frame I/O is Linux only (this is ${process.platform})`;
    else {
      const path = findAddon();
      if (!path || !existsSync(path)) {
        addonError = `the frame I/O addon is not built (${path ?? ADDON_RELATIVE}); build it with: node src/planes/packet/native/build.mjs`;
      } else {
        try {
          addon = createRequire(import.meta.url)(path) as NativeAddon;
          return addon;
        } catch (e) {
          addonError = `the frame I/O addon failed to load: ${(e as Error).message}`;
        }
      }
    }
  }
  throw new FrameIoUnavailableError(addonError);
}

/** Whether openFramePort() can work here, and if not, why (for skips and startup checks). */
export function frameIoAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    loadAddon();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** Interface facts without opening a port (root needed only to enter another namespace). */
export function interfaceInfo(ifname: string, netns?: string): InterfaceInfo {
  return loadAddon().interfaceInfo(ifname, netns);
}

/**
 * Creates a TUN device (whole IP packets, no packet-information header) in this process's
 * network namespace and returns its file descriptor: write(fd, packet) injects an IPv4 or IPv6
 * packet into the stack as if it arrived on that device. The device disappears with the fd.
 */
export function openTun(name: string): { fd: number; name: string } {
  return loadAddon().openTun(name);
}

/**
 * Blocks the thread up to timeoutMs until one of several AF_PACKET ports has frames ready (a
 * worker owning one ring per interface); returns how many are ready. Memory ports: never blocks.
 */
export function waitAny(ports: FramePort[], timeoutMs: number): number {
  const fds: number[] = [];
  for (const p of ports) if (p instanceof NativeFramePort) fds.push(p.fd);
  if (fds.length === 0) return ports.some((p) => p.wait(0)) ? 1 : 0;
  return loadAddon().waitAny(fds, timeoutMs);
}

const EMPTY_I32 = new Int32Array(0);
const EMPTY_BUF = Buffer.alloc(0);

class NativeFramePort implements FramePort {
  readonly kind = 'af_packet' as const;
  readonly ifindex: number;
  readonly rx: RxBatch;
  readonly tx: TxBatch;
  readonly forwardIndex: Int32Array;
  private facts: InterfaceInfo;
  private onBatch: ((rx: RxBatch) => void) | undefined;
  private closed = false;

  constructor(
    readonly ifname: string,
    private readonly sock: NativeSocket,
  ) {
    this.ifindex = sock.ifindex;
    this.facts = sock.info();
    this.rx = {
      buffer: sock.rxBuffer ? Buffer.from(sock.rxBuffer) : EMPTY_BUF,
      offsets: sock.rxOffsets ?? EMPTY_I32,
      lengths: sock.rxLengths ?? EMPTY_I32,
      status: sock.rxStatus ?? EMPTY_I32,
      count: 0,
    };
    this.tx = {
      buffer: sock.txBuffer ? Buffer.from(sock.txBuffer) : EMPTY_BUF,
      offsets: sock.txOffsets ?? EMPTY_I32,
      lengths: sock.txLengths ?? EMPTY_I32,
      count: 0,
      frameRoom: sock.txFrameRoom,
    };
    this.forwardIndex = sock.forwardIndex ?? EMPTY_I32;
  }

  get mac(): Buffer {
    return this.facts.mac;
  }
  get mtu(): number {
    return this.facts.mtu;
  }
  /** The socket's file descriptor (for diagnostics; do not read or close it). */
  get fd(): number {
    return this.sock.fd;
  }

  refresh(): InterfaceInfo {
    this.facts = this.sock.info();
    return this.facts;
  }

  poll(): number {
    return (this.rx.count = this.sock.rxNext());
  }

  release(): void {
    this.sock.rxRelease();
    this.rx.count = 0;
  }

  wait(timeoutMs: number): boolean {
    return this.sock.wait(timeoutMs);
  }

  start(onBatch: (rx: RxBatch) => void): void {
    this.onBatch = onBatch;
    this.sock.startPoll(this.drain);
  }

  // Bounded per wakeup so a flood cannot starve the rest of the event loop; libuv's poll is
  // level-triggered, so whatever is left wakes us again on the next loop turn.
  private readonly drain = (status: number): void => {
    if (status < 0 || !this.onBatch) return;
    try {
      for (let round = 0; round < 16 && !this.closed; round++) {
        const cb = this.onBatch;
        if (!cb || this.poll() === 0) break;
        cb(this.rx);
      }
    } finally {
      if (!this.closed) this.release();
    }
  };

  stop(): void {
    this.onBatch = undefined;
    if (!this.closed) this.sock.stopPoll();
  }

  ref(): void {
    this.sock.setRef(true);
  }
  unref(): void {
    this.sock.setRef(false);
  }

  reserve(max?: number): number {
    return (this.tx.count = this.sock.txReserve(max ?? this.tx.offsets.length));
  }

  send(count: number): number {
    this.tx.count = 0;
    return this.sock.txSend(count);
  }

  forward(from: FramePort, count: number): number {
    if (from instanceof NativeFramePort) return this.sock.txForward(from.sock, count);
    return copyForward(this, from, count);
  }

  sendFrame(frame: Uint8Array): boolean {
    if (frame.length > this.tx.frameRoom || this.reserve(1) < 1) return false;
    this.tx.buffer.set(frame, this.tx.offsets[0]!);
    this.tx.lengths[0] = frame.length;
    return this.send(1) === 1;
  }

  /** Pushes frames a previous send() left queued (after ENOBUFS). */
  flush(): void {
    this.sock.txFlush();
  }

  stats(): FramePortStats {
    return this.sock.stats();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onBatch = undefined;
    this.rx.count = 0;
    this.tx.count = 0;
    this.sock.close();
  }
}

/**
 * Receives in the calling thread until shouldStop() returns true: the busy-poll loop for a worker
 * thread that owns a port (the event loop is blocked meanwhile). Sleeps in wait() only when
 * nothing is ready, so shouldStop() is checked at least every waitMs. Returns the frames handled.
 */
export function receiveLoop(port: FramePort, onBatch: (rx: RxBatch) => void, shouldStop: () => boolean, waitMs = 100): number {
  let frames = 0;
  try {
    while (!shouldStop()) {
      const n = port.poll();
      if (n > 0) {
        frames += n;
        onBatch(port.rx);
      } else port.wait(waitMs);
    }
  } finally {
    port.release();
  }
  return frames;
}

// forward() between ports of different kinds: reserve, copy, send.
function copyForward(to: FramePort, from: FramePort, count: number): number {
  const n = Math.min(count, to.reserve(count));
  let k = 0;
  for (let i = 0; i < n; i++) {
    const idx = to.forwardIndex[i]!;
    if (idx < 0 || idx >= from.rx.count) continue;
    const len = from.rx.lengths[idx]!;
    if (len > to.tx.frameRoom) continue;
    const off = from.rx.offsets[idx]!;
    from.rx.buffer.copy(to.tx.buffer, to.tx.offsets[k]!, off, off + len);
    to.tx.lengths[k++] = len;
  }
  return to.send(k);
}

/**
 * Opens an AF_PACKET port on one interface. Throws Node-style system errors: code 'EPERM' without
 * CAP_NET_RAW (root), 'ENODEV' for a missing interface, 'ENOENT' for a missing namespace;
 * FrameIoUnavailableError when the addon is not built.
 */
export function openFramePort(opts: FramePortOptions): FramePort {
  const native = loadAddon();
  const { fanout, ...rest } = opts;
  const sock = new native.FrameSocket({ ...rest, fanout: fanout ? fanoutArg(fanout) : undefined });
  try {
    return new NativeFramePort(opts.ifname, sock);
  } catch (e) {
    sock.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// In-memory ports: a wire between two ports, for tests of the plane without root.

export interface MemoryPortOptions {
  /** Frames each direction holds (default 1024). */
  slots?: number;
  /** Largest frame (default 2048). */
  slotSize?: number;
  ifnames?: [string, string];
  macs?: [Uint8Array, Uint8Array];
  mtu?: number;
}

// One direction of the wire: a ring of fixed-size slots; the sender writes straight into
// free slots (zero copy), the receiver's batch is the run of published slots.
class Wire {
  readonly buffer: Buffer;
  readonly lengths: Int32Array;
  head = 0; // first slot the receiver has not released
  held = 0; // slots in the receiver's current batch
  tail = 0; // next slot the sender writes
  used = 0; // published slots (held ones included)
  reserved = 0;
  constructor(
    readonly slots: number,
    readonly slotSize: number,
  ) {
    this.buffer = Buffer.alloc(slots * slotSize);
    this.lengths = new Int32Array(slots);
  }
}

class MemoryFramePort implements FramePort {
  readonly kind = 'memory' as const;
  readonly rx: RxBatch;
  readonly tx: TxBatch;
  readonly forwardIndex: Int32Array;
  peer!: MemoryFramePort;
  private onBatch: ((rx: RxBatch) => void) | undefined;
  private scheduled = false;
  private keepAlive: NodeJS.Timeout | undefined;
  private refed = true;
  private closed = false;
  private readonly counters: FramePortStats = { rxFrames: 0, kernelPackets: 0, kernelDrops: 0, kernelFreezes: 0, txFrames: 0, txDropped: 0 };

  constructor(
    readonly ifname: string,
    readonly ifindex: number,
    readonly mac: Buffer,
    readonly mtu: number,
    private readonly inbound: Wire,
    private readonly outbound: Wire,
  ) {
    this.rx = {
      buffer: inbound.buffer,
      offsets: new Int32Array(inbound.slots),
      lengths: new Int32Array(inbound.slots),
      status: new Int32Array(inbound.slots),
      count: 0,
    };
    this.tx = {
      buffer: outbound.buffer,
      offsets: new Int32Array(outbound.slots),
      lengths: new Int32Array(outbound.slots),
      count: 0,
      frameRoom: outbound.slotSize,
    };
    this.forwardIndex = new Int32Array(outbound.slots);
  }

  refresh(): InterfaceInfo {
    return { name: this.ifname, ifindex: this.ifindex, hwType: 1, mac: this.mac, mtu: this.mtu, flags: 0x41 };
  }

  poll(): number {
    this.release();
    const w = this.inbound;
    const n = w.used;
    for (let i = 0; i < n; i++) {
      const slot = (w.head + i) % w.slots;
      this.rx.offsets[i] = slot * w.slotSize;
      this.rx.lengths[i] = w.lengths[slot]!;
    }
    w.held = n;
    this.counters.rxFrames += n;
    return (this.rx.count = n);
  }

  release(): void {
    const w = this.inbound;
    w.head = (w.head + w.held) % w.slots;
    w.used -= w.held;
    w.held = 0;
    this.rx.count = 0;
  }

  // Never blocks (nothing else could fill the wire meanwhile in this thread).
  wait(_timeoutMs: number): boolean {
    return this.inbound.used > this.inbound.held;
  }

  start(onBatch: (rx: RxBatch) => void): void {
    this.onBatch = onBatch;
    if (this.refed && !this.keepAlive) this.keepAlive = setInterval(() => {}, 1 << 30);
    this.kick();
  }

  kick(): void {
    if (!this.onBatch || this.scheduled || this.inbound.used === this.inbound.held) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.onBatch) return;
      try {
        if (this.poll() > 0) this.onBatch(this.rx);
      } finally {
        this.release();
      }
      this.kick();
    });
  }

  stop(): void {
    this.onBatch = undefined;
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  ref(): void {
    this.refed = true;
    this.keepAlive?.ref();
  }
  unref(): void {
    this.refed = false;
    this.keepAlive?.unref();
  }

  reserve(max?: number): number {
    const w = this.outbound;
    const n = Math.min(max ?? w.slots, w.slots - w.used);
    for (let i = 0; i < n; i++) this.tx.offsets[i] = ((w.tail + i) % w.slots) * w.slotSize;
    w.reserved = n;
    return (this.tx.count = n);
  }

  send(count: number): number {
    const w = this.outbound;
    if (count > w.reserved) throw new RangeError('send(n): n is larger than the last reserve() count');
    for (let i = 0; i < count; i++) {
      const len = this.tx.lengths[i]!;
      if (len < 14 || len > w.slotSize) throw new RangeError(`send: tx.lengths[${i}] = ${len} is outside 14..${w.slotSize}`);
    }
    for (let i = 0; i < count; i++) {
      w.lengths[w.tail] = this.tx.lengths[i]!;
      w.tail = (w.tail + 1) % w.slots;
    }
    w.used += count;
    w.reserved = 0;
    this.tx.count = 0;
    this.counters.txFrames += count;
    if (!this.peer.closed) this.peer.kick();
    return count;
  }

  forward(from: FramePort, count: number): number {
    return copyForward(this, from, count);
  }

  sendFrame(frame: Uint8Array): boolean {
    if (frame.length > this.tx.frameRoom || this.reserve(1) < 1) {
      this.counters.txDropped++;
      return false;
    }
    this.tx.buffer.set(frame, this.tx.offsets[0]!);
    this.tx.lengths[0] = frame.length;
    return this.send(1) === 1;
  }

  stats(): FramePortStats {
    return { ...this.counters };
  }

  close(): void {
    this.stop();
    this.closed = true;
  }
}

/** Two in-memory ports connected back to back: what one sends, the other receives. */
export function createMemoryPortPair(opts: MemoryPortOptions = {}): [FramePort, FramePort] {
  const slots = opts.slots ?? 1024;
  const size = opts.slotSize ?? 2048;
  const ab = new Wire(slots, size);
  const ba = new Wire(slots, size);
  const names = opts.ifnames ?? ['mem0', 'mem1'];
  const macs = opts.macs ?? [Buffer.from('020000000001', 'hex'), Buffer.from('020000000002', 'hex')];
  const a = new MemoryFramePort(names[0], 1, Buffer.from(macs[0]), opts.mtu ?? 1500, ba, ab);
  const b = new MemoryFramePort(names[1], 2, Buffer.from(macs[1]), opts.mtu ?? 1500, ab, ba);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// ---------------------------------------------------------------------------------------------
// Neighbour resolution requests: just frames, sent with sendFrame() or written into a tx slot.

function ipBytes(a: IpAddr | Uint8Array, len: 4 | 16): Uint8Array {
  const b = a instanceof Uint8Array ? a : a.toBytes();
  if (b.length !== len) throw new RangeError(`expected a ${len === 4 ? 'IPv4' : 'IPv6'} address`);
  return b;
}

/** Writes a broadcast ARP request "who has target? tell sender" at buf[off]; returns its length (42). */
export function writeArpRequest(buf: Uint8Array, off: number, srcMac: Uint8Array, srcIp: IpAddr | Uint8Array, targetIp: IpAddr | Uint8Array): number {
  const sip = ipBytes(srcIp, 4);
  const tip = ipBytes(targetIp, 4);
  buf.fill(0xff, off, off + 6);
  buf.set(srcMac.subarray(0, 6), off + 6);
  buf[off + 12] = 0x08;
  buf[off + 13] = 0x06;
  // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4, oper 1 (request)
  buf.set([0, 1, 8, 0, 6, 4, 0, 1], off + 14);
  buf.set(srcMac.subarray(0, 6), off + 22);
  buf.set(sip, off + 28);
  buf.fill(0, off + 32, off + 38);
  buf.set(tip, off + 38);
  return 42;
}

/**
 * Writes an ICMPv6 Neighbor Solicitation for target (RFC 4861), sent to its solicited-node
 * multicast address, with the source link-layer address option; returns its length (86).
 */
export function writeNeighborSolicitation(buf: Uint8Array, off: number, srcMac: Uint8Array, srcIp: IpAddr | Uint8Array, targetIp: IpAddr | Uint8Array): number {
  const sip = ipBytes(srcIp, 16);
  const tip = ipBytes(targetIp, 16);
  // ff02::1:ffXX:XXXX and its multicast MAC 33:33:ff:XX:XX:XX
  const dip = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, tip[13]!, tip[14]!, tip[15]!]);
  buf.set([0x33, 0x33, 0xff, tip[13]!, tip[14]!, tip[15]!], off);
  buf.set(srcMac.subarray(0, 6), off + 6);
  buf[off + 12] = 0x86;
  buf[off + 13] = 0xdd;
  const ip = off + 14;
  const payloadLen = 32; // ICMPv6 header 4 + reserved 4 + target 16 + option 8
  // version 6, no traffic class or flow label; next header 58, hop limit 255 (RFC 4861 requires it)
  buf.set([0x60, 0, 0, 0, 0, payloadLen, 58, 255], ip);
  buf.set(sip, ip + 8);
  buf.set(dip, ip + 24);
  const icmp = ip + 40;
  buf.set([135, 0, 0, 0, 0, 0, 0, 0], icmp);
  buf.set(tip, icmp + 8);
  buf[icmp + 24] = 1; // source link-layer address option, length 1 (8 bytes)
  buf[icmp + 25] = 1;
  buf.set(srcMac.subarray(0, 6), icmp + 26);
  const sum = icmpv6Checksum(buf, ip, icmp, payloadLen);
  buf[icmp + 2] = sum >>> 8;
  buf[icmp + 3] = sum & 0xff;
  return 14 + 40 + payloadLen;
}

// One's complement sum over the IPv6 pseudo-header (addresses, length, next header 58) and the
// ICMPv6 message. Slow path only: the codec module owns checksums for the data path.
function icmpv6Checksum(buf: Uint8Array, ip: number, icmp: number, len: number): number {
  let s = 58 + len;
  for (let i = ip + 8; i < ip + 40; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  for (let i = 0; i < len; i += 2) s += (buf[icmp + i]! << 8) | (i + 1 < len ? buf[icmp + i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
