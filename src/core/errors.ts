// Errors of the management API carry the errno the kernel would return, so that vsadm can
// print exactly what ipvsadm prints for it (ipvs_strerror) and callers can branch on it.

export type Errno =
  | 'EPERM'
  | 'ENOENT'
  | 'ESRCH'
  | 'EEXIST'
  | 'EINVAL'
  | 'ERANGE'
  | 'ENOMEM'
  | 'EAFNOSUPPORT'
  | 'EFAULT'
  | 'ENODEV'
  | 'EBUSY'
  | 'ENOPROTOOPT'
  | 'EOPNOTSUPP';

export class IpvsError extends Error {
  constructor(
    readonly errno: Errno,
    message: string,
  ) {
    super(message);
    this.name = 'IpvsError';
  }
}

export function fail(errno: Errno, message: string): never {
  throw new IpvsError(errno, message);
}
