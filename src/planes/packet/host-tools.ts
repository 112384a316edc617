// Running the host's network tools (ip, nft) for the packet plane, in its network namespace:
// the director's own by default, or a named one (tests and benchmarks run the plane in-process
// against a namespace they built). Async by default so that a route refresh never stalls the
// event loop that may be forwarding frames; sync for start-up and exit.

import { execFile, spawnSync } from 'node:child_process';

export interface ToolResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class HostTools {
  /** netns: a name under /run/netns (undefined: this process's namespace). */
  constructor(readonly netns?: string) {}

  private argv(tool: 'ip' | 'nft', args: string[]): [string, string[]] {
    if (!this.netns) return [tool, args];
    // ip has -n; nft runs under `ip netns exec`.
    return tool === 'ip' ? ['ip', ['-n', this.netns, ...args]] : ['ip', ['netns', 'exec', this.netns, 'nft', ...args]];
  }

  runSync(tool: 'ip' | 'nft', args: string[], input?: string): ToolResult {
    const [cmd, argv] = this.argv(tool, args);
    const r = spawnSync(cmd, argv, { input, encoding: 'utf8', timeout: 20_000, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
  }

  run(tool: 'ip' | 'nft', args: string[]): Promise<ToolResult> {
    const [cmd, argv] = this.argv(tool, args);
    return new Promise((resolve) => {
      execFile(cmd, argv, { encoding: 'utf8', timeout: 20_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code as number) : -1) : 0;
        resolve({ status, stdout: stdout ?? '', stderr: stderr ?? String(err ?? '') });
      });
    });
  }

  /** `ip -j ...` parsed; [] when the output is empty. Throws on failure. */
  async ipJson<T>(args: string[]): Promise<T[]> {
    const r = await this.run('ip', ['-j', ...args]);
    return parseJsonList<T>(r, args);
  }

  ipJsonSync<T>(args: string[]): T[] {
    return parseJsonList<T>(this.runSync('ip', ['-j', ...args]), args);
  }
}

function parseJsonList<T>(r: ToolResult, args: string[]): T[] {
  if (r.status !== 0) throw new Error(`ip -j ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.status}`}`);
  const text = r.stdout.trim();
  if (!text) return [];
  return JSON.parse(text) as T[];
}
