// DNS_CHECK: one query over UDP (recursion desired, random ID, QDCOUNT 1, class IN; type SOA
// and the root name by default). A reply with the same ID, QR set and RCODE 0 passes, as in
// keepalived; tsvs adds `expect`: values that must all be among the answers (A/AAAA addresses,
// CNAME/NS/PTR/MX/SRV target names, TXT strings, SOA primary name). Packets built and read here
// by hand: a handful of bytes, every offset checked.

import { randomInt } from 'node:crypto';
import { IpAddr } from '../../core/addr.js';
import type { CheckerConfig, ResolvedChecker } from '../config.js';
import { exchangeDatagram, type Probe, type ProbeContext } from './probe.js';

type DnsOptions = Extract<CheckerConfig, { type: 'dns' }>;

export const DNS_TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, RRSIG: 46, DNSKEY: 48 };

/** The query packet: header (RD set), QNAME as labels, QTYPE, QCLASS IN. */
export function buildQuery(id: number, name: string, type: number): Buffer {
  const labels = name === '.' ? [] : name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  parts.push(header);
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    if (b.length === 0 || b.length > 63) throw new Error(`invalid DNS label in ${name}`);
    parts.push(Buffer.from([b.length]), b);
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(0, 0);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  parts.push(tail);
  return Buffer.concat(parts);
}

/** Read a (possibly compressed) name at off; returns the name and the offset after it. */
function readName(msg: Buffer, off: number): { name: string; next: number } {
  const labels: string[] = [];
  let next = -1;
  let p = off;
  for (let hops = 0; hops < 64; hops++) {
    if (p >= msg.length) throw new Error('truncated name');
    const len = msg[p]!;
    if (len === 0) {
      if (next < 0) next = p + 1;
      return { name: labels.length ? `${labels.join('.')}.` : '.', next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (p + 1 >= msg.length) throw new Error('truncated pointer');
      if (next < 0) next = p + 2;
      p = ((len & 0x3f) << 8) | msg[p + 1]!;
      continue;
    }
    if (p + 1 + len > msg.length) throw new Error('truncated label');
    labels.push(msg.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  throw new Error('name compression loop');
}

export interface DnsReply {
  id: number;
  qr: boolean;
  rcode: number;
  answers: { type: number; values: string[] }[];
}

/** Parse a reply's header and answer section (values normalised: lower case, no final dot). */
export function parseReply(msg: Buffer): DnsReply {
  if (msg.length < 12) throw new Error('short DNS message');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let p = 12;
  for (let i = 0; i < qd; i++) p = readName(msg, p).next + 4;
  const answers: DnsReply['answers'] = [];
  const norm = (n: string) => n.toLowerCase().replace(/\.$/, '') || '.';
  for (let i = 0; i < an && p < msg.length; i++) {
    const owner = readName(msg, p);
    p = owner.next;
    if (p + 10 > msg.length) throw new Error('truncated answer');
    const type = msg.readUInt16BE(p);
    const rdlen = msg.readUInt16BE(p + 8);
    const rd = p + 10;
    if (rd + rdlen > msg.length) throw new Error('truncated answer data');
    const values: string[] = [];
    if (type === 1 && rdlen === 4) values.push(`${msg[rd]}.${msg[rd + 1]}.${msg[rd + 2]}.${msg[rd + 3]}`);
    else if (type === 28 && rdlen === 16) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(msg.readUInt16BE(rd + g * 2).toString(16));
      values.push(IpAddr.tryParse(groups.join(':'))?.toString() ?? groups.join(':'));
    } else if (type === 2 || type === 5 || type === 12) values.push(norm(readName(msg, rd).name));
    else if (type === 15) {
      const n = norm(readName(msg, rd + 2).name);
      values.push(n, `${msg.readUInt16BE(rd)} ${n}`);
    } else if (type === 33) {
      const n = norm(readName(msg, rd + 6).name);
      values.push(n, `${msg.readUInt16BE(rd)} ${msg.readUInt16BE(rd + 2)} ${msg.readUInt16BE(rd + 4)} ${n}`);
    } else if (type === 6) values.push(norm(readName(msg, rd).name));
    else if (type === 16) {
      const strs: string[] = [];
      for (let q = rd; q < rd + rdlen; ) {
        const l = msg[q]!;
        strs.push(msg.toString('utf8', q + 1, Math.min(q + 1 + l, rd + rdlen)));
        q += 1 + l;
      }
      values.push(strs.join(''));
    }
    answers.push({ type, values });
    p = rd + rdlen;
  }
  return { id, qr: (flags & 0x8000) !== 0, rcode: flags & 0xf, answers };
}

function normalizeExpected(v: string): string {
  const ip = IpAddr.tryParse(v);
  if (ip) return ip.toString();
  return v.toLowerCase().replace(/\.$/, '') || '.';
}

export function dnsProbe(c: ResolvedChecker): Probe {
  const o = c.options as DnsOptions;
  const type = DNS_TYPES[o.query ?? 'SOA']!;
  const name = o.name ?? '.';
  const expect = o.expect?.map(normalizeExpected);
  const open = new Set<() => void>();
  return {
    run(ctx: ProbeContext) {
      const id = randomInt(0, 65536);
      return exchangeDatagram({
        target: c.target,
        bind: ctx.bind ?? c.bind,
        timeoutMs: c.timing.connectTimeout,
        payload: () => buildQuery(id, name, type),
        onTimeout: { ok: false, detail: 'read timeout from socket' },
        onError: (code) => ({ ok: false, detail: `failed to read socket (${code})` }),
        onSendError: () => ({ ok: false, detail: 'failed to write socket.' }),
        onMessage: (msg) => {
          let r: DnsReply;
          try {
            r = parseReply(msg);
          } catch {
            return undefined; // keepalived keeps waiting on junk
          }
          if (r.id !== id || !r.qr) return undefined;
          if (r.rcode !== 0) return { ok: false, detail: `read error occurred. (rcode = ${r.rcode})` };
          if (expect) {
            const got = new Set(r.answers.flatMap((a) => a.values.map(normalizeExpected)));
            const missing = expect.filter((e) => !got.has(e));
            if (missing.length) return { ok: false, detail: `answer lacks ${missing.join(', ')} (got ${[...got].join(', ') || 'nothing'})` };
          }
          return { ok: true, detail: `rcode 0, ${r.answers.length} answers` };
        },
        inflight: open,
      });
    },
    close() {
      for (const a of [...open]) a();
    },
  };
}
