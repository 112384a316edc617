// `ipvsadm -R`: stdin read line by line with the tokenizer of ipvsadm's config_stream.c, each
// line run as a command of its own.
//
// config_stream_read's rules, kept exactly:
//  - tokens are runs of anything but blank, tab, CR and newline (at most 4096 characters; a
//    longer run is cut into several tokens); a newline ends the line;
//  - every token "ipvsadm" is dropped, wherever it is;
//  - there is no comment syntax in effect: the code meant to skip "#..." only looks at the
//    delimiter after a token, which is never "#", so "# comment" is a command line like any other;
//  - blanks after the last token followed by the end of input lose that line (the reader
//    returns "nothing" there), and the end of input after a line's tokens ends that line.
// The caller runs lines of more than one word (the first word is argv[0]); a validation failure
// ends the whole restore (the process exits), other failures are reported and it goes on; the
// status of the last line run is the result.

const MAX_TOKEN = 4096;

/** A character stream over stdin with one character of push-back (fgetc/ungetc). */
export class CharReader {
  private buf = '';
  private pos = 0;
  private done = false;
  private readonly iter: AsyncIterator<string | Uint8Array> | null;
  private readonly decoder = new TextDecoder('utf-8');

  constructor(source: string | AsyncIterable<string | Uint8Array>) {
    if (typeof source === 'string') {
      this.buf = source;
      this.done = true;
      this.iter = null;
    } else {
      this.iter = source[Symbol.asyncIterator]();
    }
  }

  /** Makes a character available; false at the end of input. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.buf.length) {
      if (this.done || !this.iter) return false;
      const r = await this.iter.next();
      if (r.done) {
        this.done = true;
        const tail = this.decoder.decode();
        this.buf = tail;
        this.pos = 0;
        if (!tail) return false;
        continue;
      }
      this.buf = typeof r.value === 'string' ? r.value : this.decoder.decode(r.value, { stream: true });
      this.pos = 0;
    }
    return true;
  }

  /** The next character if it is already buffered (undefined: ask peek()). */
  peekSync(): string | undefined {
    return this.buf[this.pos];
  }

  /** Consumes a character that peekSync or peek returned. */
  skip(): void {
    this.pos++;
  }

  async peek(): Promise<string | null> {
    if (this.pos < this.buf.length || (await this.fill())) return this.buf[this.pos]!;
    return null;
  }

  async getc(): Promise<string | null> {
    const c = await this.peek();
    if (c !== null) this.pos++;
    return c;
  }

  /** Only after a getc or peek of a character: steps back over it. */
  ungetc(): void {
    this.pos--;
  }
}

function isDelim(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

/**
 * config_stream_read: the next line as [first, ...tokens], or null at the end of input (or when
 * blanks run into the end of input).
 */
export async function readConfigLine(r: CharReader, first: string): Promise<string[] | null> {
  const line = [first];
  let tokens = 0;
  let tail = '';
  for (;;) {
    const c = r.peekSync() ?? (await r.peek());
    if (c === null) break;
    if (isDelim(c)) {
      // the token conversion matched nothing: skip blanks up to the next token or newline
      for (;;) {
        const d = await r.getc();
        if (d === null) return null;
        if (d === '\n') return line;
        if (d === '\t' || d === '\r' || d === ' ') continue;
        r.ungetc();
        break;
      }
      continue;
    }
    let token = '';
    for (;;) {
      const d = r.peekSync() ?? (await r.peek());
      if (d === null || isDelim(d) || token.length >= MAX_TOKEN) break;
      token += d;
      r.skip();
    }
    const d = r.peekSync() ?? (await r.peek());
    if (d !== null && isDelim(d)) {
      tail = d;
      r.skip();
    }
    if (token !== 'ipvsadm') {
      tokens++;
      line.push(token);
    }
    if (tail === '\n') return line;
  }
  return tokens === 0 ? null : line;
}

/**
 * restore_table: runs each line through `run` (which may end the whole run by throwing) and
 * returns the status of the last line run.
 */
export async function restoreTable(r: CharReader, argv0: string, run: (args: string[]) => Promise<number>): Promise<number> {
  let result = 0;
  for (;;) {
    const line = await readConfigLine(r, argv0);
    if (line === null) break;
    if (line.length > 1) result = await run(line.slice(1));
  }
  return result;
}
