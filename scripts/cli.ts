/** Shared CLI plumbing: one-line errors with exit code 2 for bad input. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ParamError } from '../core/params.js';
import { ReportError } from '../reports/read.js';
import { BackendError } from '../kernels/backend.js';

export class UsageError extends Error {}

export function args<T extends NonNullable<ParseArgsConfig['options']>>(options: T, allowPositionals = false) {
  try {
    return parseArgs({ options, allowPositionals, strict: true });
  } catch (e) {
    const known = Object.keys(options).map((k) => `--${k}`).join(', ');
    throw new UsageError(`${(e as Error).message.split('\n')[0]} (allowed options: ${known})`);
  }
}

/** Run a CLI main: input errors print one line and exit 2; anything else is a bug and shows its stack. */
export function main(fn: () => Promise<number | void>): void {
  // Exit only once stdout and stderr have drained: process.exit would cut a long output piped to a file.
  const exit = (code: number): void => {
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  };
  fn().then(
    (code) => exit(code ?? 0),
    (e: unknown) => {
      if (e instanceof UsageError || e instanceof ParamError || e instanceof ReportError || e instanceof BackendError) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        exit(2);
        return;
      }
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      exit(1);
    },
  );
}

/** Call `fn` with each non-empty line a child writes to `stream` (a `\r` progress redraw counts as a line end). */
export function onLines(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let rest = '';
  stream.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split(/\r?\n|\r/);
    rest = lines.pop()!;
    for (const l of lines) if (l) fn(l);
  });
}
