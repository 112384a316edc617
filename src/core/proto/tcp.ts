// TCP connection states of IPVS (ip_vs_proto_tcp.c): both transition tables (normal and the
// secure_tcp defense table), each with INPUT, OUTPUT and INPUT-ONLY directions, the default
// per-state timeouts, and which states count as active connections.

export const TCP_S_NONE = 0;
export const TCP_S_ESTABLISHED = 1;
export const TCP_S_SYN_SENT = 2;
export const TCP_S_SYN_RECV = 3;
export const TCP_S_FIN_WAIT = 4;
export const TCP_S_TIME_WAIT = 5;
export const TCP_S_CLOSE = 6;
export const TCP_S_CLOSE_WAIT = 7;
export const TCP_S_LAST_ACK = 8;
export const TCP_S_LISTEN = 9;
export const TCP_S_SYNACK = 10;
export const TCP_S_LAST = 11;

export const TCP_STATE_NAMES = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
] as const;

/** Default timeouts in seconds, indexed by state. */
export const TCP_DEFAULT_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/** States counted in activeconns (the rest count as inactive). */
export function tcpStateActive(state: number): boolean {
  return state === TCP_S_ESTABLISHED || state === TCP_S_SYN_SENT || state === TCP_S_SYN_RECV || state === TCP_S_SYNACK;
}

/** TCP header flag bits, as in the header's 13th byte. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Event row for a segment's flags: rst > syn > fin > ack; -1 = no flag (goes to CLOSE). */
export function tcpEventIndex(flags: number): number {
  if (flags & TCP_RST) return 3;
  if (flags & TCP_SYN) return 0;
  if (flags & TCP_FIN) return 1;
  if (flags & TCP_ACK) return 2;
  return -1;
}

/** Directions of a segment through the director. */
export const DIR_INPUT = 0;
export const DIR_OUTPUT = 1;
/** Client packets of a connection whose replies bypass the director (DR, TUN). */
export const DIR_INPUT_ONLY = 2;

// Tables written as in the spec: rows syn, fin, ack, rst; columns by current state
// NO ES SS SR FW TW CL CW LA LI SA.
const S: Record<string, number> = {
  NO: TCP_S_NONE,
  ES: TCP_S_ESTABLISHED,
  SS: TCP_S_SYN_SENT,
  SR: TCP_S_SYN_RECV,
  FW: TCP_S_FIN_WAIT,
  TW: TCP_S_TIME_WAIT,
  CL: TCP_S_CLOSE,
  CW: TCP_S_CLOSE_WAIT,
  LA: TCP_S_LAST_ACK,
  LI: TCP_S_LISTEN,
  SA: TCP_S_SYNACK,
};

function table(rows: string[]): number[] {
  const out: number[] = [];
  for (const row of rows) {
    const cells = row.trim().split(/\s+/);
    if (cells.length !== TCP_S_LAST) throw new Error('bad TCP state table row');
    for (const c of cells) out.push(S[c]!);
  }
  return out;
}

// [direction][event * 11 + state]
const NORMAL = [
  table([
    'SR ES ES SR SR SR SR SR SR SR SR',
    'CL CW SS TW TW TW CL CW LA LI TW',
    'ES ES SS ES FW TW CL CW CL LI ES',
    'CL CL CL SR CL CL CL CL LA LI SR',
  ]),
  table([
    'SS ES SS SR SS SS SS SS SS LI SR',
    'TW FW SS TW FW TW CL TW LA LI TW',
    'ES ES SS ES FW TW CL CW LA ES ES',
    'CL CL SS CL CL TW CL CL CL CL CL',
  ]),
  table([
    'SR ES ES SR SR SR SR SR SR SR SR',
    'CL FW SS TW FW TW CL CW LA LI TW',
    'ES ES SS ES FW TW CL CW CL LI ES',
    'CL CL CL SR CL CL CL CL LA LI CL',
  ]),
];

const DEFENSE = [
  table([
    'SR ES ES SR SR SR SR SR SR SR SA',
    'CL CW SS TW TW TW CL CW LA LI SA',
    'ES ES SS SR FW TW CL CW CL LI SA',
    'CL CL CL SR CL CL CL CL LA LI CL',
  ]),
  table([
    'SS ES SS SA SS SS SS SS SS LI SA',
    'TW FW SS TW FW TW CL TW LA LI TW',
    'ES ES SS ES FW TW CL CW LA ES ES',
    'CL CL SS CL CL TW CL CL CL CL CL',
  ]),
  table([
    'SA ES ES SR SA SA SA SA SA SA SA',
    'CL FW SS TW FW TW CL CW LA LI TW',
    'ES ES SS ES FW TW CL CW CL LI ES',
    'CL CL CL SR CL CL CL CL LA LI CL',
  ]),
];

/** Flattened tables: [secure(0/1)][direction 0..2][event 0..3][state 0..10]. */
export const TCP_TRANSITIONS = new Uint8Array(2 * 3 * 4 * TCP_S_LAST);
for (let sec = 0; sec < 2; sec++) {
  const t = sec ? DEFENSE : NORMAL;
  for (let dir = 0; dir < 3; dir++) TCP_TRANSITIONS.set(t[dir]!, (sec * 3 + dir) * 4 * TCP_S_LAST);
}

/** Next state for a segment (set_tcp_state), given the direction table already chosen. */
export function tcpNextState(secure: boolean, dir: number, flags: number, state: number): number {
  const ev = tcpEventIndex(flags);
  if (ev < 0) return TCP_S_CLOSE;
  return TCP_TRANSITIONS[((secure ? 3 : 0) + dir) * 4 * TCP_S_LAST + ev * TCP_S_LAST + state]!;
}
