// The control protocol between vsd and its clients: one JSON object per line over a unix
// stream socket (the HTTP API carries the same requests). A request names an operation and its
// arguments; a reply carries the result, or the error with the kernel's errno so the client
// prints what ipvsadm would.
//
//   -> {"id":1,"op":"addService","args":[{...ServiceSpec}]}
//   <- {"id":1,"ok":true,"result":null}
//   <- {"id":2,"ok":false,"error":{"errno":"EEXIST","message":"Service already exists"}}

import { join } from 'node:path';
import type { Errno } from '../core/errors.js';

export interface Request {
  id: number;
  op: string;
  args?: unknown[];
}

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { errno: Errno | 'EBADREQ'; message: string } };

/** Largest request line accepted (a restore of a big table fits easily). */
export const MAX_REQUEST_BYTES = 64 * 1024 * 1024;

/** Operations of IpvsApi plus the daemon's own (read-only ones are marked). */
export const OPERATIONS = {
  getInfo: { write: false },
  getServices: { write: false },
  getService: { write: false },
  addService: { write: true },
  editService: { write: true },
  delService: { write: true },
  flush: { write: true },
  addDest: { write: true },
  editDest: { write: true },
  delDest: { write: true },
  zero: { write: true },
  setTimeouts: { write: true },
  getTimeouts: { write: false },
  startDaemon: { write: true },
  stopDaemon: { write: true },
  getDaemons: { write: false },
  getConnections: { write: false },
  applyTable: { write: true },
  getSysctls: { write: false },
  setSysctl: { write: true },
  status: { write: false },
  reload: { write: true },
} as const;

export type Operation = keyof typeof OPERATIONS;

export function isOperation(op: string): op is Operation {
  return Object.hasOwn(OPERATIONS, op);
}

/**
 * Where vsd's control socket lives: $TSVS_SOCKET, else the runtime directory
 * ($XDG_RUNTIME_DIR/tsvs, /run/tsvs for root, /tmp/tsvs-<uid> otherwise) + vsd.sock.
 */
export function defaultRuntimeDir(): string {
  if (process.env.TSVS_RUNTIME_DIR) return process.env.TSVS_RUNTIME_DIR;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/tsvs';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'tsvs');
  return `/tmp/tsvs-${uid}`;
}

export function defaultSocketPath(): string {
  return process.env.TSVS_SOCKET || join(defaultRuntimeDir(), 'vsd.sock');
}
