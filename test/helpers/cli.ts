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
