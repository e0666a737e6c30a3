import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { toMillis } from '../api/duration.ts';
import { SluiceError } from '../api/errors.ts';
import { buildGraph } from '../api/job.ts';
import { Coordinator, PROTOCOL_STEPS, type ProtocolStep } from '../engine/coordinator.ts';
import { loadJob } from '../local/loadJob.ts';
import { consoleLog, progressMetrics } from '../local/log.ts';
import { createLocalRuntime, type LocalRuntime } from '../local/runtime.ts';

const USAGE = `Usage: sluice run <job.ts> [options]

Runs a job locally: one coordinator, tasks in this process or on worker threads,
state under .sluice/<job>/ (resumed when it exists).

Options:
  --batches N           stop after N batches
  --duration D          stop after D of wall time (e.g. 30s, 5m)
  --parallelism K       run tasks on K worker threads (like Spark's local[K]); default 1
  --state-dir DIR       where checkpoints and lineage live; default .sluice/<job name>
  --reset               delete the state directory first (start from scratch)
  --allow-plan-change   resume from a checkpoint made by a changed job
  --quiet               no progress lines
  -h, --help            this help

Ctrl-C stops after the current batch; a second Ctrl-C stops at once (the next run resumes).
`;

class UsageError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number >= 1, got "${v}"`);
  return n;
}

/**
 * Crash injection for the restart tests: `SLUICE_CRASH_AT=<step>@<n>` exits the process (code 137,
 * as a SIGKILL would) right after the n-th occurrence of a protocol step.
 */
function crashHook(spec: string | undefined): ((step: ProtocolStep) => void) | undefined {
  if (!spec) return undefined;
  const [step, nth] = spec.split('@');
  if (!(PROTOCOL_STEPS as readonly string[]).includes(step)) throw new UsageError(`SLUICE_CRASH_AT: unknown step ${step}; steps: ${PROTOCOL_STEPS.join(', ')}`);
  let left = Number(nth ?? '1');
  return (s) => {
    if (s === step && --left === 0) process.exit(137);
  };
}

/** Runs the `sluice` command with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const log = consoleLog();
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        batches: { type: 'string' },
        duration: { type: 'string' },
        parallelism: { type: 'string' },
        'state-dir': { type: 'string' },
        reset: { type: 'boolean' },
        'allow-plan-change': { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help || positionals.length === 0) {
      process.stdout.write(USAGE);
      return values.help ? 0 : 2;
    }
    const [command, file, ...extra] = positionals;
    if (command !== 'run') throw new UsageError(`unknown command "${command}"; try: sluice run <job.ts>`);
    if (!file) throw new UsageError('sluice run needs a job file: sluice run <job.ts>');
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const batches = positiveInt(values.batches, '--batches') ?? Number.POSITIVE_INFINITY;
    const parallelism = positiveInt(values.parallelism, '--parallelism') ?? 1;
    let durationMs: number | undefined;
    try {
      durationMs = values.duration === undefined ? undefined : toMillis(values.duration, '--duration');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const onStep = crashHook(process.env.SLUICE_CRASH_AT);

    const job = await loadJob(file);
    const graph = buildGraph(job);
    const quiet = values.quiet ?? false;
    const info = consoleLog({ quiet });
    const rt = await createLocalRuntime(job, graph, {
      jobFile: file,
      stateDir: values['state-dir'],
      parallelism,
      log: info,
      metrics: quiet ? undefined : progressMetrics((l) => process.stderr.write(`${l}\n`)),
      onStep,
      allowPlanChange: values['allow-plan-change'],
    });
    if (values.reset) await rm(rt.stateDir, { recursive: true, force: true });
    return await runLoop(job.options.name, new Coordinator(graph, job.options, rt), rt, { batches, durationMs, quiet });
  } catch (e) {
    // parseArgs reports unknown or malformed flags with ERR_PARSE_ARGS_* codes.
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      log.warn(`UsageError: ${(e as Error).message}; see sluice --help`);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    log.warn(`${err.name}: ${err.message}`);
    if (process.env.SLUICE_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

async function runLoop(
  name: string,
  coordinator: Coordinator,
  rt: LocalRuntime,
  opts: { batches: number; durationMs: number | undefined; quiet: boolean },
): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) {
      rt.log.warn('stopping now; the next run resumes from the last committed batch');
      process.exit(130);
    }
    rt.log.info('stopping after the current batch (Ctrl-C again to stop at once)');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await coordinator.start();
    const from = coordinator.resumed ? `resuming after batch ${coordinator.lastCompleted}` : 'fresh state';
    rt.log.info(`job ${name}: next batch at ${new Date(coordinator.nextBatchTime).toISOString()} (state in ${rt.stateDir}, ${from})`);
    const deadline = opts.durationMs === undefined ? Number.POSITIVE_INFINITY : rt.clock.now() + opts.durationMs;
    let n = 0;
    while (!stop.signal.aborted && n < opts.batches) {
      const t = coordinator.nextBatchTime;
      if (t > deadline) break;
      await rt.clock.sleepUntil(t, stop.signal);
      if (stop.signal.aborted) break;
      await coordinator.runNextBatch();
      n++;
    }
    rt.log.info(`job ${name}: stopped after ${n} batch(es); last committed batch ${coordinator.lastCompleted}`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await coordinator.stop();
    await coordinator.releaseLease().catch(() => undefined);
    await rt.close();
  }
}
