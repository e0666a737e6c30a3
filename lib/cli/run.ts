import { rm } from 'node:fs/promises';
import { buildGraph } from '../api/job.ts';
import { Coordinator, PROTOCOL_STEPS, type ProtocolStep } from '../engine/coordinator.ts';
import { type LocalJobOptions, localJobOptions, withLocalJobOptions } from '../local/jobOptions.ts';
import { loadJob } from '../node/loadJob.ts';
import { consoleLog, progressMetrics } from '../local/log.ts';
import { createLocalRuntime, type LocalRuntime } from '../local/runtime.ts';
import { startUi, type UiServer } from '../ui/server.ts';
import { liveSource } from '../ui/sources.ts';
import { debugWanted, EXIT, reportError, UsageError } from './errors.ts';
import { durationMs, portFlag, positiveInt } from './options.ts';

/** The flags of `sluice run`, as commander hands them over (strings, unchecked). */
export interface RunFlags {
  readonly batches?: string;
  readonly duration?: string;
  readonly parallelism?: string;
  readonly batchInterval?: string;
  readonly onRecordError?: string;
  /** `--write-empty-batches` (true) or `--no-write-empty-batches` (false); unset keeps the job's. */
  readonly writeEmptyBatches?: boolean;
  readonly stateDir?: string;
  readonly reset?: boolean;
  readonly allowPlanChange?: boolean;
  readonly quiet?: boolean;
  /** `--ui` (true: the default port) or `--ui <port>`. */
  readonly ui?: string | boolean;
  readonly debug?: boolean;
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

function onRecordErrorFlag(v: string | undefined): LocalJobOptions['onRecordError'] {
  if (v === undefined || v === 'fail' || v === 'dead-letter') return v;
  throw new UsageError(`--on-record-error must be fail or dead-letter, got "${v}"`);
}

/** `sluice run <job>`: runs a job locally until its batches or duration are done, or Ctrl-C; resolves to the exit code. */
export async function runCommand(file: string, flags: RunFlags): Promise<number> {
  const debug = debugWanted(flags.debug);
  try {
    const batches = positiveInt(flags.batches, '--batches') ?? Number.POSITIVE_INFINITY;
    const parallelism = positiveInt(flags.parallelism, '--parallelism') ?? 1;
    const duration = durationMs(flags.duration, '--duration');
    const uiPort = portFlag(flags.ui, '--ui');
    // Checked here so a wrong flag is a usage error, not a failure of the job.
    durationMs(flags.batchInterval, '--batch-interval');
    const jobOptions = localJobOptions({ batchInterval: flags.batchInterval, onRecordError: onRecordErrorFlag(flags.onRecordError), writeEmptyBatches: flags.writeEmptyBatches });
    const onStep = crashHook(process.env.SLUICE_CRASH_AT);
    const quiet = flags.quiet ?? false;

    let job;
    let graph;
    try {
      job = withLocalJobOptions(await loadJob(file), jobOptions);
      graph = buildGraph(job);
    } catch (e) {
      // Raised by the user's code or about it: point at the line in the job file.
      return reportError(e, { jobFile: file, debug });
    }
    const rt = await createLocalRuntime(job, graph, {
      jobFile: file,
      jobOptions,
      stateDir: flags.stateDir,
      parallelism,
      log: consoleLog({ quiet }),
      metrics: quiet ? undefined : progressMetrics((l) => process.stderr.write(`${l}\n`)),
      onStep,
      allowPlanChange: flags.allowPlanChange,
    });
    if (flags.reset) await rm(rt.stateDir, { recursive: true, force: true });
    const coordinator = new Coordinator(graph, job.options, rt);
    let ui: UiServer | undefined;
    if (uiPort !== undefined) {
      ui = await startUi(liveSource({ graph, history: coordinator.history, blobs: rt.blobs, where: rt.stateDir }), uiPort);
      // Printed even with --quiet: the URL is what --ui asked for.
      process.stderr.write(`Streaming UI at ${ui.url}\n`);
    }
    try {
      return await runLoop(job.options.name, coordinator, rt, { batches, durationMs: duration });
    } finally {
      await ui?.close();
    }
  } catch (e) {
    return reportError(e, { jobFile: file, debug });
  }
}

async function runLoop(name: string, coordinator: Coordinator, rt: LocalRuntime, opts: { batches: number; durationMs: number | undefined }): Promise<number> {
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
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await coordinator.stop();
    await coordinator.releaseLease().catch(() => undefined);
    await rt.close();
  }
}
