import { CheckpointError, PlanChangedError } from '../core/errors.ts';
import { changedNodes, type JobGraph } from '../plan/graph.ts';
import type { Checkpoint } from './protocol.ts';

/**
 * Whether a stored checkpoint fits the job starting now, and the checkpoint of a job that has
 * none: the checks a coordinator makes before it takes a checkpoint over.
 */

/** The job as a starting coordinator sees it. */
export interface StartingJob {
  readonly graph: JobGraph;
  readonly fingerprint: string;
  readonly signatures: Checkpoint['signatures'];
  readonly batchInterval: number;
  /** `--allow-plan-change`: resume a checkpoint made by another plan, if its state still has nodes to go to. */
  readonly allowPlanChange: boolean;
  /** Where the checkpoint is, for messages (` in .sluice/wordcount`), or empty. */
  readonly where: string;
  warn(line: string): void;
}

/**
 * The checkpoint of a new job: its first batch is the next batch time after `now`.
 *
 * @example
 * ```ts
 * firstCheckpoint(job, clock.now()).lastCompleted; // the batch time before the first batch
 * ```
 */
export function firstCheckpoint(job: StartingJob, now: number): Checkpoint {
  const first = Math.floor(now / job.batchInterval) * job.batchInterval + job.batchInterval;
  return {
    job: job.graph.name,
    fingerprint: job.fingerprint,
    signatures: job.signatures,
    batchInterval: job.batchInterval,
    lastCompleted: first - job.batchInterval,
    sourceState: {},
    state: {},
    rates: {},
  };
}

/**
 * A stored checkpoint, checked against the job, with the job's plan. Throws a
 * {@link CheckpointError} (a {@link PlanChangedError} for another plan) saying what to do when
 * it does not fit.
 *
 * @example
 * ```ts
 * const checkpoint = item ? resumeCheckpoint(item.value, job) : firstCheckpoint(job, now);
 * ```
 */
export function resumeCheckpoint(old: Checkpoint, job: StartingJob): Checkpoint {
  const { graph, where } = job;
  if (old.batchInterval !== job.batchInterval) {
    throw new CheckpointError(
      `the checkpoint${where} was made with a batch interval of ${old.batchInterval} ms, the job now has ${job.batchInterval} ms; batch times would not line up. Use a fresh state directory.`,
    );
  }
  if (old.fingerprint !== job.fingerprint && !job.allowPlanChange) {
    const changed = changedNodes(old.signatures, job.signatures);
    throw new PlanChangedError(
      `the checkpoint${where} was made by a different plan of job ${graph.name}; nodes changed: ${changed.join(', ') || '(job options)'}. ` +
        'Start from scratch with --reset (or a fresh state directory), or pass --allow-plan-change to resume anyway.',
      changed,
    );
  }
  if (old.fingerprint !== job.fingerprint) {
    // Resuming a changed plan is allowed only if every node with state still exists under its id.
    const ids = new Set(graph.stateful.map((s) => s.node.id));
    const orphaned = Object.keys(old.state).filter((id) => !ids.has(id));
    if (orphaned.length) {
      throw new CheckpointError(
        `the checkpoint${where} holds state of ${orphaned.join(', ')}, which the changed job no longer has under ${orphaned.length > 1 ? 'those ids' : 'that id'}; ` +
          'give stateful streams stable ids with .named(...) so they survive changes, or start from a fresh state directory',
      );
    }
    job.warn(`resuming job ${graph.name} with a changed plan (nodes changed: ${changedNodes(old.signatures, job.signatures).join(', ')})`);
  }
  return { ...old, fingerprint: job.fingerprint, signatures: job.signatures };
}
