// Counters and the rate estimator, computed as IPVS computes them (ip_vs_est.c).
//
// Raw counters only grow; zeroing records a baseline (kstats0) and the reported counters are
// raw minus baseline, exactly as `ipvsadm -Z` works. The estimator samples every 2 s and keeps
// an EWMA with weight 1/4 in fixed point: pps/cps scaled by 2^10, bps scaled by 2^5.
// Counters are JS numbers: exact up to 2^53, far beyond any realistic byte count.

export const ESTIMATOR_PERIOD_MS = 2000;

/** A snapshot of the five counters, or of the five rates. */
export interface CounterValues {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

export interface RateValues {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

/** Arithmetic right shift of a signed value that may exceed 32 bits. */
function sar(x: number, n: number): number {
  return Math.floor(x / 2 ** n);
}

export class Stats {
  // raw counters (the kernel's kstats)
  conns = 0;
  inpkts = 0;
  outpkts = 0;
  inbytes = 0;
  outbytes = 0;
  // baseline set by zero() (kstats0)
  private z_conns = 0;
  private z_inpkts = 0;
  private z_outpkts = 0;
  private z_inbytes = 0;
  private z_outbytes = 0;
  // estimator state (struct ip_vs_estimator)
  private last_conns = 0;
  private last_inpkts = 0;
  private last_outpkts = 0;
  private last_inbytes = 0;
  private last_outbytes = 0;
  private cps_avg = 0;
  private inpps_avg = 0;
  private outpps_avg = 0;
  private inbps_avg = 0;
  private outbps_avg = 0;

  /** Counters as reported (raw minus the zeroing baseline). */
  counters(): CounterValues {
    return {
      conns: this.conns - this.z_conns,
      inpkts: this.inpkts - this.z_inpkts,
      outpkts: this.outpkts - this.z_outpkts,
      inbytes: this.inbytes - this.z_inbytes,
      outbytes: this.outbytes - this.z_outbytes,
    };
  }

  /** One 2-second estimation step (estimation_timer / ip_vs_estimate). */
  estimate(): void {
    const dc = this.conns - this.last_conns;
    const dip = this.inpkts - this.last_inpkts;
    const dop = this.outpkts - this.last_outpkts;
    const dib = this.inbytes - this.last_inbytes;
    const dob = this.outbytes - this.last_outbytes;
    this.last_conns = this.conns;
    this.last_inpkts = this.inpkts;
    this.last_outpkts = this.outpkts;
    this.last_inbytes = this.inbytes;
    this.last_outbytes = this.outbytes;
    // rate << 9 is (delta * 1024) / 2 s; bytes << 4 is (delta * 32) / 2 s
    this.cps_avg += sar(dc * 512 - this.cps_avg, 2);
    this.inpps_avg += sar(dip * 512 - this.inpps_avg, 2);
    this.outpps_avg += sar(dop * 512 - this.outpps_avg, 2);
    this.inbps_avg += sar(dib * 16 - this.inbps_avg, 2);
    this.outbps_avg += sar(dob * 16 - this.outbps_avg, 2);
  }

  /** Rates as the kernel reports them (rounded fixed point). */
  rates(): RateValues {
    return {
      cps: sar(this.cps_avg + 0x1ff, 10),
      inpps: sar(this.inpps_avg + 0x1ff, 10),
      outpps: sar(this.outpps_avg + 0x1ff, 10),
      inbps: sar(this.inbps_avg + 0xf, 5),
      outbps: sar(this.outbps_avg + 0xf, 5),
    };
  }

  /** `ipvsadm -Z`: new baseline, estimator restarted from the current counters. */
  zero(): void {
    this.z_conns = this.conns;
    this.z_inpkts = this.inpkts;
    this.z_outpkts = this.outpkts;
    this.z_inbytes = this.inbytes;
    this.z_outbytes = this.outbytes;
    this.last_conns = this.conns;
    this.last_inpkts = this.inpkts;
    this.last_outpkts = this.outpkts;
    this.last_inbytes = this.inbytes;
    this.last_outbytes = this.outbytes;
    this.cps_avg = this.inpps_avg = this.outpps_avg = this.inbps_avg = this.outbps_avg = 0;
  }
}
