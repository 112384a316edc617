// A fixed-rate HTTP/1.1 load generator for latency (wrk2 is not packaged): opens `rate` new
// connections per second for `seconds`, each sending one GET with `Connection: close` and
// reading the whole answer; the latency of one request is from connect() to the end of the
// answer (connection set-up included). Open loop: a slow answer does not delay the next
// request (up to `maxInFlight` outstanding).

import net from 'node:net';

export interface RateResult {
  sent: number;
  ok: number;
  errors: number;
  /** milliseconds */
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function runRate(host: string, port: number, rate: number, seconds: number, maxInFlight = 256): Promise<RateResult> {
  return new Promise((resolve) => {
    const lat: number[] = [];
    let sent = 0;
    let errors = 0;
    let inFlight = 0;
    const total = Math.round(rate * seconds);
    const req = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const t0 = performance.now();
    const one = () => {
      sent++;
      inFlight++;
      const start = performance.now();
      const c = net.connect({ host, port, noDelay: true });
      let got = 0;
      c.on('connect', () => c.write(req));
      c.on('data', (d) => {
        got += d.length;
      });
      c.on('error', () => {
        errors++;
      });
      c.on('close', () => {
        inFlight--;
        if (got > 0) lat.push(performance.now() - start);
        else errors++;
      });
    };
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      while (sent < due && inFlight < maxInFlight) one();
      if (sent >= total) {
        clearInterval(timer);
        const end = performance.now() + 3000;
        const wait = setInterval(() => {
          if (inFlight === 0 || performance.now() > end) {
            clearInterval(wait);
            lat.sort((a, b) => a - b);
            const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : Number.NaN);
            resolve({ sent, ok: lat.length, errors, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lat.length ? lat[lat.length - 1]! : Number.NaN });
          }
        }, 20);
      }
    }, 1);
  });
}
