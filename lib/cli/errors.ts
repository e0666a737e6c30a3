import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../core/errors.ts';

/** A command line that cannot work (a bad flag value, a missing file): exit code 2. */
export class UsageError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes: 1 for an error while running, 2 for a command line that cannot work. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Every error in the `cause` chain, outermost first (worker threads and tasks wrap the user's error). */
function causes(e: unknown): Error[] {
  const out: Error[] = [];
  for (let c: unknown = e; c instanceof Error && !out.includes(c); c = c.cause) out.push(c);
  return out;
}

/**
 * Where in the job file an error was raised: the first stack frame in `jobFile` of the error or
 * of one of its causes, as `file:line:column` relative to the working directory. A typo like
 * `.prnt()` then points at the line to fix without a full stack.
 */
export function locationInFile(e: unknown, jobFile: string): string | undefined {
  const wanted = resolve(jobFile);
  for (const err of causes(e)) {
    for (const line of (err.stack ?? '').split('\n').slice(1)) {
      const m = /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
      if (!m) continue;
      const path = m[1].startsWith('file://') ? fileURLToPath(m[1].replace(/\?.*$/, '')) : m[1];
      if (resolve(path) === wanted) return `${relative(process.cwd(), wanted) || wanted}:${m[2]}:${m[3]}`;
    }
  }
  return undefined;
}

/**
 * The `error: …` line for a failure: usage errors as their message, others with their name
 * (`CheckpointError: …`) and, for errors raised while the job file was loaded or built, where in
 * it (`at job.ts:7:5`).
 */
export function errorLine(e: unknown, jobFile?: string): string {
  const err = e instanceof Error ? e : new Error(String(e));
  const text = err instanceof UsageError ? err.message : `${err.name}: ${err.message}`;
  const at = jobFile === undefined ? undefined : locationInFile(err, jobFile);
  return `error: ${text}${at ? `\n  at ${at}` : ''}`;
}

/** Whether full stacks were asked for (`--debug` or `SLUICE_DEBUG=1`). */
export function debugWanted(flag: boolean | undefined): boolean {
  return flag === true || (process.env.SLUICE_DEBUG !== undefined && process.env.SLUICE_DEBUG !== '' && process.env.SLUICE_DEBUG !== '0');
}

/** Writes the error line, and the whole stack when debugging; returns the exit code. */
export function reportError(e: unknown, options: { jobFile?: string; debug?: boolean } = {}): number {
  process.stderr.write(`${errorLine(e, options.jobFile)}\n`);
  if (options.debug) for (const err of causes(e)) if (err.stack) process.stderr.write(`${err.stack}\n`);
  return e instanceof UsageError ? EXIT.usage : EXIT.failed;
}
