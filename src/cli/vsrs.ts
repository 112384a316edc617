// vsrs: the tsvs tunnel real-server agent. Run on a real server reached by IPVS tunneling
// (-i) whose kernel lacks the ipip/gre/fou modules: it decapsulates the director's tunnel
// packets into a TUN device (src/planes/packet/realserver.ts). Linux, root.

import { parseArgs } from 'node:util';
import { hasPacketPrivileges } from '../planes/packet/plane.js';
import { RealServerAgent } from '../planes/packet/realserver.js';
import { VERSION } from '../version.js';

const HELP = `Usage: vsrs -i IFACE [options]

The tsvs tunnel real-server agent: receives the director's IPIP, GRE and GUE tunnel packets on
IFACE, decapsulates them and hands the client's packets to this host's stack through a TUN
device, for real servers whose kernel has no ipip module. Answers go from the VIP straight to
the client. Needs root (CAP_NET_ADMIN, CAP_NET_RAW).

Options:
  -i, --interface IFACE     where the tunnel packets arrive (required)
      --tun NAME            the TUN device to create (default tsvs0)
      --gue-port PORT       also take GUE on this UDP port (the director's --tun-port)
      --vip ADDR            configure ADDR on lo with ARP kept quiet (repeatable)
      --no-guard            do not install the nftables table that keeps the kernel from
                            answering tunnel packets with ICMP unreachable
  -h, --help                show this help
  -V, --version             show the version`;

export async function main(argv: string[]): Promise<number> {
  const parse = () =>
    parseArgs({
      args: argv,
      options: {
        interface: { type: 'string', short: 'i' },
        tun: { type: 'string' },
        'gue-port': { type: 'string' },
        vip: { type: 'string', multiple: true },
        'no-guard': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
      strict: true,
    });
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse().values;
  } catch (e) {
    process.stderr.write(`vsrs: ${(e as Error).message}\nTry 'vsrs --help' for more information.\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`vsrs (tsvs) ${VERSION}\n`);
    return 0;
  }
  if (!values.interface) {
    process.stderr.write("vsrs: -i IFACE is required\nTry 'vsrs --help' for more information.\n");
    return 2;
  }
  const guePort = values['gue-port'] === undefined ? 0 : Number(values['gue-port']);
  if (!Number.isInteger(guePort) || guePort < 0 || guePort > 65535) {
    process.stderr.write(`vsrs: --gue-port: expected a port, got ${values['gue-port']}\n`);
    return 2;
  }
  if (!hasPacketPrivileges()) {
    process.stderr.write('vsrs: needs root (CAP_NET_ADMIN, CAP_NET_RAW)\n');
    return 1;
  }
  const agent = new RealServerAgent({
    interface: values.interface,
    ...(values.tun ? { tun: values.tun } : {}),
    guePort,
    vips: values.vip ?? [],
    guard: !values['no-guard'],
    log: (m) => process.stdout.write(`${m}\n`),
  });
  try {
    agent.start();
  } catch (e) {
    agent.stop();
    process.stderr.write(`vsrs: cannot start: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  agent.stop();
  process.stdout.write(`vsrs: stopped ${JSON.stringify(agent.stats)}\n`);
  return 0;
}
