// A map keyed by an IP address given as four words (IPv4 in w0), looked up per packet without
// building a string or an object: buckets by the folded address, entries compared word by word.

export class AddrMap<T> {
  private readonly buckets = new Map<number, { f: number; w0: number; w1: number; w2: number; w3: number; v: T }[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(family: number, w0: number, w1: number, w2: number, w3: number): T | undefined {
    const list = this.buckets.get((w0 ^ w1 ^ w2 ^ w3 ^ family) >>> 0);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.w0 === w0 >>> 0 && e.w1 === w1 >>> 0 && e.w2 === w2 >>> 0 && e.w3 === w3 >>> 0 && e.f === family) return e.v;
    }
    return undefined;
  }

  set(family: number, w0: number, w1: number, w2: number, w3: number, v: T): void {
    const k = (w0 ^ w1 ^ w2 ^ w3 ^ family) >>> 0;
    let list = this.buckets.get(k);
    if (!list) this.buckets.set(k, (list = []));
    for (const e of list) {
      if (e.w0 === w0 >>> 0 && e.w1 === w1 >>> 0 && e.w2 === w2 >>> 0 && e.w3 === w3 >>> 0 && e.f === family) {
        e.v = v;
        return;
      }
    }
    list.push({ f: family, w0: w0 >>> 0, w1: w1 >>> 0, w2: w2 >>> 0, w3: w3 >>> 0, v });
    this.count++;
  }

  delete(family: number, w0: number, w1: number, w2: number, w3: number): boolean {
    const k = (w0 ^ w1 ^ w2 ^ w3 ^ family) >>> 0;
    const list = this.buckets.get(k);
    if (!list) return false;
    const i = list.findIndex((e) => e.w0 === w0 >>> 0 && e.w1 === w1 >>> 0 && e.w2 === w2 >>> 0 && e.w3 === w3 >>> 0 && e.f === family);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.buckets.delete(k);
    this.count--;
    return true;
  }

  clear(): void {
    this.buckets.clear();
    this.count = 0;
  }

  *values(): IterableIterator<T> {
    for (const list of this.buckets.values()) for (const e of list) yield e.v;
  }
}
