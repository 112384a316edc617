// A max segment tree over list slots answering "the first slot at or after `from` whose value
// is at least x" in O(log n): rr's "next usable dest after the cursor" (values 0/1) and wrr's
// "next dest after the cursor with weight >= cw and not overloaded" (values = usable weight).
// Holes hold -1 and never match.

export class MaxTree {
  /** Leaf count, a power of two (at least 2). */
  capacity = 0;
  /** t[capacity + slot] is the leaf; t[i] = max(t[2i], t[2i+1]). */
  private t = new Float64Array(0);

  reset(capacity: number): void {
    this.capacity = Math.max(2, capacity);
    this.t = new Float64Array(2 * this.capacity).fill(-1);
  }

  /** Set a leaf without fixing its ancestors (call build() afterwards). */
  put(slot: number, value: number): void {
    this.t[this.capacity + slot] = value;
  }

  build(): void {
    const t = this.t;
    for (let i = this.capacity - 1; i >= 1; i--) t[i] = Math.max(t[2 * i]!, t[2 * i + 1]!);
  }

  get(slot: number): number {
    return this.t[this.capacity + slot]!;
  }

  /** Largest value of all. */
  get max(): number {
    return this.t[1]!;
  }

  /** Update one leaf and its ancestors. */
  set(slot: number, value: number): void {
    const t = this.t;
    let i = this.capacity + slot;
    t[i] = value;
    for (i >>= 1; i >= 1; i >>= 1) {
      const m = Math.max(t[2 * i]!, t[2 * i + 1]!);
      if (t[i] === m) return;
      t[i] = m;
    }
  }

  /** First slot >= from whose value is >= x, or -1. */
  firstAtLeast(from: number, x: number): number {
    const t = this.t;
    const capacity = this.capacity;
    if (from >= capacity) return -1;
    let i = capacity + from;
    if (t[i]! >= x) return from;
    // Climb until a right sibling (entirely after `from`) holds a match.
    for (;;) {
      if ((i & 1) === 0 && t[i + 1]! >= x) {
        i++;
        break;
      }
      i >>= 1;
      if (i <= 1) return -1;
    }
    // Descend to the leftmost matching leaf.
    while (i < capacity) i = t[2 * i]! >= x ? 2 * i : 2 * i + 1;
    return i - capacity;
  }
}
