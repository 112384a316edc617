// What vsd needs from a data plane. The proxy plane and the packet plane each implement it;
// the daemon starts them, asks which services they carry, and stops them.

export interface ServiceCoverage {
  /** Service key (Service.key). */
  key: string;
  /** Why this plane does not carry it (absent when it does). */
  reason?: string;
}

export interface DataPlane {
  readonly name: string;
  /** Start listening/capturing for the services in the director's table. */
  start(): Promise<void>;
  /** Services this plane carries now. */
  served(): string[];
  /** Services this plane would carry by their forwarding method but cannot, with the reason. */
  unserved(): ServiceCoverage[];
  /** Stop taking new connections; established ones continue (drain). */
  stopAccepting(): Promise<void>;
  /** Stop everything, closing what is left. */
  close(): Promise<void>;
  /** Plane-specific figures for `status` and metrics. */
  status(): Record<string, unknown>;
}
