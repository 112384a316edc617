// The order of ipvsadm's sorted listings: libipvs's comparators, run by glibc's qsort.
//
// The comparators subtract 32-bit unsigned values and return the difference as a C int, so a
// difference of 2^31 or more changes sign: fwmark 4294967295 sorts before every address
// service, and 10.0.0.1 compares greater than 192.168.1.1. Such a comparator is not a total
// order, so the result depends on the algorithm: glibc's qsort is a top-down merge sort
// (msort_with_tmp: first half n/2 rounded down, ties and "<= 0" keep the left element first),
// reproduced here exactly.

import { IpAddr } from '../../core/addr.js';
import type { DestInfo, ServiceInfo } from '../../core/model.js';

/** (int)(a - b) for two 32-bit unsigned values. */
function wrapDiff(a: number, b: number): number {
  return (a - b) | 0;
}

const AF_INET = 2;
const AF_INET6 = 10;

function words(af: 4 | 6, text: string): [number, number, number, number] {
  const a = IpAddr.tryParse(text);
  if (!a) return [0, 0, 0, 0];
  return af === 6 || a.family === 6 ? [a.w0, a.w1, a.w2, a.w3] : [a.w0, 0, 0, 0];
}

interface Keyed<T> {
  item: T;
  af: 4 | 6;
  w: [number, number, number, number];
}

function keyed<T extends { af: 4 | 6; addr: string }>(item: T): Keyed<T> {
  return { item, af: item.af, w: words(item.af, item.addr) };
}

function compareAddr(a: Keyed<unknown>, b: Keyed<unknown>): number {
  let r = 0;
  if (a.af === 6) {
    for (let i = 0; r === 0 && i < 4; i++) r = wrapDiff(a.w[i]!, b.w[i]!);
  } else {
    r = wrapDiff(a.w[0], b.w[0]);
  }
  return r;
}

/** ipvs_cmp_services. */
function compareServices(k1: Keyed<ServiceInfo>, k2: Keyed<ServiceInfo>): number {
  const s1 = k1.item;
  const s2 = k2.item;
  let r = wrapDiff(s1.fwmark >>> 0, s2.fwmark >>> 0);
  if (r !== 0) return r;
  r = (s1.af === 6 ? AF_INET6 : AF_INET) - (s2.af === 6 ? AF_INET6 : AF_INET);
  if (r !== 0) return r;
  r = s1.protocol - s2.protocol;
  if (r !== 0) return r;
  r = compareAddr(k1, k2);
  if (r !== 0) return r;
  return s1.port - s2.port;
}

/**
 * ipvs_cmp_dests. The family of the first entry decides how many address words are compared;
 * an IPv4 address is one word followed by zeros.
 */
function compareDests(k1: Keyed<DestInfo>, k2: Keyed<DestInfo>): number {
  const r = compareAddr(k1, k2);
  if (r !== 0) return r;
  return k1.item.port - k2.item.port;
}

/** Services in `ipvsadm -L` order. */
export function sortServices(list: readonly ServiceInfo[]): ServiceInfo[] {
  return glibcMergeSort(list.map(keyed), compareServices).map((k) => k.item);
}

/** Real servers of one service in `ipvsadm -L` order. */
export function sortDests(list: readonly DestInfo[]): DestInfo[] {
  return glibcMergeSort(list.map(keyed), compareDests).map((k) => k.item);
}

/** glibc's msort: returns a new array, sorted the way qsort would leave it. */
export function glibcMergeSort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const b = items.slice();
  const tmp = new Array<T>(b.length);
  const sort = (lo: number, n: number): void => {
    if (n <= 1) return;
    const n1 = Math.floor(n / 2);
    const n2 = n - n1;
    sort(lo, n1);
    sort(lo + n1, n2);
    let i = lo;
    let j = lo + n1;
    const iEnd = lo + n1;
    const jEnd = lo + n;
    let k = 0;
    while (i < iEnd && j < jEnd) {
      if (cmp(b[i]!, b[j]!) <= 0) tmp[k++] = b[i++]!;
      else tmp[k++] = b[j++]!;
    }
    while (i < iEnd) tmp[k++] = b[i++]!;
    // what is left of the second half is already in place
    for (let m = 0; m < k; m++) b[lo + m] = tmp[m]!;
  };
  sort(0, b.length);
  return b;
}
