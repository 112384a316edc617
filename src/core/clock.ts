// Clocks for the core. The core never reads the time itself: it is handed a function that
// returns milliseconds, so tests can step time exactly and the daemon can use a monotonic clock.

export type Clock = () => number;

/** A clock that only moves when told to (tests, simulations). */
export class ManualClock {
  constructor(public ms = 0) {}
  readonly now: Clock = () => this.ms;
  advance(ms: number): number {
    this.ms += ms;
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}

/** Monotonic milliseconds since the process started (for the daemon). */
export const monotonicClock: Clock = () => performance.now();

/** xorshift128+-style 32-bit generator with a seed, for deterministic randomness in the core. */
export function seededRandom32(seed = 0x12345678): () => number {
  let a = seed >>> 0 || 1;
  let b = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0 || 2;
  return () => {
    let t = a;
    const s = b;
    a = s;
    t ^= t << 11;
    t ^= t >>> 8;
    b = (t ^ s ^ (s >>> 19)) >>> 0;
    return b;
  };
}
