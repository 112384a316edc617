// vsd: the tsvs daemon. Parses its command line, loads the config, starts the director with
// its data planes and control API, and handles signals (SIGHUP reload, SIGTERM/SIGINT stop).

import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { ConfigError, type Config, loadConfigFile, parseConfig, parseHostPort } from '../control/config.js';
import { Vsd, type VsdExtension } from '../control/daemon.js';
import { formatWarning, type KeepalivedResult, loadKeepalivedFile, looksLikeKeepalived } from '../control/keepalived.js';
import type { DataPlane } from '../control/plane.js';
import { defaultSocketPath } from '../control/protocol.js';
import type { Director } from '../core/director.js';
import { HealthManager } from '../health/manager.js';
import { MetricsExtension, ProcExtension } from '../metrics/extension.js';
import { type PacketConfig, packetConfig } from '../planes/packet/config.js';
import { PacketPlane } from '../planes/packet/plane.js';
import { SyncDaemons } from '../sync/daemon.js';
import { SyncExtension } from '../sync/extension.js';
import { ProxyPlane } from '../planes/proxy/index.js';
import { VERSION } from '../version.js';
import { WebExtension } from '../web/extension.js';

const HELP = `Usage: vsd [options]

The tsvs daemon: holds the virtual server table and the connection table, and runs the data
planes that carry the connections. vsadm (an ipvsadm drop-in) talks to it.

Options:
  -c, --config FILE         load a YAML or JSON config (re-read on SIGHUP or vsadm --reload);
                            a keepalived.conf is recognised by its content
  -k, --keepalived FILE     load the virtual_server blocks of a keepalived.conf (re-read on SIGHUP)
      --check               validate the config (YAML or keepalived.conf) and exit
      --socket PATH         control socket (default: $TSVS_SOCKET or <runtime dir>/vsd.sock)
      --http HOST:PORT      also serve the HTTP JSON API (needs a bearer token)
      --http-token-file F   file holding the HTTP API token (else one is generated)
      --drain SECONDS       on SIGTERM, let established connections finish for up to SECONDS
      --metrics HOST:PORT   serve Prometheus metrics there (/metrics)
      --web HOST:PORT       serve the web dashboard there
      --proc-dir DIR        keep /proc-format files (DIR/net/ip_vs, ip_vs_stats, ip_vs_conn…) current
      --no-proxy            do not start the proxy data plane
      --packet IFACE[,IFACE]
                            run the packet data plane (NAT, DR, TUN as IPVS; root) on these
                            interfaces (or configure a packet: section)
      --log-level LEVEL     trace, debug, info, warn, error (default info)
      --demo                also start three demo real servers behind 127.0.0.1:8080
  -h, --help                show this help
  -V, --version             show the version

Without --config, vsd starts with an empty table.`;

interface CliOptions {
  configPath?: string;
  keepalivedPath?: string;
  check: boolean;
  socket: string;
  http?: { host: string; port: number; tokenFile?: string };
  drainSeconds?: number;
  proxy: boolean;
  /** --packet: interfaces for the packet data plane. */
  packet?: string[];
  logLevel: string;
  demo: boolean;
  metrics?: string;
  web?: string;
  procDir?: string;
}

function parseCli(argv: string[]): CliOptions | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      keepalived: { type: 'string', short: 'k' },
      check: { type: 'boolean' },
      socket: { type: 'string' },
      http: { type: 'string' },
      'http-token-file': { type: 'string' },
      drain: { type: 'string' },
      'no-proxy': { type: 'boolean' },
      packet: { type: 'string' },
      'log-level': { type: 'string' },
      demo: { type: 'boolean' },
      metrics: { type: 'string' },
      web: { type: 'string' },
      'proc-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
  let http: CliOptions['http'];
  if (values.http) {
    const hp = parseHostPort(values.http);
    if (!hp) throw new UsageError(`--http: expected HOST:PORT, got ${values.http}`);
    http = { host: hp.addr.toString(), port: hp.port, ...(values['http-token-file'] ? { tokenFile: values['http-token-file'] } : {}) };
  }
  let drainSeconds: number | undefined;
  if (values.drain !== undefined) {
    drainSeconds = Number(values.drain);
    if (!Number.isFinite(drainSeconds) || drainSeconds < 0) throw new UsageError(`--drain: expected seconds, got ${values.drain}`);
  }
  const logLevel = values['log-level'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) throw new UsageError(`--log-level: unknown level ${logLevel}`);
  if (values.check && !values.config && !values.keepalived) throw new UsageError('--check needs --config FILE');
  if (values.config && values.keepalived) throw new UsageError('--config and --keepalived cannot be combined');
  for (const f of ['metrics', 'web'] as const) {
    if (values[f] !== undefined && !parseHostPort(values[f])) throw new UsageError(`--${f}: expected HOST:PORT, got ${values[f]}`);
  }
  if (values['proc-dir'] === '') throw new UsageError('--proc-dir: expected a directory');
  let packet: string[] | undefined;
  if (values.packet !== undefined) {
    packet = values.packet.split(',').map((s) => s.trim());
    if (packet.some((s) => !/^[A-Za-z0-9_.:@-]{1,15}$/.test(s))) throw new UsageError(`--packet: expected IFACE[,IFACE], got ${values.packet}`);
  }
  return {
    ...(values.config ? { configPath: values.config } : {}),
    ...(values.keepalived ? { keepalivedPath: values.keepalived } : {}),
    check: !!values.check,
    socket: values.socket ?? defaultSocketPath(),
    ...(http ? { http } : {}),
    ...(drainSeconds !== undefined ? { drainSeconds } : {}),
    proxy: !values['no-proxy'],
    ...(packet ? { packet } : {}),
    logLevel,
    demo: !!values.demo,
    ...(values.metrics ? { metrics: values.metrics } : {}),
    ...(values.web ? { web: values.web } : {}),
    ...(values['proc-dir'] ? { procDir: values['proc-dir'] } : {}),
  };
}

class UsageError extends Error {}

/** Three small HTTP servers that say who they are: the demo's real servers. */
async function startDemoServers(): Promise<{ servers: Server[]; ports: number[] }> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let n = 1; n <= 3; n++) {
    const server = createServer((req, res) => {
      const body = `hello from demo real server ${n} (127.0.0.1:${ports[n - 1]}), you are ${req.socket.remoteAddress}:${req.socket.remotePort}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(18080 + n, '127.0.0.1', () => resolve());
    }).catch(
      () =>
        new Promise<void>((resolve) => {
          server.removeAllListeners('error');
          server.listen(0, '127.0.0.1', () => resolve());
        }),
    );
    const addr = server.address();
    ports.push(typeof addr === 'object' && addr ? addr.port : 0);
    servers.push(server);
  }
  return { servers, ports };
}

function demoConfig(ports: number[]): Config {
  return parseConfig(
    JSON.stringify({
      services: [
        {
          protocol: 'tcp',
          address: '127.0.0.1:8080',
          scheduler: 'rr',
          realServers: ports.map((p) => ({ address: `127.0.0.1:${p}`, method: 'nat', weight: 1 })),
        },
      ],
    }),
    '<demo>',
  );
}

/**
 * The data planes vsd runs: the packet plane when configured (config `packet:` or --packet),
 * and the proxy plane unless disabled; services the packet plane carries are not the proxy's.
 */
function makePlanes(opts: CliOptions, packet: PacketConfig | undefined, proxy: Config['proxy'] | undefined): (director: Director, log: Logger) => DataPlane[] {
  return (director, log) => {
    const planes: DataPlane[] = [];
    let packetPlane: PacketPlane | undefined;
    if (packet) {
      packetPlane = new PacketPlane(director, { ...packet, logger: log.child({ plane: 'packet' }) });
      planes.push(packetPlane);
    }
    // With the packet plane running, masquerading services are its own; the proxy plane keeps
    // the rest (proxy-method real servers).
    if (opts.proxy && (proxy?.enabled ?? true)) {
      planes.push(
        new ProxyPlane(director, {
          logger: log,
          relay: proxy?.relay ?? 'auto',
          retryMs: (proxy?.retrySeconds ?? 5) * 1000,
          carries: (svc) => !(packetPlane?.carries(svc) ?? false),
        }),
      );
    }
    return planes;
  };
}

/** The parts of vsd beyond the core and planes, in start order. */
function makeExtensions(opts: CliOptions): VsdExtension[] {
  const list: VsdExtension[] = [];
  list.push(new HealthManager());
  list.push(new MetricsExtension(opts.metrics ? { listen: opts.metrics } : {}));
  list.push(new ProcExtension(opts.procDir ? { dir: opts.procDir } : {}));
  list.push(new WebExtension(opts.web ? { listen: opts.web } : {}));
  return list;
}

export async function main(argv: string[]): Promise<number> {
  let opts: CliOptions;
  try {
    const r = parseCli(argv);
    if (r === 'help') {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (r === 'version') {
      process.stdout.write(`vsd (tsvs) ${VERSION}\n`);
      return 0;
    }
    opts = r;
  } catch (e) {
    process.stderr.write(`vsd: ${(e as Error).message}\nTry 'vsd --help' for more information.\n`);
    return 2;
  }

  // The config comes from a YAML/JSON file or a keepalived.conf (--keepalived, or recognised
  // under --config); reload (SIGHUP, the control API) runs the same loader again.
  let keepalivedPath = opts.keepalivedPath;
  if (!keepalivedPath && opts.configPath && isKeepalivedFile(opts.configPath)) keepalivedPath = opts.configPath;
  let warnings: KeepalivedResult['warnings'] = [];
  const loadConfig: (() => Config) | undefined = keepalivedPath
    ? () => {
        const r = loadKeepalivedFile(keepalivedPath);
        warnings = r.warnings;
        return r.config;
      }
    : opts.configPath
      ? () => loadConfigFile(opts.configPath!)
      : undefined;
  const extensions = makeExtensions(opts);
  let config: Config | undefined;
  let packet: PacketConfig | undefined;
  if (loadConfig) {
    try {
      config = loadConfig();
      for (const x of extensions) x.checkConfig?.(config);
      packet = packetConfig(config, opts.packet);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`vsd: bad config: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    if (opts.check) {
      for (const w of warnings) process.stderr.write(`vsd: ${formatWarning(w)}\n`);
      const kind = keepalivedPath ? `keepalived.conf, ${config.services.length} services, ${warnings.length} warnings` : `${config.services.length} services`;
      process.stdout.write(`${keepalivedPath ?? opts.configPath}: OK (${kind})\n`);
      return 0;
    }
  }
  if (!config && opts.packet) {
    try {
      packet = packetConfig(undefined, opts.packet);
    } catch (e) {
      process.stderr.write(`vsd: ${(e as Error).message}\n`);
      return 2;
    }
  }
  // The demo keeps its terminal for the banner: only warnings unless a level is asked for.
  const level = opts.demo && !argv.some((a) => a.startsWith('--log-level')) ? 'warn' : (config?.log.level ?? opts.logLevel);
  const logger = pino({ level, base: { pid: process.pid } });
  const logWarnings = () => {
    for (const w of warnings) logger.warn({ file: w.file, line: w.line }, `keepalived.conf: ${formatWarning(w)}`);
    warnings = [];
  };
  logWarnings();

  let demo: Awaited<ReturnType<typeof startDemoServers>> | undefined;
  if (opts.demo) {
    demo = await startDemoServers();
    config = config ?? demoConfig(demo.ports);
  }
  const http = opts.http ?? httpFromConfig(config);
  // Connection sync: the control API's start/stop-daemon, and the config's `sync` section.
  const sync = new SyncDaemons({ director: () => vsd.director, logger });
  const vsd = new Vsd({
    logger,
    ...(config ? { config } : {}),
    ...(keepalivedPath || opts.configPath ? { configPath: (keepalivedPath ?? opts.configPath)! } : {}),
    ...(loadConfig
      ? {
          loadConfig: () => {
            const c = loadConfig();
            logWarnings();
            return c;
          },
        }
      : {}),
    socketPath: config?.control.socket ?? opts.socket,
    ...(http ? { http } : {}),
    planes: makePlanes(opts, packet, config?.proxy),
    sync,
    extensions: [...extensions, new SyncExtension(sync)],
  });
  try {
    await vsd.start();
  } catch (e) {
    process.stderr.write(`vsd: cannot start: ${describeStartError(e)}\n`);
    await vsd.stop().catch(() => {});
    for (const s of demo?.servers ?? []) s.close();
    return 1;
  }
  if (demo) {
    const bin = existsSync('bin/vsadm.js') ? './bin/vsadm.js' : 'vsadm';
    const tryLines: [string, string][] = [
      ['curl http://127.0.0.1:8080/', 'run it a few times: the answer rotates'],
      [`${bin} -L -n`, 'the virtual server table'],
      [`${bin} -L -n --stats`, 'connections, packets and bytes'],
      [`${bin} -L -c -n`, 'the connection table'],
    ];
    const width = Math.max(...tryLines.map(([c]) => c.length)) + 2;
    process.stdout.write(
      [
        '',
        'tsvs demo: virtual service 127.0.0.1:8080 (rr) over three real servers',
        `  ${demo.ports.map((p) => `127.0.0.1:${p}`).join(', ')}`,
        'Try it:',
        ...tryLines.map(([c, why]) => `  ${c.padEnd(width)}# ${why}`),
        'Stop with Ctrl-C.',
        '',
      ].join('\n'),
    );
  }
  const drainMs = (opts.drainSeconds ?? config?.drainSeconds ?? 0) * 1000;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'stopping');
      vsd
        .stop(drainMs)
        .catch((e) => logger.error({ err: e }, 'error while stopping'))
        .finally(() => {
          for (const s of demo?.servers ?? []) s.close();
          resolve();
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      try {
        vsd.reload();
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'reload failed: nothing changed');
      }
    });
  });
  return 0;
}

function isKeepalivedFile(path: string): boolean {
  try {
    return looksLikeKeepalived(readFileSync(path, 'utf8').slice(0, 64 * 1024));
  } catch {
    return false;
  }
}

function httpFromConfig(config: Config | undefined): CliOptions['http'] | undefined {
  const h = config?.control.http;
  if (!h) return undefined;
  const hp = parseHostPort(h.listen)!;
  return { host: hp.addr.toString(), port: hp.port, ...(h.tokenFile ? { tokenFile: h.tokenFile } : {}), ...(h.token ? { token: h.token } : {}) };
}

function describeStartError(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (err.code === 'EADDRINUSE') return `address in use: ${err.address ?? ''}${err.port ? `:${err.port}` : ''} (is another vsd or server running?)`;
  if (err.code === 'EACCES' || err.code === 'EPERM') return `permission denied: ${err.message} (ports below 1024 and the packet plane need root or CAP_NET_BIND_SERVICE/CAP_NET_ADMIN)`;
  if (err.code === 'EADDRNOTAVAIL') return `address not available on this host: ${err.address ?? err.message}`;
  return err.message ?? String(e);
}
