// The package version, shown by `vsd --version` and in logs.
export const VERSION = '0.1.0';
