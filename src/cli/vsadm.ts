// vsadm's entry point: connects to vsd's control socket and runs one ipvsadm command line.
// Installed (or linked) under the name "ipvsadm" it behaves exactly as ipvsadm 1.31.

import { delimiter, dirname, resolve } from 'node:path';
import { connectApi, DaemonUnavailable } from '../control/client.js';
import { flavorOf, runVsadm } from './vsadm/run.js';

/**
 * The program name as the user typed it, as near as Node lets us know: the bare name when the
 * script's directory is on PATH (the usual case), else its path.
 */
export function programName(scriptPath: string | undefined): string {
  if (!scriptPath) return 'vsadm';
  const dir = dirname(resolve(scriptPath));
  const onPath = (process.env.PATH ?? '').split(delimiter).some((p) => p && resolve(p) === dir);
  return onPath ? scriptPath.slice(scriptPath.lastIndexOf('/') + 1) : scriptPath;
}

export async function main(argv: string[], argv0 = programName(process.argv[1])): Promise<number> {
  // `vsadm -L | head -1`: a closed pipe ends the output, as SIGPIPE ends ipvsadm's
  process.stdout.on('error', () => {});
  let api: Awaited<ReturnType<typeof connectApi>>;
  try {
    api = await connectApi();
  } catch (e) {
    const why = e instanceof DaemonUnavailable ? `${e.code} on ${e.socketPath}` : (e as Error).message;
    if (flavorOf(argv0) === 'ipvsadm') {
      process.stderr.write(`Can't initialize ipvs: ${why}\nAre you sure that IP Virtual Server is built in the kernel or as module?\n`);
    } else {
      process.stderr.write(`${argv0}: cannot reach vsd (${why}): is vsd running?\n`);
    }
    return 2;
  }
  try {
    return await runVsadm(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, argv0 }, api);
  } finally {
    api.close();
  }
}
