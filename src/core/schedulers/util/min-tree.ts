// A tournament tree over list slots: every inner node holds the slot that wins its subtree, the
// root holds the overall winner. A leaf carries a ratio num/den (den > 0); the winner has the
// smallest ratio, and among equal ratios the smallest slot, i.e. the first in list order. That
// is exactly what the kernel's "replace only if strictly better" scans return, provided the
// comparison is exact: doubles order two ratios correctly whenever they differ (correctly
// rounded division is monotonic), and equal doubles are settled with exact cross products.
// Each node keeps a copy of its winner's key, num and den next to each other, so comparing two
// children reads adjacent memory instead of two random slots.

import { cmpProducts } from './arith.js';

const NONE = -1;
const TWO_53 = 9007199254740992;

export class MinTree {
  /** Leaf count, a power of two. */
  capacity = 0;
  /** Per node i: [key, num, den] of its winner at 3i .. 3i + 2 (leaves at capacity + slot). */
  private node = new Float64Array(0);
  /** Winning slot per node, NONE when no leaf below is eligible; win[1] is the root. */
  private win = new Int32Array(0);

  /** Empty tree with `capacity` leaves (a power of two). */
  reset(capacity: number): void {
    this.capacity = capacity;
    this.node = new Float64Array(6 * capacity);
    this.win = new Int32Array(2 * capacity).fill(NONE);
  }

  /** Set a leaf without fixing its ancestors (bulk loading; call build() afterwards). */
  put(slot: number, num: number, den: number): void {
    const i = this.capacity + slot;
    const node = this.node;
    node[3 * i] = num / den;
    node[3 * i + 1] = num;
    node[3 * i + 2] = den;
    this.win[i] = slot;
  }

  /** Mark a leaf as not eligible, without fixing its ancestors. */
  putNone(slot: number): void {
    this.win[this.capacity + slot] = NONE;
  }

  /** Recompute every inner node (after put/putNone in bulk). */
  build(): void {
    for (let i = this.capacity - 1; i >= 1; i--) this.play(i);
  }

  /** Update one leaf and the path above it. */
  set(slot: number, num: number, den: number): void {
    this.put(slot, num, den);
    this.fix(slot);
  }

  /** Make one leaf ineligible and fix the path above it. */
  clear(slot: number): void {
    if (this.win[this.capacity + slot] === NONE) return;
    this.win[this.capacity + slot] = NONE;
    this.fix(slot);
  }

  /** The winning slot, or -1 when no leaf is eligible. */
  best(): number {
    return this.win[1]!;
  }

  private fix(slot: number): void {
    const win = this.win;
    for (let i = (this.capacity + slot) >> 1; i >= 1; i >>= 1) {
      const before = win[i];
      this.play(i);
      // Same winner as before and not the changed slot: nothing above can change.
      if (win[i] === before && before !== slot) return;
    }
  }

  /** Node i takes the winner of its two children; the left child holds the smaller slots. */
  private play(i: number): void {
    const win = this.win;
    const node = this.node;
    const l = 2 * i;
    const r = l + 1;
    let from = l;
    if (win[l] === NONE) from = r;
    else if (win[r] !== NONE) {
      const kl = node[3 * l]!;
      const kr = node[3 * r]!;
      if (kr < kl) from = r;
      else if (kr === kl) {
        // Equal doubles: only an exactly smaller ratio moves the win away from the earlier slot.
        const p = node[3 * r + 1]! * node[3 * l + 2]!;
        const q = node[3 * l + 1]! * node[3 * r + 2]!;
        if (p < TWO_53 && q < TWO_53 && p > -TWO_53 && q > -TWO_53) {
          if (p < q) from = r;
        } else if (cmpProducts(node[3 * r + 1]!, node[3 * l + 2]!, node[3 * l + 1]!, node[3 * r + 2]!) < 0) from = r;
      }
    }
    win[i] = win[from]!;
    node[3 * i] = node[3 * from]!;
    node[3 * i + 1] = node[3 * from + 1]!;
    node[3 * i + 2] = node[3 * from + 2]!;
  }
}
