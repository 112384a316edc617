// Fixed texts of ipvsadm 1.31 and the kernel error texts it prints (libipvs ipvs_strerror),
// plus the two ways ipvsadm leaves early: exit(status) from deep inside (fail, tryhelp_exit,
// usage_exit) is an Exit exception here, caught by runVsadm.

import { IpvsError } from '../../core/errors.js';

export const IPVSADM_VERSION_LINE = 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)';
/** vsadm's own version (kept in step with package.json). */
export const VSADM_VERSION = '0.1.0';
export const VSADM_VERSION_LINE = `vsadm v${VSADM_VERSION} (tsvs; ipvsadm v1.31 2019/12/24 compatible, IPVS v1.2.1)`;

/** ipvsadm leaves with exit(status); -1 becomes 255 like any exit status. */
export class Exit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
    this.name = 'Exit';
  }
}

/** Where a message goes before an exit: the error stream of the current run. */
export interface ErrorSink {
  write(text: string): void;
}

/** ipvsadm's fail(): the message, a newline, exit with the status. */
export function failWith(sink: ErrorSink, status: number, message: string): never {
  sink.write(`${message}\n`);
  throw new Exit(status);
}

export function tryHelpText(program: string): string {
  return `Try \`${program} -h' or '${program} --help' for more information.\n`;
}

/** The libipvs function an error came from: ipvs_strerror picks its text by it. */
export type IpvsOp =
  | 'add_service'
  | 'update_service'
  | 'del_service'
  | 'zero_service'
  | 'add_dest'
  | 'update_dest'
  | 'del_dest'
  | 'start_daemon'
  | 'stop_daemon'
  | 'get_services'
  | 'get_dests'
  | 'get_service'
  | 'flush'
  | 'set_timeout'
  | 'get_timeout'
  | 'get_daemon'
  | 'get_info';

const OP_ERRORS: ReadonlyArray<[IpvsOp | null, string, string]> = [
  ['add_service', 'EEXIST', 'Service already exists'],
  ['add_service', 'ENOENT', 'Scheduler or persistence engine not found'],
  ['update_service', 'ESRCH', 'No such service'],
  ['update_service', 'ENOENT', 'Scheduler or persistence engine not found'],
  ['del_service', 'ESRCH', 'No such service'],
  ['zero_service', 'ESRCH', 'No such service'],
  ['add_dest', 'ESRCH', 'Service not defined'],
  ['add_dest', 'EEXIST', 'Destination already exists'],
  ['update_dest', 'ESRCH', 'Service not defined'],
  ['update_dest', 'ENOENT', 'No such destination'],
  ['del_dest', 'ESRCH', 'Service not defined'],
  ['del_dest', 'ENOENT', 'No such destination'],
  ['start_daemon', 'EEXIST', 'Daemon has already run'],
  ['stop_daemon', 'ESRCH', 'No daemon is running'],
  ['get_services', 'ESRCH', 'No such service'],
  ['get_dests', 'ESRCH', 'No such service'],
  ['get_service', 'ESRCH', 'No such service'],
  [null, 'EPERM', 'Permission denied (you must be root)'],
  [null, 'EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...'],
  [null, 'ENOPROTOOPT', 'Protocol not available'],
  [null, 'ENOMEM', 'Memory allocation problem'],
  [null, 'EOPNOTSUPP', 'Operation not supported with IPv6'],
  [null, 'EAFNOSUPPORT', 'Operation not supported with specified address family'],
  [null, 'EMSGSIZE', 'Module is wrong version'],
];

/** glibc strerror texts for the errnos the API can carry (LC_ALL=C). */
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EEXIST: 'File exists',
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOMEM: 'Cannot allocate memory',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EFAULT: 'Bad address',
  ENODEV: 'No such device',
  EBUSY: 'Device or resource busy',
  ENOPROTOOPT: 'Protocol not available',
  EOPNOTSUPP: 'Operation not supported',
  EMSGSIZE: 'Message too long',
};

/** ipvs_strerror(errno) as printed after a failed call of `op`. */
export function ipvsStrerror(op: IpvsOp, errno: string): string {
  for (const [o, e, text] of OP_ERRORS) if ((o === null || o === op) && e === errno) return text;
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** The text for any failure of an API call: IpvsError by its errno, anything else by its message. */
export function describeApiError(op: IpvsOp, e: unknown): string {
  if (e instanceof IpvsError) return ipvsStrerror(op, e.errno);
  if (e instanceof Error) return e.message;
  return String(e);
}
