// A reader of the Prometheus text exposition format, for the tests: samples keyed by
// `name{label="value",…}` with the labels sorted, plus each family's TYPE and HELP.

export interface Exposition {
  samples: Map<string, number>;
  types: Map<string, string>;
  help: Map<string, string>;
}

export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  const ks = Object.keys(labels).sort();
  if (!ks.length) return name;
  return `${name}{${ks.map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: new Map(), types: new Map(), help: new Map() };
  for (const line of text.split('\n')) {
    if (!line) continue;
    let m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      out.types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      out.help.set(m[1]!, m[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.samples.set(sampleKey(m[1]!, labels), Number(m[3]));
  }
  return out;
}

/** Samples of one metric family. */
export function family(e: Exposition, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of e.samples) if (k === name || k.startsWith(`${name}{`)) out.set(k, v);
  return out;
}
