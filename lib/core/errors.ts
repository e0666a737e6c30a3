/**
 * One error hierarchy for everything Sluice reports. Each subclass sets `name`, so a caught
 * error says what kind of mistake it is, and carries the context that locates it.
 *
 * @example
 * ```ts
 * import { SluiceError } from 'sluice';
 * try { defineJob({ name: 'x', batchInterval: 'soon' }, () => {}); }
 * catch (e) { if (e instanceof SluiceError) console.error(e.message); }
 * ```
 */
export class SluiceError extends Error {
  /** The plan node the error concerns, when there is one. */
  readonly nodeId?: string;
  /** The batch time (ms) the error happened in, when there is one. */
  readonly batchTime?: number;
  /** The partition the error happened in, when there is one. */
  readonly partition?: number;

  constructor(
    message: string,
    context: { nodeId?: string; batchTime?: number; partition?: number; cause?: unknown } = {},
  ) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'SluiceError';
    if (context.nodeId !== undefined) this.nodeId = context.nodeId;
    if (context.batchTime !== undefined) this.batchTime = context.batchTime;
    if (context.partition !== undefined) this.partition = context.partition;
  }
}

/**
 * A job, option or argument that cannot work, found while the job is built or configured.
 *
 * @example
 * ```ts
 * // throws JobDefinitionError: numPartitions must be a whole number >= 1, got 0
 * stream.repartition(0);
 * ```
 */
export class JobDefinitionError extends SluiceError {
  constructor(message: string, context: { nodeId?: string; cause?: unknown } = {}) {
    super(message, context);
    this.name = 'JobDefinitionError';
  }
}

/**
 * A user function, decoder or record failed while a batch ran (for example a pair operator met
 * a record that is not a `[key, value]` pair). The batch is retried, never skipped. It is the one
 * error of a user function that threw: it names the operator (`nodeId`), the batch and partition,
 * and what the function was called on (`record`, or `key` for a function of a key's values).
 *
 * @example
 * ```ts
 * // RecordError: reduceByKey-1 expects [key, value] pairs, got the string "hello"
 * try { await runBatches(options, build); } catch (e) { if (e instanceof RecordError) console.error(e.nodeId, e.batchTime, e.partition); }
 * ```
 */
export class RecordError extends SluiceError {
  // `declare`: an own property only when the error concerns a record or a key, which `in` then tells.
  /** The record the function was called on (for a function of a whole partition, its records), when the error concerns one. */
  declare readonly record?: unknown;
  /** The key whose values the function was called on (reduce, combine, state and window functions), when the error concerns one. */
  declare readonly key?: unknown;

  constructor(
    message: string,
    context: { nodeId?: string; batchTime?: number; partition?: number; record?: unknown; key?: unknown; cause?: unknown } = {},
  ) {
    super(message, context);
    this.name = 'RecordError';
    // `in`, not `!== undefined`: a record or key may itself be undefined.
    if ('record' in context) this.record = context.record;
    if ('key' in context) this.key = context.key;
  }
}

/**
 * The durable state (checkpoint, lineage, lease) refuses an action: another coordinator holds
 * the lease, or the checkpoint was written by a different plan.
 *
 * @example
 * ```ts
 * // CheckpointError: the checkpoint in .sluice/wordcount was made by a different plan; changed nodes: map-1
 * ```
 */
export class CheckpointError extends SluiceError {
  constructor(message: string, context: { nodeId?: string; batchTime?: number; cause?: unknown } = {}) {
    super(message, context);
    this.name = 'CheckpointError';
  }
}

/**
 * Another coordinator holds the job's lease and it has not expired: this one may not run
 * batches. The AWS coordinator waits for it and then leaves its minute to the holder.
 *
 * @example
 * ```ts
 * // LeaseHeldError: job wordcount is already running: coordinator host:123 holds the lease until 2026-01-01T00:00:30.000Z
 * try { await coordinator.start(); } catch (e) { if (e instanceof LeaseHeldError) console.log(`held by ${e.holder}`); }
 * ```
 */
export class LeaseHeldError extends CheckpointError {
  /** Who holds the lease. */
  readonly holder: string;
  constructor(message: string, holder: string) {
    super(message);
    this.name = 'LeaseHeldError';
    this.holder = holder;
  }
}

/**
 * A coordinator's epoch has been superseded: another coordinator took the lease and the job's
 * state over, so every write of this one is refused (fencing). Nothing it did after that counts.
 *
 * @example
 * ```ts
 * // FencedError: job wordcount: could not commit batch 5000: another coordinator has taken over (this one's epoch 3 is fenced)
 * ```
 */
export class FencedError extends CheckpointError {
  constructor(message: string) {
    super(message);
    this.name = 'FencedError';
  }
}

/**
 * The stored checkpoint was made by a different plan of the job (its nodes or options changed),
 * and resuming a changed plan was not allowed (`--allow-plan-change`). Its {@link changedNodes}
 * say which nodes differ, so a caller need not read them out of the message.
 *
 * @example
 * ```ts
 * // PlanChangedError: the checkpoint in .sluice/wordcount was made by a different plan of job wordcount; nodes changed: map-1. ...
 * try { await coordinator.start(); } catch (e) { if (e instanceof PlanChangedError) console.log(e.changedNodes); }
 * ```
 */
export class PlanChangedError extends CheckpointError {
  /** Ids of the nodes whose definition differs from the checkpoint's plan (empty when only job options changed). */
  readonly changedNodes: readonly string[];
  constructor(message: string, changedNodes: readonly string[]) {
    super(message);
    // Named as its parent: callers and the CLI's "error: CheckpointError: ..." line predate this class.
    this.name = 'CheckpointError';
    this.changedNodes = changedNodes;
  }
}

/**
 * A task could not read the shuffle output of a map task (lost blob). The coordinator recomputes
 * that map task from lineage and retries the reader.
 *
 * @example
 * ```ts
 * // FetchFailedError: shuffle blob shuffle/1000/reduceByKey-1.0/m3-a0 is missing
 * ```
 */
export class FetchFailedError extends SluiceError {
  /** Stage key of the map stage whose output was lost. */
  readonly mapStage: string;
  /** Map partition whose output was lost. */
  readonly mapPartition: number;
  constructor(message: string, mapStage: string, mapPartition: number) {
    super(message);
    this.name = 'FetchFailedError';
    this.mapStage = mapStage;
    this.mapPartition = mapPartition;
  }
}

/**
 * Internal: a quiet batch (no input, every stateful node at rest) met a record after all — data a
 * transform made from nothing, such as a `parallelize` dataset — before anything was written. The
 * coordinator runs the batch again in full.
 */
export class NotQuietError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'NotQuietError';
  }
}
