// SCTP association states of IPVS (ip_vs_proto_sctp.c): events derived from the first chunk
// type, transition tables for INPUT, OUTPUT and INPUT-ONLY, default timeouts and state names.
// Only ESTABLISHED counts as an active connection.

export const SCTP_S_NONE = 0;
export const SCTP_S_INIT1 = 1;
export const SCTP_S_INIT = 2;
export const SCTP_S_COOKIE_SENT = 3;
export const SCTP_S_COOKIE_REPLIED = 4;
export const SCTP_S_COOKIE_WAIT = 5;
export const SCTP_S_COOKIE = 6;
export const SCTP_S_COOKIE_ECHOED = 7;
export const SCTP_S_ESTABLISHED = 8;
export const SCTP_S_SHUTDOWN_SENT = 9;
export const SCTP_S_SHUTDOWN_RECEIVED = 10;
export const SCTP_S_SHUTDOWN_ACK_SENT = 11;
export const SCTP_S_REJECTED = 12;
export const SCTP_S_CLOSED = 13;
export const SCTP_S_LAST = 14;

export const SCTP_STATE_NAMES = [
  'NONE',
  'INIT1',
  'INIT',
  'C-SENT',
  'C-REPLIED',
  'C-WAIT',
  'COOKIE',
  'C-ECHOED',
  'ESTABLISHED',
  'S-SENT',
  'S-RECEIVED',
  'S-ACK-SENT',
  'REJECTED',
  'CLOSED',
] as const;

const MAX_RTO = 61; // (60 + 1) s
/** Default timeouts in seconds, indexed by state. */
export const SCTP_DEFAULT_TIMEOUTS: readonly number[] = [2, 4, MAX_RTO, MAX_RTO, MAX_RTO, MAX_RTO, MAX_RTO, MAX_RTO, 900, MAX_RTO, MAX_RTO, MAX_RTO, 4, MAX_RTO];

/** Chunk types (RFC 4960 §3.2) the state machine distinguishes. */
export const SCTP_CID_DATA = 0;
export const SCTP_CID_INIT = 1;
export const SCTP_CID_INIT_ACK = 2;
export const SCTP_CID_ABORT = 6;
export const SCTP_CID_COOKIE_ECHO = 10;
export const SCTP_CID_COOKIE_ACK = 11;

// chunk type -> event: DATA 0, INIT 1, INIT_ACK 2, COOKIE_ECHO 3, COOKIE_ACK 4, SHUTDOWN 5,
// SHUTDOWN_ACK 6, SHUTDOWN_COMPLETE 7, ERROR 8, ABORT 9; unknown chunk types count as DATA.
const EVENTS = [0, 1, 2, 0, 0, 0, 9, 5, 6, 8, 3, 4, 0, 0, 7];

const S: Record<string, number> = {
  NO: SCTP_S_NONE,
  I1: SCTP_S_INIT1,
  IN: SCTP_S_INIT,
  CS: SCTP_S_COOKIE_SENT,
  CR: SCTP_S_COOKIE_REPLIED,
  CW: SCTP_S_COOKIE_WAIT,
  CO: SCTP_S_COOKIE,
  CE: SCTP_S_COOKIE_ECHOED,
  ES: SCTP_S_ESTABLISHED,
  SS: SCTP_S_SHUTDOWN_SENT,
  SR: SCTP_S_SHUTDOWN_RECEIVED,
  SA: SCTP_S_SHUTDOWN_ACK_SENT,
  RJ: SCTP_S_REJECTED,
  CL: SCTP_S_CLOSED,
};

function table(rows: string[]): number[] {
  const out: number[] = [];
  for (const row of rows) {
    const cells = row.trim().split(/\s+/);
    if (cells.length !== SCTP_S_LAST) throw new Error('bad SCTP state table row');
    for (const c of cells) out.push(S[c]!);
  }
  return out;
}

// Rows: data, init, init_ack, cookie_echo, cookie_ack, shutdown, shutdown_ack,
// shutdown_complete, error, abort. Columns: NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL.
const TABLES = [
  table([
    'ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL',
    'I1 IN IN CS CR CW CO CE ES SS SR SA IN IN',
    'CW CW CW CS CR CO CO CE ES SS SR SA RJ CL',
    'CR IN IN CR CR CW CO CE ES SS SR SA RJ CL',
    'ES I1 IN CS CR CW CO ES ES SS SR SA RJ CL',
    'SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL',
    'CL IN IN CS CR CW CO CE ES CL SR CL RJ CL',
    'CL CL CL CS CR CW CO CE ES SS SR CL RJ CL',
    'CL I1 IN CS CR CW CO CL ES SS SR SA RJ CL',
    'CL CL CL CL CL RJ CL CL CL CL CL CL CL CL',
  ]),
  table([
    'ES I1 IN CS CR CW CO CE ES SS SR SA RJ CL',
    'CW CW CW CW CW CW CW CW ES CW CW CW CW CW',
    'CS CS CS CS CR CW CO CE ES SS SR SA RJ CL',
    'CE CE CE CE CE CE CE CE ES SS SR SA RJ CL',
    'ES ES ES ES ES ES ES ES ES SS SR SA RJ CL',
    'SS SS SS SS SS SS SS SS SS SS SR SA RJ CL',
    'SA SA SA SA SA CW CO CE ES SA SA SA RJ CL',
    'CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL',
    'CL CL CL CL CL CW CO CE ES SS SR SA RJ CL',
    'CL RJ CL CL CL CL CL CL CL CL CL CL CL CL',
  ]),
  table([
    'ES I1 IN CS CR ES CO CE ES SS SR SA RJ CL',
    'I1 IN IN IN IN IN CO CE ES SS SR SA IN IN',
    'CE CE CE CE CE CE CO CE ES SS SR SA RJ CL',
    'ES ES ES ES ES ES CO CE ES SS SR SA RJ CL',
    'ES I1 IN ES ES CW ES ES ES SS SR SA RJ CL',
    'SR I1 IN CS CR CW CO CE SR SS SR SA RJ CL',
    'CL IN IN CS CR CW CO CE CL CL SR CL RJ CL',
    'CL CL CL CL CL CW CO CE ES SS CL CL RJ CL',
    'CL I1 IN CS CR CW CO CE ES SS SR SA RJ CL',
    'CL CL CL CL CL RJ CL CL CL CL CL CL CL CL',
  ]),
];

/** Next state for a packet whose (effective) first chunk type is `chunk`. */
export function sctpNextState(dir: number, chunk: number, state: number): number {
  const ev = chunk < EVENTS.length ? EVENTS[chunk]! : 0;
  return TABLES[dir]![ev * SCTP_S_LAST + state]!;
}

export function sctpStateActive(state: number): boolean {
  return state === SCTP_S_ESTABLISHED;
}
