// The parts of popt 1.19 (poptGetNextOpt, poptGetArg, poptBadOption, poptStrerror) that
// ipvsadm's behaviour depends on:
//  - "-" alone and words not starting with "-" are leftovers; "--" makes the rest leftovers;
//  - "--name" and "--name=value" match long options exactly (no abbreviations); a single dash
//    always starts a bundle of short options ("-Ln", "-w5", "-w=5");
//  - a required argument is the rest of the bundle, the "=value" part or the next word, whatever
//    it looks like; an optional argument (ipvsadm's -p) never takes a next word starting with "-";
//  - errors: unknown option, missing argument, option does not take an argument;
//  - the "bad option" of a message is the last command-line word consumed.

export type PoptArg = 'none' | 'required' | 'optional';

export interface PoptOption<T extends string> {
  long?: string;
  short?: string;
  arg: PoptArg;
  tag: T;
}

export type PoptErrorCode = 'NOARG' | 'BADOPT' | 'UNWANTEDARG';

export type PoptResult<T extends string> =
  | { kind: 'option'; tag: T; arg: string | null }
  | { kind: 'end' }
  | { kind: 'error'; code: PoptErrorCode };

const POPT_STRERROR: Record<PoptErrorCode, string> = {
  NOARG: 'missing argument',
  BADOPT: 'unknown option',
  UNWANTEDARG: 'option does not take an argument',
};

export function poptStrerror(code: PoptErrorCode): string {
  return POPT_STRERROR[code];
}

export class PoptContext<T extends string> {
  /** Index of the next word of args (popt's os->next, minus the program name). */
  private next = 0;
  /** Rest of a short-option bundle still to be read (popt's nextCharArg). */
  private nextCharArg: string | null = null;
  private restLeftover = false;
  private readonly leftovers: string[] = [];
  private nextLeftover = 0;

  constructor(
    private readonly args: readonly string[],
    private readonly table: readonly PoptOption<T>[],
  ) {}

  getNextOpt(): PoptResult<T> {
    for (;;) {
      if (this.nextCharArg === null && this.next === this.args.length) return { kind: 'end' };
      let opt: PoptOption<T> | undefined;
      let longArg: string | null = null;

      if (this.nextCharArg === null) {
        const word = this.args[this.next++]!;
        if (this.restLeftover || !word.startsWith('-') || word === '-') {
          this.leftovers.push(word);
          continue;
        }
        if (word === '--') {
          this.restLeftover = true;
          continue;
        }
        if (word[1] === '-') {
          const body = word.slice(2);
          const eq = body.indexOf('=');
          const name = eq >= 0 ? body.slice(0, eq) : body;
          if (eq >= 0) longArg = body.slice(eq + 1);
          opt = this.table.find((o) => o.long === name);
          if (!opt) return { kind: 'error', code: 'BADOPT' };
        } else {
          // a single dash never names a long option here (no option has POPT_ARGFLAG_ONEDASH)
          this.nextCharArg = word.slice(1);
        }
      }

      if (this.nextCharArg !== null) {
        const bundle = this.nextCharArg;
        this.nextCharArg = null;
        const c = bundle[0];
        opt = c === undefined ? undefined : this.table.find((o) => o.short === c);
        if (!opt) return { kind: 'error', code: 'BADOPT' };
        const rest = bundle.slice(1);
        if (rest !== '') this.nextCharArg = rest[0] === '=' ? rest.slice(1) : rest;
      }

      const o = opt!;
      if (o.arg === 'none') {
        if (longArg !== null || (this.nextCharArg !== null && this.nextCharArg[0] === '=')) {
          return { kind: 'error', code: 'UNWANTEDARG' };
        }
        return { kind: 'option', tag: o.tag, arg: null };
      }
      let arg: string | null;
      if (longArg !== null) {
        arg = longArg;
      } else if (this.nextCharArg !== null) {
        const rest = this.nextCharArg;
        arg = rest[0] === '=' ? rest.slice(1) : rest;
        this.nextCharArg = null;
      } else if (this.next === this.args.length) {
        if (o.arg !== 'optional') return { kind: 'error', code: 'NOARG' };
        arg = null;
      } else if (o.arg === 'optional' && this.args[this.next]!.startsWith('-')) {
        arg = null;
      } else {
        arg = this.args[this.next++]!;
      }
      return { kind: 'option', tag: o.tag, arg };
    }
  }

  /** poptGetArg: the next leftover word, in order. */
  getArg(): string | null {
    return this.nextLeftover < this.leftovers.length ? this.leftovers[this.nextLeftover++]! : null;
  }

  /** poptBadOption(POPT_BADOPTION_NOALIAS): the last word consumed. */
  badOption(): string {
    return this.next > 0 ? this.args[this.next - 1]! : '';
  }
}
