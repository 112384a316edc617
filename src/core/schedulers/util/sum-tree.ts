// A sum tree over list slots: twos's weighted random pick ("walk the eligible dests in list
// order, subtracting weights, until the remainder is <= 0") in O(log n) instead of a scan.

export class SumTree {
  capacity = 0;
  private t = new Float64Array(0);

  reset(capacity: number): void {
    this.capacity = Math.max(2, capacity);
    this.t = new Float64Array(2 * this.capacity);
  }

  put(slot: number, value: number): void {
    this.t[this.capacity + slot] = value;
  }

  build(): void {
    const t = this.t;
    for (let i = this.capacity - 1; i >= 1; i--) t[i] = t[2 * i]! + t[2 * i + 1]!;
  }

  get(slot: number): number {
    return this.t[this.capacity + slot]!;
  }

  set(slot: number, value: number): void {
    const t = this.t;
    let i = this.capacity + slot;
    const delta = value - t[i]!;
    if (delta === 0) return;
    for (; i >= 1; i >>= 1) t[i] = t[i]! + delta;
  }

  get total(): number {
    return this.t[1]!;
  }

  /** First slot whose prefix sum (itself included) is >= target, for 1 <= target <= total. */
  findPrefix(target: number): number {
    const t = this.t;
    let i = 1;
    while (i < this.capacity) {
      const left = t[2 * i]!;
      if (left >= target) i = 2 * i;
      else {
        target -= left;
        i = 2 * i + 1;
      }
    }
    return i - this.capacity;
  }
}
