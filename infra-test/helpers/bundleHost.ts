import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

/** One deployed function: its bundle loaded in its own process with its own environment. */
export interface BundleHost {
  /** Runs the bundle's `handler` export on `event`, with `timeoutMs` as the function's remaining time. */
  invoke(handler: 'coordinator' | 'worker', event: unknown, timeoutMs: number): Promise<unknown>;
  /** The process's output so far (the handlers' logs). */
  output(): string;
  stop(): Promise<void>;
}

interface Reply {
  readonly id?: number;
  readonly ready?: boolean;
  readonly ok?: boolean;
  readonly value?: unknown;
  readonly error?: { name: string; message: string; stack?: string };
}

/**
 * Starts a process that imports a function's deployment bundle (`<dir>/index.mjs`) with exactly `env` (plus
 * PATH), as Lambda starts a function with the variables its configuration sets: what the bundle
 * cannot reach through `env`, it cannot reach. Handler errors come back as rejections.
 *
 * @example
 * ```ts
 * const worker = await startBundleHost(bundleJob('examples/kinesis-wordcount.ts').worker.dir, 'wordcount-worker', { SLUICE_STREAM: 'clicks', ... });
 * const result = await worker.invoke('worker', task, 60_000);
 * await worker.stop();
 * ```
 */
export async function startBundleHost(dir: string, functionName: string, env: Record<string, string>): Promise<BundleHost> {
  const child: ChildProcess = fork(join(import.meta.dirname, 'bundleHost.mjs'), [join(dir, 'index.mjs')], {
    env: { PATH: process.env.PATH ?? '', ...env },
    execArgv: [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${functionName} exited (${signal ?? code}) during an invocation:\n${out}`));
    pending.clear();
  });
  await new Promise<void>((resolve, reject) => {
    const onReady = (m: Reply) => {
      if (m.ready) resolve();
    };
    child.on('message', onReady);
    child.once('exit', (code) => reject(new Error(`${functionName} could not load its bundle (exit ${code}):\n${out}`)));
  });
  child.on('message', (m: Reply) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(Object.assign(new Error(`${functionName}: ${m.error!.name}: ${m.error!.message}`), { name: m.error!.name }));
  });
  return {
    invoke: (handler, event, timeoutMs) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ id, handler, event, timeoutMs, functionName });
      }),
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
