// Shape checks for control API arguments, so that a malformed call is refused with a message
// that names the problem before it reaches the core (which then checks the values as the
// kernel does). Nothing here decides IPVS semantics.

import { z } from 'zod';
import { IpvsError } from '../core/errors.js';

const u32 = z.number().int().min(0).max(4294967295);
const port = z.number().int().min(0).max(65535);
const af = z.union([z.literal(4), z.literal(6)]);

export const serviceKeySchema = z.object({ af, protocol: z.number().int(), addr: z.string().max(64), port, fwmark: u32 });

export const serviceSpecSchema = serviceKeySchema.extend({
  schedName: z.string().min(1).max(15),
  flags: u32,
  timeout: u32,
  netmask: u32,
  peName: z.string().max(15).optional(),
  proxyProtocol: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
});

export const destSpecSchema = z.object({
  af,
  addr: z.string().max(64),
  port,
  connFlags: u32,
  weight: z.number().int(),
  uThreshold: u32,
  lThreshold: u32,
  tunType: z.number().int().min(0).max(255).optional(),
  tunPort: port.optional(),
  tunFlags: z.number().int().min(0).max(0xffff).optional(),
});

export const destKeySchema = z.object({ af, addr: z.string().max(64), port });

export const timeoutsSchema = z.object({ tcp: z.number().int(), tcpfin: z.number().int(), udp: z.number().int() });

export const daemonSpecSchema = z.object({
  state: z.enum(['master', 'backup']),
  mcastIfn: z.string().min(1).max(15),
  syncid: z.number().int().min(0).max(255),
  syncMaxlen: z.number().int().min(1).max(65507).optional(),
  mcastGroup: z.string().max(64).optional(),
  mcastPort: port.optional(),
  mcastTtl: z.number().int().min(1).max(255).optional(),
});

export const desiredTableSchema = z.object({
  services: z.array(serviceSpecSchema.extend({ dests: z.array(destSpecSchema) })),
  timeouts: timeoutsSchema.optional(),
});

/** Argument schemas per operation (positional). */
export const ARGS: Record<string, z.ZodType[]> = {
  getInfo: [],
  getServices: [],
  getService: [serviceKeySchema],
  addService: [serviceSpecSchema],
  editService: [serviceSpecSchema],
  delService: [serviceKeySchema],
  flush: [],
  addDest: [serviceKeySchema, destSpecSchema],
  editDest: [serviceKeySchema, destSpecSchema],
  delDest: [serviceKeySchema, destKeySchema],
  zero: [serviceKeySchema.optional()],
  setTimeouts: [timeoutsSchema],
  getTimeouts: [],
  startDaemon: [daemonSpecSchema],
  stopDaemon: [z.enum(['master', 'backup'])],
  getDaemons: [],
  getConnections: [],
  applyTable: [desiredTableSchema],
  getSysctls: [],
  setSysctl: [z.string().max(64), z.union([z.number(), z.array(z.number())])],
  status: [],
  reload: [],
};

/** Check an operation's arguments; throws IpvsError(EINVAL) naming the first problem. */
export function checkArgs(op: string, args: unknown): unknown[] {
  const schemas = ARGS[op];
  if (!schemas) throw new IpvsError('EINVAL', `unknown operation ${JSON.stringify(op)}`);
  const list = args === undefined ? [] : args;
  if (!Array.isArray(list)) throw new IpvsError('EINVAL', `${op}: "args" must be an array`);
  if (list.length > schemas.length) throw new IpvsError('EINVAL', `${op}: takes at most ${schemas.length} argument(s), got ${list.length}`);
  return schemas.map((s, i) => {
    const r = s.safeParse(list[i]);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const where = issue.path.length ? `.${issue.path.join('.')}` : '';
      throw new IpvsError('EINVAL', `${op}: argument ${i + 1}${where}: ${issue.message}`);
    }
    return r.data;
  });
}
