// `ipvsadm -S`: the table as the commands that rebuild it (print_service_entry with FMT_RULE).
// Services and real servers sorted as in listings; no header, no title; names unless -n, never
// cut short. Thresholds are not saved, and marks >= 2^31 are saved signed ("-f -1"), which -R
// then refuses: both as in ipvsadm 1.31.

import { FWD_DROUTE, FWD_LOCALNODE, FWD_MASK, FWD_MASQ, FWD_PROXY, FWD_TUNNEL, SVC_F_ONEPACKET, SVC_F_PERSISTENT, TUN_TYPE_GRE, TUN_TYPE_GUE, TUN_TYPE_IPIP } from '../../core/constants.js';
import type { DestInfo, ServiceInfo } from '../../core/model.js';
import { maskText, type Names, schedFlagNames } from './format.js';

const TUN_FLAG_OPTS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

function optionForProtocol(protocol: number): string {
  return protocol === 6 ? '-t' : protocol === 17 ? '-u' : protocol === 132 ? '--sctp-service' : '--xxx-service';
}

/** fwd_switch; tsvs's proxy method is saved as vsadm's --proxy. */
function forwardSwitch(connFlags: number): string {
  switch (connFlags & FWD_MASK) {
    case FWD_MASQ:
      return '-m';
    case FWD_TUNNEL:
      return '-i';
    case FWD_LOCALNODE:
    case FWD_DROUTE:
      return '-g';
    case FWD_PROXY:
      return '--proxy';
    default:
      return '(null)';
  }
}

/** The "-t addr:port" / "-f mark [-6]" part shared by the -A and -a lines. */
export async function ruleServiceName(svc: ServiceInfo, names: Names): Promise<string> {
  if (svc.fwmark) return svc.af === 6 ? `-f ${svc.fwmark | 0} -6` : `-f ${svc.fwmark | 0}`;
  return `${optionForProtocol(svc.protocol)} ${await names.addrPort(svc.af, svc.addr, svc.port, svc.protocol)}`;
}

export function ruleDestLine(svcName: string, dname: string, d: DestInfo): string {
  const base = `-a ${svcName} -r ${dname} ${forwardSwitch(d.connFlags)} -w ${d.weight | 0}`;
  if ((d.connFlags & FWD_MASK) !== FWD_TUNNEL) return `${base}\n`;
  const flags = TUN_FLAG_OPTS[d.tunFlags] ?? '(null)';
  if (d.tunType === TUN_TYPE_GUE) return `${base} --tun-type gue --tun-port ${d.tunPort} ${flags}\n`;
  if (d.tunType === TUN_TYPE_GRE) return `${base} --tun-type gre ${flags}\n`;
  if (d.tunType === TUN_TYPE_IPIP) return `${base} --tun-type ipip\n`;
  return `${base}\n`;
}

/** The -A line of a service and the -a lines of its real servers (already in order). */
export async function formatSaveEntry(svc: ServiceInfo, names: Names, dests: readonly DestInfo[]): Promise<string> {
  const svcName = await ruleServiceName(svc, names);
  let out = `-A ${svcName} -s ${svc.schedName}`;
  if (svc.flags & SVC_F_PERSISTENT) {
    out += ` -p ${svc.timeout >>> 0}`;
    const mask = maskText(svc);
    if (mask !== null) out += ` -M ${mask}`;
  }
  if (svc.peName) out += ` --pe ${svc.peName}`;
  if (svc.flags & SVC_F_ONEPACKET) out += ' -o';
  const flags = schedFlagNames(svc);
  if (flags.length) out += ` -b ${flags.join(',')}`;
  out += '\n';
  for (const d of dests) out += ruleDestLine(svcName, await names.addrPort(d.af, d.addr, d.port, svc.protocol), d);
  return out;
}
