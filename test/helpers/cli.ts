import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../..');
const SLUICE = join(ROOT, 'bin/sluice.mjs');

/** How a `sluice` process ended and what it printed. */
export interface SluiceRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link runSluice}. */
export interface RunSluiceOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Sees stdout as it grows; `signal` sends the process a signal (e.g. SIGINT once a batch printed). */
  readonly onStdout?: (all: string, signal: (s: NodeJS.Signals) => void) => void;
  /** Sees stderr (progress lines) as it grows. */
  readonly onStderr?: (all: string, signal: (s: NodeJS.Signals) => void) => void;
  /** Sends SIGKILL after this many ms. */
  readonly killAfterMs?: number;
}

/** Runs the real `sluice` command in a child process. */
export function runSluice(args: string[], opts: RunSluiceOptions = {}): Promise<SluiceRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SLUICE, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const signal = (s: NodeJS.Signals) => child.kill(s);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      opts.onStdout?.(stdout, signal);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(stderr, signal);
    });
    const timer = opts.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, stdout, stderr });
    });
  });
}

/** A `sluice` process that serves a page (`run --ui`, `ui`): the URL it prints, a way to stop it (SIGINT), and how it ended. */
export interface ServingSluice {
  readonly url: Promise<string>;
  stop(): void;
  readonly ended: Promise<SluiceRun>;
}

/**
 * Runs `sluice <args>`, which prints `… at http://127.0.0.1:<port>/` on stderr when its page is up;
 * `url` rejects if the process ends first. Killed after `killAfterMs` (default 110 s) if still running.
 */
export function serveSluice(args: string[], opts: { env?: Record<string, string>; killAfterMs?: number } = {}): ServingSluice {
  let signal: ((s: NodeJS.Signals) => void) | undefined;
  let found: ((url: string) => void) | undefined;
  const url = new Promise<string>((resolve) => (found = resolve));
  const ended = runSluice(args, {
    env: opts.env,
    killAfterMs: opts.killAfterMs ?? 110_000,
    onStderr: (all, send) => {
      signal = send;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(all);
      if (m) found!(m[1]);
    },
  });
  return {
    url: Promise.race([
      url,
      ended.then((r): never => {
        throw new Error(`sluice ${args[0]} ended before it served a page: ${r.stderr}`);
      }),
    ]),
    stop: () => signal?.('SIGINT'),
    ended,
  };
}

/** The time of day a progress line prints for a batch time (`HH:MM:SS.mmm`, followed by ` UTC` in the line). */
export function timeOfDay(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/** One complete progress line of `sluice run` (written after the batch committed). */
export interface ProgressLine {
  /** The batch's time of day, as {@link timeOfDay} prints it. */
  readonly time: string;
  /** How long the batch ran, from the time it was due: its scheduling delay plus its processing time. */
  readonly ranMs: number;
}

/** The progress lines in `stderr` so far, one per committed batch, in order; a line still being written is left out. */
export function progressLines(stderr: string): ProgressLine[] {
  const re = /^batch (\d\d:\d\d:\d\d\.\d{3}) UTC .* processed in (\d+) ms {2}scheduling delay (\d+) ms\n/gm;
  return [...stderr.matchAll(re)].map((m) => ({ time: m[1], ranMs: Number(m[2]) + Number(m[3]) }));
}

/** The time of the first batch a run announced at start (`job <name>: next batch at <ISO time>`). */
export function announcedNextBatch(stderr: string): number {
  const m = /^job \S+: next batch at (\S+) /m.exec(stderr);
  if (!m) throw new Error(`no "next batch at" line in:\n${stderr}`);
  return Date.parse(m[1]);
}
