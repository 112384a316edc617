// Quorum with hysteresis (keepalived ipwrapper.c update_quorum_state). The sum is taken over the
// weights of the alive real servers; the thresholds differ by direction so a pool hovering at
// the quorum does not flap:
//   up at start-up, or regained, when  sum >= quorum + hysteresis
//   lost                          when  sum == 0  or  sum < quorum - hysteresis
// While quorum is lost and a sorry server is configured, the sorry server takes the traffic and
// the alive real servers leave the table.

export type QuorumChange = { state: 'up' | 'down'; message: string } | null;

export class Quorum {
  state: 'up' | 'down';

  constructor(
    public quorum: number,
    public hysteresis: number,
    initialSum: number,
    private readonly label: string,
  ) {
    this.state = initialSum >= quorum + hysteresis ? 'up' : 'down';
  }

  /** Re-evaluate with the current weight sum; returns the change and keepalived's log line. */
  update(sum: number): QuorumChange {
    const q = this.quorum;
    const h = this.hysteresis;
    if (this.state === 'down' && sum >= q + h) {
      this.state = 'up';
      return { state: 'up', message: `Gained quorum ${q}+${h}=${q + h} <= ${sum} for VS ${this.label}` };
    }
    if (this.state === 'up' && (sum === 0 || sum < q - h)) {
      this.state = 'down';
      return { state: 'down', message: `Lost quorum ${q}-${h}=${q - h} > ${sum} for VS ${this.label}` };
    }
    return null;
  }
}
