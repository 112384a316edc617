// Health facts about a real server, read from the annotations extensions add to vsd's
// getServices reply (VsdExtension.annotateDest). The health checker is a separate part of vsd;
// this reader accepts the shapes it may use and ignores anything else:
//
//   health: "up" | "down" | "<other state>"            or
//   health: { state?: string, up?: boolean, healthy?: boolean, configuredWeight?: number, reason?: string }
//   health: { sorryServer: true, active: boolean }     the service's sorry server
//   healthy | up | alive: boolean
//   configuredWeight | weightConfigured: number         the weight the config asked for (the
//                                                         table's weight may differ: dynamic
//                                                         feedback, inhibit_on_failure, drain)
//   weightReason: string                                 why the weight differs (shown, not exported)

export interface DestHealth {
  /** Known to pass (true) or fail (false) its checks; absent when nobody checks it. */
  up?: boolean;
  /** The checker's own state name, when it gives one. */
  state?: string;
  configuredWeight?: number;
  weightReason?: string;
}

const UP = /^(up|alive|healthy|ok|pass(ing)?|active)$/i;
const DOWN = /^(down|dead|unhealthy|fail(ed|ing)?|inactive)$/i;

function upFromState(s: string): boolean | undefined {
  if (UP.test(s)) return true;
  if (DOWN.test(s)) return false;
  return undefined;
}

export function destHealth(d: Record<string, unknown>): DestHealth {
  const out: DestHealth = {};
  const h = d.health;
  if (typeof h === 'string') {
    out.state = h;
    const up = upFromState(h);
    if (up !== undefined) out.up = up;
  } else if (h && typeof h === 'object') {
    const o = h as Record<string, unknown>;
    const st = typeof o.state === 'string' ? o.state : typeof o.status === 'string' ? o.status : undefined;
    if (st) out.state = st;
    for (const k of ['up', 'healthy', 'alive']) if (typeof o[k] === 'boolean') out.up = o[k] as boolean;
    if (out.up === undefined && st) {
      const up = upFromState(st);
      if (up !== undefined) out.up = up;
    }
    if (typeof o.configuredWeight === 'number') out.configuredWeight = o.configuredWeight;
    if (typeof o.reason === 'string') out.weightReason = o.reason;
    // keepalived's sorry server: in the table only while the quorum is lost
    if (o.sorryServer === true && !out.state) out.state = o.active ? 'sorry-active' : 'sorry-standby';
  }
  for (const k of ['healthy', 'up', 'alive']) if (typeof d[k] === 'boolean') out.up = d[k] as boolean;
  for (const k of ['configuredWeight', 'weightConfigured']) if (typeof d[k] === 'number') out.configuredWeight = d[k] as number;
  if (typeof d.weightReason === 'string') out.weightReason = d.weightReason;
  return out;
}
