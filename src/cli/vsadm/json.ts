// vsadm --json: every listing as one JSON document (pretty-printed, newline-terminated), for
// scripts that would otherwise parse ipvsadm's columns. Addresses and ports are always numeric;
// -n changes nothing; --nosort keeps the table's order; the --stats/--rate/--thresholds/
// --persistent-conn/--tun-info choices are irrelevant (every field is always there).
//
// Shapes (also in docs/vsadm.md):
//
//   vsadm -L --json            { "version": "1.2.1", "connTabSize": 4096, "services": [Service...] }
//   vsadm -L -t|-u|-f ... --json   { "services": [Service] }
//   Service = { "protocol": "tcp"|"udp"|"sctp", "af": 4|6, "address": "198.18.0.1"|null,
//               "port": 80|null, "fwmark": 0|n, "scheduler": "wlc", "schedFlags": ["sh-port"...],
//               "persistent": bool, "timeout": seconds|null, "netmask": "255.255.255.0"|64|null,
//               "pe": "sip"|null, "ops": bool, "proxyProtocol": 0|1|2, "flags": n,
//               "stats": Counters, "rates": Rates, "dests": [Dest...] }
//     (address/port are null for fwmark services, fwmark 0 for address services; timeout and
//      netmask are null when not persistent)
//   Dest = { "af": 4|6, "address": "198.19.0.2", "port": 80, "forward": "Masq"|"Route"|"Tunnel"|
//            "Local"|"Proxy", "weight": n, "uThreshold": n, "lThreshold": n, "activeConns": n,
//            "inactConns": n, "persistConns": n, "overloaded": bool,
//            "tunnel": null | { "type": "ipip"|"gue"|"gre", "port": n|null,
//                               "csum": "nocsum"|"csum"|"remcsum" },
//            "stats": Counters, "rates": Rates }
//   Counters = { "conns", "inpkts", "outpkts", "inbytes", "outbytes" }   (numbers)
//   Rates    = { "cps", "inpps", "outpps", "inbps", "outbps" }           (per second)
//   vsadm -L -c --json         { "connections": [ { "protocol": "TCP", "client": {"address","port"},
//                                "virtual": {...}, "destination": {...}, "state": "SYN_RECV",
//                                "expires": seconds, "template": bool, "fwmark": n,
//                                "pe": null | { "name": "sip", "data": "..." } } ] }
//   vsadm -L --timeout --json  { "timeouts": { "tcp": 900, "tcpfin": 120, "udp": 300 } }
//   vsadm -L --daemon --json   { "daemons": [ { "state": "master"|"backup", "mcastInterface",
//                                "syncid", "maxlen", "group", "port", "ttl" } ] }

import { CONN_F_TEMPLATE, DEST_F_OVERLOAD, FWD_MASK, FWD_TUNNEL, SVC_F_ONEPACKET, SVC_F_PERSISTENT, TUN_TYPE_GRE, TUN_TYPE_GUE } from '../../core/constants.js';
import type { ConnInfo, DestInfo, InfoSnapshot, ServiceInfo, TimeoutsSpec } from '../../core/model.js';
import type { DaemonInfo } from '../../control/ipvs-api.js';
import { connExpires, connProtocolName, forwardName, maskText, schedFlagNames } from './format.js';

function protoName(p: number): string {
  return p === 6 ? 'tcp' : p === 17 ? 'udp' : p === 132 ? 'sctp' : String(p);
}

function destJson(d: DestInfo): unknown {
  const tunnel =
    (d.connFlags & FWD_MASK) === FWD_TUNNEL
      ? {
          type: d.tunType === TUN_TYPE_GUE ? 'gue' : d.tunType === TUN_TYPE_GRE ? 'gre' : 'ipip',
          port: d.tunType === TUN_TYPE_GUE ? d.tunPort : null,
          csum: ['nocsum', 'csum', 'remcsum'][d.tunFlags] ?? String(d.tunFlags),
        }
      : null;
  return {
    af: d.af,
    address: d.addr,
    port: d.port,
    forward: forwardName(d.connFlags),
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    activeConns: d.activeConns,
    inactConns: d.inactConns,
    persistConns: d.persistConns,
    overloaded: (d.flags & DEST_F_OVERLOAD) !== 0,
    tunnel,
    stats: { ...d.stats },
    rates: { ...d.rates },
    // What vsd's extensions add (health: state, configured weight, reason of the weight)
    ...pick(d, ['configuredWeight', 'weightReason', 'health']),
  };
}

/** The daemon's own fields beyond the kernel model, when present (see docs/vsadm.md). */
function pick(o: object, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in o) out[k] = (o as Record<string, unknown>)[k];
  return out;
}

export function serviceJson(svc: ServiceInfo, dests: readonly DestInfo[]): unknown {
  const persistent = (svc.flags & SVC_F_PERSISTENT) !== 0;
  const mask = maskText(svc);
  return {
    protocol: protoName(svc.protocol),
    af: svc.af,
    address: svc.fwmark ? null : svc.addr,
    port: svc.fwmark ? null : svc.port,
    fwmark: svc.fwmark >>> 0,
    scheduler: svc.schedName,
    schedFlags: schedFlagNames(svc),
    persistent,
    timeout: persistent ? svc.timeout : null,
    netmask: persistent ? (svc.af === 6 ? svc.netmask : (mask ?? '255.255.255.255')) : null,
    pe: svc.peName || null,
    ops: (svc.flags & SVC_F_ONEPACKET) !== 0,
    proxyProtocol: svc.proxyProtocol ?? 0,
    flags: svc.flags,
    stats: { ...svc.stats },
    rates: { ...svc.rates },
    // Which data plane carries the service; why none can, if so
    ...pick(svc, ['servedBy', 'unserved']),
    dests: dests.map(destJson),
  };
}

export function servicesJson(info: InfoSnapshot | null, services: ReadonlyArray<{ svc: ServiceInfo; dests: readonly DestInfo[] }>): string {
  const list = services.map((s) => serviceJson(s.svc, s.dests));
  const doc = info ? { version: info.version, connTabSize: info.connTabSize, services: list } : { services: list };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function connectionsJson(conns: readonly ConnInfo[]): string {
  const doc = {
    connections: conns.map((c) => ({
      protocol: connProtocolName(c.protocol),
      client: { address: c.caddr, port: c.cport },
      virtual: { address: c.vaddr, port: c.vport },
      destination: { address: c.daddr, port: c.dport },
      state: c.state,
      expires: connExpires(c),
      template: (c.flags & CONN_F_TEMPLATE) !== 0,
      fwmark: c.fwmark >>> 0,
      pe: c.peName ? { name: c.peName, data: c.peData } : null,
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function timeoutsJson(t: TimeoutsSpec): string {
  return `${JSON.stringify({ timeouts: { tcp: t.tcp, tcpfin: t.tcpfin, udp: t.udp } }, null, 2)}\n`;
}

export function daemonsJson(daemons: readonly DaemonInfo[]): string {
  const order = ['master', 'backup'];
  const list = [...daemons]
    .sort((a, b) => order.indexOf(a.state) - order.indexOf(b.state))
    .map((d) => ({ state: d.state, mcastInterface: d.mcastIfn, syncid: d.syncid, maxlen: d.syncMaxlen, group: d.mcastGroup, port: d.mcastPort, ttl: d.mcastTtl }));
  return `${JSON.stringify({ daemons: list }, null, 2)}\n`;
}
