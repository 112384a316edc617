// Checker kinds by name: keepalived's TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, DNS_CHECK,
// SMTP_CHECK and MISC_CHECK.

import type { CheckerKind, ResolvedChecker } from '../config.js';
import { dnsProbe } from './dns.js';
import { httpProbe } from './http.js';
import { miscProbe } from './misc.js';
import type { Probe } from './probe.js';
import { smtpProbe } from './smtp.js';
import { tcpProbe } from './tcp.js';
import { udpProbe } from './udp.js';

const FACTORIES: Record<CheckerKind, (c: ResolvedChecker) => Probe> = {
  tcp: tcpProbe,
  http: httpProbe,
  https: httpProbe,
  udp: udpProbe,
  dns: dnsProbe,
  smtp: smtpProbe,
  misc: miscProbe,
};

export function createProbe(c: ResolvedChecker): Probe {
  return FACTORIES[c.kind](c);
}

/** keepalived's name of a checker kind, for logs. */
export const KEEPALIVED_NAME: Record<CheckerKind, string> = {
  tcp: 'TCP_CHECK',
  http: 'HTTP_GET',
  https: 'SSL_GET',
  udp: 'UDP_CHECK',
  dns: 'DNS_CHECK',
  smtp: 'SMTP_CHECK',
  misc: 'MISC_CHECK',
};
