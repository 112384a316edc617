// A packet plane on in-memory ports, for tests that need no root: one link ("mem0") between
// the plane and the test, which plays every other host on it (client, real servers) by their
// MACs and addresses, and reads what the plane sends.

import { Director } from '../../../src/core/director.js';
import '../../../src/core/schedulers/index.js';
import { createMemoryPortPair, type FramePort } from '../../../src/planes/packet/frame-io.js';
import { HostTools } from '../../../src/planes/packet/host-tools.js';
import { PacketPlane, type PacketPlaneOptions } from '../../../src/planes/packet/plane.js';
import { HostRoutes } from '../../../src/planes/packet/routes.js';

export const DIRECTOR_MAC = '02:00:00:00:00:01';
export const CLIENT = { ip: '198.18.0.10', ip6: '2001:2::10', mac: '02:00:00:00:00:10' };
export const RS = [1, 2, 3].map((i) => ({ ip: `198.18.0.${20 + i}`, ip6: `2001:2::${20 + i}`, mac: `02:00:00:00:00:2${i}` }));
export const GATEWAY = { ip: '198.18.0.254', mac: '02:00:00:00:00:fe' };
export const VIP = '198.18.0.100';
export const VIP6 = '2001:2::100';

/** The probe pair's MAC (both ends: virtual-paths.ts). */
export const PAIR_MAC = '02:74:73:76:70:01';

export interface MemoryPlane {
  director: Director;
  plane: PacketPlane;
  wire: FramePort;
  /** With `probes: true`: the kernel's end of the probe pair (health checks via: virtual). */
  probe: FramePort | null;
  /** Sends frames on the wire and on the probe pair; returns what the plane sent on each. */
  exchangeBoth(fromWire: Buffer[], fromProbe: Buffer[]): Promise<{ wire: Buffer[]; probe: Buffer[] }>;
  now: { t: number };
  /** Lets the plane follow table changes, then discards what it sent meanwhile (announcements). */
  ready(): Promise<Buffer[]>;
  /** Sends frames from the test side and lets the plane run; returns what it sent back. */
  exchange(...frames: Buffer[]): Promise<Buffer[]>;
  close(): Promise<void>;
}

export async function memoryPlane(opts: Partial<PacketPlaneOptions> & { mtu?: number; seed?: boolean; probes?: boolean } = {}): Promise<MemoryPlane> {
  const now = { t: 1_000_000 };
  const director = new Director({ now: () => now.t });
  const [planePort, wire] = createMemoryPortPair({ ifnames: ['mem0', 'wire'], macs: [Buffer.from(DIRECTOR_MAC.replaceAll(':', ''), 'hex'), Buffer.from('020000000002', 'hex')], mtu: opts.mtu ?? 1500, slotSize: 4096 });
  const routes = new HostRoutes(new HostTools());
  routes.load(
    [
      {
        ifindex: 2,
        ifname: 'mem0',
        mtu: opts.mtu ?? 1500,
        address: DIRECTOR_MAC,
        flags: ['UP'],
        addr_info: [
          { family: 'inet', local: '198.18.0.1', prefixlen: 24 },
          { family: 'inet6', local: '2001:2::1', prefixlen: 64 },
        ],
      },
    ],
    [
      { dst: '198.18.0.0/24', dev: 'mem0', prefsrc: '198.18.0.1' },
      { dst: 'default', gateway: GATEWAY.ip, dev: 'mem0' },
    ],
    [{ dst: '2001:2::/64', dev: 'mem0' }],
  );
  const pairMac = Buffer.from(PAIR_MAC.replaceAll(':', ''), 'hex');
  const pair = opts.probes ? createMemoryPortPair({ ifnames: ['tsvsvp1', 'tsvsvp0'], macs: [pairMac, pairMac], mtu: opts.mtu ?? 1500, slotSize: 4096 }) : null;
  const { probes, ...rest } = opts;
  const plane = new PacketPlane(director, {
    interfaces: ['mem0'],
    ports: pair ? [planePort, pair[0]] : [planePort],
    routes,
    ...(probes ? { virtualPaths: {} } : {}),
    ...rest,
  });
  await plane.start();
  if (opts.seed !== false) {
    const all = [CLIENT, ...RS];
    plane.neighbours!.seed([
      ...all.map((h) => ({ dst: h.ip, dev: 'mem0', lladdr: h.mac, state: ['PERMANENT'] })),
      ...all.map((h) => ({ dst: h.ip6, dev: 'mem0', lladdr: h.mac, state: ['PERMANENT'] })),
      { dst: GATEWAY.ip, dev: 'mem0', lladdr: GATEWAY.mac, state: ['PERMANENT'] },
    ]);
  }
  const turn = () => new Promise<void>((r) => setImmediate(r));
  const drain = (port: FramePort): Buffer[] => {
    const out: Buffer[] = [];
    const n = port.poll();
    for (let i = 0; i < n; i++) out.push(Buffer.from(port.rx.buffer.subarray(port.rx.offsets[i]!, port.rx.offsets[i]! + port.rx.lengths[i]!)));
    port.release();
    return out;
  };
  const probe = pair ? pair[1] : null;
  const mp: MemoryPlane = {
    director,
    plane,
    wire,
    probe,
    now,
    async exchangeBoth(fromWire: Buffer[], fromProbe: Buffer[]) {
      for (const f of fromWire) if (!wire.sendFrame(f)) throw new Error('wire full');
      for (const f of fromProbe) if (!probe?.sendFrame(f)) throw new Error('no probe pair, or full');
      for (let i = 0; i < 5; i++) await turn();
      return { wire: drain(wire), probe: probe ? drain(probe) : [] };
    },
    async ready(): Promise<Buffer[]> {
      await plane.settle();
      return mp.exchange();
    },
    async exchange(...frames: Buffer[]): Promise<Buffer[]> {
      for (const f of frames) if (!wire.sendFrame(f)) throw new Error('wire full');
      for (let i = 0; i < 5; i++) await turn();
      const out: Buffer[] = [];
      const n = wire.poll();
      for (let i = 0; i < n; i++) out.push(Buffer.from(wire.rx.buffer.subarray(wire.rx.offsets[i]!, wire.rx.offsets[i]! + wire.rx.lengths[i]!)));
      wire.release();
      return out;
    },
    async close() {
      await plane.close();
    },
  };
  return mp;
}
