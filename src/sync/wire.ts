// The IPVS connection-sync wire formats (spec ipvs-kernel.md §10.3, §10.4): version 1 (the
// default: IPv4 and IPv6 records, fwmark, timeout, TLV options) and version 0 (the legacy
// IPv4-only format). Pure functions over Buffers. The decoder applies the receiver's checks
// exactly as ip_vs_process_message and ip_vs_proc_sync_conn do — which problems drop the rest
// of a message and which skip one record — and never throws on hostile input: it reports
// what it dropped and why.

import { IpAddr } from '../core/addr.js';
import { CONN_F_BACKUP_MASK, CONN_F_HASHED, CONN_F_SEQ_MASK, CONN_F_SYNC, CONN_F_TEMPLATE } from '../core/constants.js';
import { protocolStateCount, type SeqData, type SyncConnRecord } from '../core/sync.js';

export const SYNC_PROTO_VER = 1;
/** Version 0 message header: nr_conns, syncid, size. */
export const MESG_V0_HDR = 4;
/** Version 1 message header: reserved (0), syncid, size, nr_conns, version, spare. */
export const MESG_V1_HDR = 8;
/** Version 0 record, and with its 24 bytes of sequence options. */
export const CONN_V0_SIZE = 24;
export const CONN_V0_FULL_SIZE = 48;
/** Version 1 records: fixed part for IPv4 and IPv6. */
export const CONN_V4_SIZE = 36;
export const CONN_V6_SIZE = 72;
export const SEQ_OPTIONS_SIZE = 24;
export const OPT_SEQ_DATA = 1;
export const OPT_PE_DATA = 2;
export const OPT_PE_NAME = 3;
/** Set in an option type: the option is optional (unknown ones are skipped, not fatal). */
export const OPT_F_PARAM = 0x40;
export const PEDATA_MAXLEN = 255;
export const PENAME_MAXLEN = 16;
/** Record type bit 0: IPv6. */
export const STYPE_F_INET6 = 1;
/** ver_size: record version in the top 4 bits, length in the low 12. */
const SVER_SHIFT = 12;
const SVER_MASK = 0x0fff;
/** nr_conns is one byte. */
export const MAX_CONNS_PER_MESSAGE = 255;

// ---------------------------------------------------------------------------------------------
// Encoding

/** Bytes a record takes in a version 1 message (without alignment padding). */
export function recordLengthV1(r: SyncConnRecord): number {
  let len = r.af === 6 ? CONN_V6_SIZE : CONN_V4_SIZE;
  if (r.flags & CONN_F_SEQ_MASK) len += SEQ_OPTIONS_SIZE + 2;
  if (r.peData && r.peData.length > 0) {
    len += r.peData.length + 2;
    if (r.peName) len += Math.min(Buffer.byteLength(r.peName, 'latin1'), PENAME_MAXLEN) + 2;
  }
  return len;
}

/** Bytes a record takes in a version 0 message. */
export function recordLengthV0(r: SyncConnRecord): number {
  return r.flags & CONN_F_SEQ_MASK ? CONN_V0_FULL_SIZE : CONN_V0_SIZE;
}

function writeAddr(b: Buffer, off: number, a: IpAddr, af: 4 | 6): number {
  b.writeUInt32BE(a.w0 >>> 0, off);
  if (af === 4) return off + 4;
  b.writeUInt32BE(a.w1 >>> 0, off + 4);
  b.writeUInt32BE(a.w2 >>> 0, off + 8);
  b.writeUInt32BE(a.w3 >>> 0, off + 12);
  return off + 16;
}

function readAddr(b: Buffer, off: number, af: 4 | 6): IpAddr {
  if (af === 4) return new IpAddr(4, b.readUInt32BE(off));
  return new IpAddr(6, b.readUInt32BE(off), b.readUInt32BE(off + 4), b.readUInt32BE(off + 8), b.readUInt32BE(off + 12));
}

const NO_SEQ: SeqData = { initSeq: 0, delta: 0, previousDelta: 0 };

function writeSeq(b: Buffer, off: number, s: SeqData, le: boolean): number {
  for (const v of [s.initSeq, s.delta, s.previousDelta]) {
    if (le) b.writeUInt32LE(v >>> 0, off);
    else b.writeUInt32BE(v >>> 0, off);
    off += 4;
  }
  return off;
}

function readSeq(b: Buffer, off: number, le: boolean): SeqData {
  const r = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  return { initSeq: r(off), delta: r(off + 4), previousDelta: r(off + 8) };
}

/** Writes a version 1 record at off; returns the offset after it. The caller checked the room. */
export function writeRecordV1(b: Buffer, off: number, r: SyncConnRecord): number {
  const len = recordLengthV1(r);
  b[off] = r.af === 6 ? STYPE_F_INET6 : 0;
  b[off + 1] = r.protocol & 0xff;
  b.writeUInt16BE(len & SVER_MASK, off + 2); // record version 0
  b.writeUInt32BE((r.flags & ~CONN_F_HASHED) >>> 0, off + 4);
  b.writeUInt16BE(r.state & 0xffff, off + 8);
  b.writeUInt16BE(r.cport & 0xffff, off + 10);
  b.writeUInt16BE(r.vport & 0xffff, off + 12);
  b.writeUInt16BE(r.dport & 0xffff, off + 14);
  b.writeUInt32BE(r.fwmark >>> 0, off + 16);
  b.writeUInt32BE(r.timeout >>> 0, off + 20);
  let p = writeAddr(b, off + 24, r.caddr, r.af);
  p = writeAddr(b, p, r.vaddr, r.af);
  p = writeAddr(b, p, r.daddr, r.af);
  if (r.flags & CONN_F_SEQ_MASK) {
    b[p++] = OPT_SEQ_DATA;
    b[p++] = SEQ_OPTIONS_SIZE;
    p = writeSeq(b, p, r.inSeq ?? NO_SEQ, false);
    p = writeSeq(b, p, r.outSeq ?? NO_SEQ, false);
  }
  if (r.peData && r.peData.length > 0) {
    const data = r.peData.subarray(0, PEDATA_MAXLEN);
    b[p++] = OPT_PE_DATA;
    b[p++] = data.length;
    b.set(data, p);
    p += data.length;
    if (r.peName) {
      const name = Buffer.from(r.peName, 'latin1').subarray(0, PENAME_MAXLEN);
      b[p++] = OPT_PE_NAME;
      b[p++] = name.length;
      b.set(name, p);
      p += name.length;
    }
  }
  return p;
}

/**
 * Writes a version 0 record. Its sequence options are a raw copy of the kernel's struct in
 * host byte order (`hostLE`: little-endian hosts — x86, arm64 — are what a v0 peer runs on).
 */
export function writeRecordV0(b: Buffer, off: number, r: SyncConnRecord, hostLE = true): number {
  b[off] = 0;
  b[off + 1] = r.protocol & 0xff;
  b.writeUInt16BE(r.cport & 0xffff, off + 2);
  b.writeUInt16BE(r.vport & 0xffff, off + 4);
  b.writeUInt16BE(r.dport & 0xffff, off + 6);
  b.writeUInt32BE(r.caddr.w0 >>> 0, off + 8);
  b.writeUInt32BE(r.vaddr.w0 >>> 0, off + 12);
  b.writeUInt32BE(r.daddr.w0 >>> 0, off + 16);
  b.writeUInt16BE(r.flags & ~CONN_F_HASHED & 0xffff, off + 20);
  b.writeUInt16BE(r.state & 0xffff, off + 22);
  let p = off + CONN_V0_SIZE;
  if (r.flags & CONN_F_SEQ_MASK) {
    p = writeSeq(b, p, r.inSeq ?? NO_SEQ, hostLE);
    p = writeSeq(b, p, r.outSeq ?? NO_SEQ, hostLE);
  }
  return p;
}

/**
 * A message being filled, as the kernel's sync_buff: sized max(first record + header,
 * sync_maxlen), so a record longer than maxlen still travels (alone). Version 1 records start
 * on 4-byte boundaries; the padding before a record counts in the size, none trails.
 */
export class SyncMessageBuilder {
  private readonly buf: Buffer;
  private head: number;
  private count = 0;

  constructor(
    readonly version: 0 | 1,
    readonly syncid: number,
    maxlen: number,
    firstLen: number,
    /** When the first record went in (the 2 s flush rule), in the caller's clock. */
    readonly firstUse = 0,
    private readonly hostLE = true,
  ) {
    const hdr = version === 1 ? MESG_V1_HDR : MESG_V0_HDR;
    this.buf = Buffer.alloc(Math.max(firstLen + hdr, maxlen));
    this.head = hdr;
  }

  get nrConns(): number {
    return this.count;
  }

  get size(): number {
    return this.head;
  }

  /** Whether a record of `len` bytes (and its alignment padding) still fits. */
  fits(len: number): boolean {
    // nr_conns is a byte: the kernel lets it wrap (a receiver then loses records); we flush.
    if (this.count >= MAX_CONNS_PER_MESSAGE) return false;
    const pad = this.version === 1 ? (4 - this.head) & 3 : 0;
    return this.head + pad + len <= this.buf.length;
  }

  add(r: SyncConnRecord): void {
    if (this.version === 1) {
      const pad = (4 - this.head) & 3;
      this.buf.fill(0, this.head, this.head + pad);
      this.head = writeRecordV1(this.buf, this.head + pad, r);
    } else {
      this.head = writeRecordV0(this.buf, this.head, r, this.hostLE);
    }
    this.count++;
  }

  /** The finished message (a copy-free view), header written. */
  finish(): Buffer {
    const b = this.buf;
    if (this.version === 1) {
      b[0] = 0;
      b[1] = this.syncid & 0xff;
      b.writeUInt16BE(this.head, 2);
      b[4] = this.count;
      b[5] = SYNC_PROTO_VER;
      b.writeUInt16BE(0, 6);
    } else {
      b[0] = this.count;
      b[1] = this.syncid & 0xff;
      b.writeUInt16BE(this.head, 2);
    }
    return b.subarray(0, this.head);
  }
}

/** One message holding these records (tests, tools); no size limit beyond the format's. */
export function encodeMessage(version: 0 | 1, syncid: number, records: readonly SyncConnRecord[], hostLE = true): Buffer {
  const total = records.reduce((n, r) => n + (version === 1 ? recordLengthV1(r) + 3 : recordLengthV0(r)), 0);
  const m = new SyncMessageBuilder(version, syncid, 0, total, 0, hostLE);
  for (const r of records) m.add(r);
  return m.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Why a message, the rest of a message, or one record was not used. */
export type SyncWireErrorCode =
  // whole message
  | 'header-too-short'
  | 'bad-size'
  // rest of the message dropped (version 1)
  | 'too-small'
  | 'record-past-end'
  | 'record-version'
  | 'bad-type'
  | 'record-too-short'
  | 'option-truncated'
  | 'option-length'
  | 'seq-length'
  | 'seq-repeated'
  | 'pe-data-repeated'
  | 'pe-name-length'
  | 'pe-name-repeated'
  // rest of the message dropped (version 0)
  | 'v0-truncated'
  | 'v0-options-truncated'
  // one record skipped
  | 'unknown-mandatory-option'
  | 'unsupported-protocol'
  | 'bad-state'
  | 'pe-data-without-name'
  | 'unknown-pe';

export interface SyncWireError {
  code: SyncWireErrorCode;
  /** Record index in the message (-1 for the header). */
  record: number;
  /** True when this error dropped the rest of the message (or all of it). */
  fatal: boolean;
}

export interface ReceivedRecord extends SyncConnRecord {
  /** The flags field as it was on the wire. */
  wireFlags: number;
}

export interface DecodeResult {
  /** Version the message was read as; null when the header was refused. */
  version: 0 | 1 | null;
  syncid: number;
  /** nr_conns of the header. */
  nrConns: number;
  /** True when the syncid filter ignored the message (not an error). */
  ignored: boolean;
  /** Records to apply, in message order. */
  records: ReceivedRecord[];
  /** Records skipped one by one (each with an error below). */
  skipped: number;
  /** Records never looked at because the rest of the message was dropped. */
  lost: number;
  errors: SyncWireError[];
}

export interface DecodeOptions {
  /** The backup's syncid: messages with another id are ignored, unless this is 0. */
  syncid?: number;
  /** Persistence engines this backup knows (a record with another PE name is skipped). */
  knownPes?: ReadonlySet<string>;
  /** Byte order of v0 sequence options (host order of the sender). */
  hostLE?: boolean;
  /** States per protocol; 0 = unsupported (default: TCP, UDP, SCTP as the core has them). */
  stateCount?: (protocol: number) => number;
}

const DEFAULT_PES: ReadonlySet<string> = new Set(['sip']);

/** Decode and validate one received datagram (ip_vs_process_message). */
export function decodeMessage(buf: Uint8Array, opts: DecodeOptions = {}): DecodeResult {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const res: DecodeResult = { version: null, syncid: 0, nrConns: 0, ignored: false, records: [], skipped: 0, lost: 0, errors: [] };
  if (b.length < MESG_V0_HDR) {
    res.errors.push({ code: 'header-too-short', record: -1, fatal: true });
    return res;
  }
  res.syncid = b[1]!;
  if (b.length !== b.readUInt16BE(2)) {
    res.errors.push({ code: 'bad-size', record: -1, fatal: true });
    return res;
  }
  const want = opts.syncid ?? 0;
  if (want !== 0 && res.syncid !== want) {
    res.ignored = true;
    return res;
  }
  // A v1 header needs 8 bytes; shorter messages can only be (empty or broken) v0 ones. The
  // kernel would read stale buffer bytes there; reading them as v0 is the defined choice.
  if (b.length >= MESG_V1_HDR && b[5] === SYNC_PROTO_VER && b[0] === 0 && b.readUInt16BE(6) === 0) {
    res.version = 1;
    decodeV1(b, res, opts);
  } else {
    res.version = 0;
    decodeV0(b, res, opts);
  }
  return res;
}

function drop(res: DecodeResult, code: SyncWireErrorCode, i: number): void {
  res.errors.push({ code, record: i, fatal: true });
  res.lost = res.nrConns - i;
}

function skip(res: DecodeResult, code: SyncWireErrorCode, i: number): void {
  res.errors.push({ code, record: i, fatal: false });
  res.skipped++;
}

function decodeV1(b: Buffer, res: DecodeResult, opts: DecodeOptions): void {
  const nr = b[4]!;
  res.nrConns = nr;
  let next = MESG_V1_HDR;
  for (let i = 0; i < nr; i++) {
    const p = next;
    // The kernel checks room for an IPv4 record whatever the type.
    if (p + CONN_V4_SIZE > b.length) {
      drop(res, 'too-small', i);
      return;
    }
    const verSize = b.readUInt16BE(p + 2);
    const size = verSize & SVER_MASK;
    const end = p + size;
    if (end > b.length) {
      drop(res, 'record-past-end', i);
      return;
    }
    if (verSize >>> SVER_SHIFT !== 0) {
      drop(res, 'record-version', i);
      return;
    }
    const r = decodeRecordV1(b, p, end, res, i, opts);
    if (r === 'fatal') return;
    if (r) res.records.push(r);
    next = p + ((size + 3) & ~3);
  }
}

/** ip_vs_proc_sync_conn: a record, null when skipped, 'fatal' when the rest is dropped. */
function decodeRecordV1(b: Buffer, p: number, end: number, res: DecodeResult, i: number, opts: DecodeOptions): ReceivedRecord | null | 'fatal' {
  const type = b[p]!;
  let af: 4 | 6;
  if (type & STYPE_F_INET6) af = 6;
  else if (type === 0) af = 4;
  else {
    drop(res, 'bad-type', i);
    return 'fatal';
  }
  let q = p + (af === 6 ? CONN_V6_SIZE : CONN_V4_SIZE);
  if (q > end) {
    drop(res, 'record-too-short', i);
    return 'fatal';
  }
  let seen = 0;
  let inSeq: SeqData | undefined;
  let outSeq: SeqData | undefined;
  let peData: Uint8Array | undefined;
  let peName: string | undefined;
  while (q < end) {
    if (q + 2 > end) {
      drop(res, 'option-truncated', i);
      return 'fatal';
    }
    const ptype = b[q++]!;
    const plen = b[q++]!;
    if (plen === 0 || q + plen > end) {
      drop(res, 'option-length', i);
      return 'fatal';
    }
    switch (ptype & ~OPT_F_PARAM) {
      case OPT_SEQ_DATA:
        if (plen !== SEQ_OPTIONS_SIZE) {
          drop(res, 'seq-length', i);
          return 'fatal';
        }
        if (seen & (1 << OPT_SEQ_DATA)) {
          drop(res, 'seq-repeated', i);
          return 'fatal';
        }
        inSeq = readSeq(b, q, false);
        outSeq = readSeq(b, q + 12, false);
        seen |= 1 << OPT_SEQ_DATA;
        break;
      case OPT_PE_DATA:
        // A one-byte length never exceeds PEDATA_MAXLEN (255).
        if (seen & (1 << OPT_PE_DATA)) {
          drop(res, 'pe-data-repeated', i);
          return 'fatal';
        }
        peData = Uint8Array.from(b.subarray(q, q + plen));
        seen |= 1 << OPT_PE_DATA;
        break;
      case OPT_PE_NAME: {
        if (plen > PENAME_MAXLEN) {
          drop(res, 'pe-name-length', i);
          return 'fatal';
        }
        if (seen & (1 << OPT_PE_NAME)) {
          drop(res, 'pe-name-repeated', i);
          return 'fatal';
        }
        const raw = b.subarray(q, q + plen).toString('latin1');
        const nul = raw.indexOf('\0');
        peName = nul >= 0 ? raw.slice(0, nul) : raw;
        seen |= 1 << OPT_PE_NAME;
        break;
      }
      default:
        // Unknown: optional ones are stepped over; a mandatory one costs the record only.
        if (!(ptype & OPT_F_PARAM)) {
          skip(res, 'unknown-mandatory-option', i);
          return null;
        }
    }
    q += plen;
  }
  const wireFlags = b.readUInt32BE(p + 4);
  const flags = ((wireFlags & CONN_F_BACKUP_MASK) | CONN_F_SYNC) >>> 0;
  const state = b.readUInt16BE(p + 8);
  const protocol = b[p + 1]!;
  if (!(flags & CONN_F_TEMPLATE)) {
    const n = (opts.stateCount ?? protocolStateCount)(protocol);
    if (n === 0) {
      skip(res, 'unsupported-protocol', i);
      return null;
    }
    if (state >= n) {
      skip(res, 'bad-state', i);
      return null;
    }
  }
  // PE_DATA needs a PE_NAME naming a known engine; a PE_NAME alone is ignored.
  if (peData) {
    if (peName === undefined) {
      skip(res, 'pe-data-without-name', i);
      return null;
    }
    if (!(opts.knownPes ?? DEFAULT_PES).has(peName)) {
      skip(res, 'unknown-pe', i);
      return null;
    }
  }
  const a = p + 24;
  const step = af === 6 ? 16 : 4;
  const rec: ReceivedRecord = {
    af,
    protocol,
    flags,
    wireFlags,
    state,
    cport: b.readUInt16BE(p + 10),
    vport: b.readUInt16BE(p + 12),
    dport: b.readUInt16BE(p + 14),
    fwmark: b.readUInt32BE(p + 16),
    timeout: b.readUInt32BE(p + 20),
    caddr: readAddr(b, a, af),
    vaddr: readAddr(b, a + step, af),
    daddr: readAddr(b, a + 2 * step, af),
  };
  if (inSeq && outSeq) {
    rec.inSeq = inSeq;
    rec.outSeq = outSeq;
  }
  if (peData && peName !== undefined) {
    rec.peData = peData;
    rec.peName = peName;
  }
  return rec;
}

/** ip_vs_process_message_v0. */
function decodeV0(b: Buffer, res: DecodeResult, opts: DecodeOptions): void {
  const nr = b[0]!;
  res.nrConns = nr;
  let p = MESG_V0_HDR;
  for (let i = 0; i < nr; i++) {
    if (p + CONN_V0_SIZE > b.length) {
      drop(res, 'v0-truncated', i);
      return;
    }
    const s = p;
    const wireFlags = b.readUInt16BE(s + 20);
    // v0 keeps every flag but HASHED (no BACKUP_MASK here, unlike v1).
    const flags = ((wireFlags | CONN_F_SYNC) & ~CONN_F_HASHED) >>> 0;
    let seq: [SeqData, SeqData] | undefined;
    if (flags & CONN_F_SEQ_MASK) {
      p += CONN_V0_FULL_SIZE;
      if (p > b.length) {
        drop(res, 'v0-options-truncated', i);
        return;
      }
      const le = opts.hostLE ?? true;
      seq = [readSeq(b, s + CONN_V0_SIZE, le), readSeq(b, s + CONN_V0_SIZE + 12, le)];
    } else {
      p += CONN_V0_SIZE;
    }
    const protocol = b[s + 1]!;
    const state = b.readUInt16BE(s + 22);
    if (!(flags & CONN_F_TEMPLATE)) {
      const n = (opts.stateCount ?? protocolStateCount)(protocol);
      if (n === 0) {
        skip(res, 'unsupported-protocol', i);
        continue;
      }
      if (state >= n) {
        skip(res, 'bad-state', i);
        continue;
      }
    }
    const rec: ReceivedRecord = {
      af: 4,
      protocol,
      flags,
      wireFlags,
      state,
      cport: b.readUInt16BE(s + 2),
      vport: b.readUInt16BE(s + 4),
      dport: b.readUInt16BE(s + 6),
      fwmark: 0,
      timeout: 0,
      caddr: new IpAddr(4, b.readUInt32BE(s + 8)),
      vaddr: new IpAddr(4, b.readUInt32BE(s + 12)),
      daddr: new IpAddr(4, b.readUInt32BE(s + 16)),
    };
    if (seq) {
      rec.inSeq = seq[0];
      rec.outSeq = seq[1];
    }
    res.records.push(rec);
  }
}
