import { JOBS, type SimJob } from './jobs.ts';
import type { LambdaFaults } from './lambda.ts';
import type { Faults } from './network.ts';
import { Rng } from './random.ts';

/** Everything a seed decides before the run: the job, the workload, and how hard faults come. */
export interface SeedPlan {
  readonly seed: number;
  readonly job: SimJob;
  /** Virtual time of the first coordinator invocation (ms). */
  readonly start: number;
  readonly interval: number;
  /** At most this many minutes of coordinator invocations; after `faultsUntil` the job must catch up in them. */
  readonly minutes: number;
  readonly faultsUntil: number;
  readonly taskTimeoutMs: number;
  /** Map output and cached partitions up to this size travel in task results (0: every one is a blob). */
  readonly inlineLimit: number;
  /** Tasks and results over this size go through the blob store instead of the Invoke payload. */
  readonly payloadLimit: number;
  /** Batch records and checkpoints over this size are kept in a blob. */
  readonly metaSpillBytes: number;
  /** The meta store refuses larger values (DynamoDB's 400 KB item limit, scaled to this world's lineage). */
  readonly metaItemLimit: number;
  readonly workerTimeoutMs: number;
  readonly faults: Faults;
  readonly lambdaFaults: LambdaFaults;
  readonly coordinator: {
    /** A coordinator invocation freezes for a while (its lease may expire meanwhile). */
    readonly freeze: number;
    readonly freezeMs: readonly [number, number];
    /** The coordinator dies right after a protocol step (per step). */
    readonly crashAtStep: number;
    /** EventBridge delivers a minute's event twice. */
    readonly duplicate: number;
    /** The coordinator is slow to go on after a protocol step (per step). */
    readonly slowStep: number;
  };
  /**
   * The job's coordinatorBatchRecords: 0 (every batch fans out), one no batch reaches (every batch
   * runs in the coordinator), or one that this world's batches cross both ways (the job switches).
   */
  readonly coordinatorBatchRecords: number;
  readonly stream: { readonly shards: number; readonly reshards: number; readonly reshardFrom: number; readonly reshardTo: number; readonly maxLagMs: number; readonly meanGapMs: number };
  /**
   * The job's writeEmptyBatches in each coordinator invocation: never, always, or `mixed` (odd
   * minutes write empty batches, and a minute's duplicate event does the opposite of its
   * minute), so that coordinators that disagree overlap on one batch.
   */
  readonly writeEmptyBatches: 'never' | 'always' | 'mixed';
  /** Stretches of time in which no record arrives: the job goes quiet, and wakes when records come again. */
  readonly idle: readonly (readonly [from: number, to: number])[];
  /** The job's idleAfter (idle mode), or undefined (off). */
  readonly idleAfter: number | undefined;
}

/** The plan of `seed`; `job` picks the job by name instead of by the seed. */
export function planFor(seed: number, job?: string): SeedPlan {
  const rng = new Rng(seed ^ 0x5eed);
  const picked = job === undefined ? JOBS[rng.int(JOBS.length)] : JOBS.find((j) => j.name === job);
  if (!picked) throw new Error(`no simulated job ${job}; the jobs are ${JOBS.map((j) => j.name).join(', ')}`);
  const start = 10_000_000;
  const interval = rng.pick([3000, 5000]);
  // Three minutes of faults, then up to three fault-free minutes to catch up in.
  const minutes = 6;
  const faultsUntil = start + 3 * 60_000;
  // Swarm testing: each seed turns on its own subset of the kinds of fault, at its own level, so
  // that one kind is not always drowned by another (a frozen coordinator hides slow workers).
  const level = rng.pick([0.5, 1, 2]);
  const on = (p: number) => (rng.chance(0.5) ? p * level : 0);
  return {
    seed,
    job: picked,
    start,
    interval,
    minutes,
    faultsUntil,
    taskTimeoutMs: rng.pick([5000, 15_000]),
    inlineLimit: rng.pick([0, 64 * 1024]),
    payloadLimit: rng.pick([2048, 6 * 1024 * 1024]),
    // Half the seeds scale DynamoDB down: small items, and a spill size to match.
    ...(rng.chance(0.5) ? { metaSpillBytes: 256, metaItemLimit: 600 } : { metaSpillBytes: 64 * 1024, metaItemLimit: 350 * 1024 }),
    workerTimeoutMs: 30_000,
    faults: { stall: on(0.003), stallMs: [1000, 40_000], error: on(0.002), lostResponse: on(0.02), lateWrite: on(0.05) },
    lambdaFaults: { duplicate: on(0.1), crash: on(0.02), throttle: on(0.02), pause: on(0.3), pauseMs: [1000, 40_000] },
    coordinator: { freeze: on(0.3), freezeMs: [1000, 45_000], crashAtStep: on(0.004), duplicate: on(0.3), slowStep: on(0.02) },
    stream: {
      shards: rng.between(1, 4),
      reshards: rng.between(0, 2),
      reshardFrom: start,
      reshardTo: faultsUntil,
      maxLagMs: rng.pick([0, 1000, 3000]),
      meanGapMs: rng.pick([50, 150]),
    },
    // Drawn last, so the draws above stay what they were before these options existed.
    writeEmptyBatches: rng.pick(['never', 'never', 'always', 'mixed'] as const),
    coordinatorBatchRecords: rng.pick([0, 1_000_000_000, 5, 20, 60]),
    idle: Array.from({ length: rng.pick([0, 0, 1, 2]) }, () => {
      const from = rng.between(start, faultsUntil);
      return [from, from + rng.pick([20_000, 45_000, 90_000])] as const;
    }),
    idleAfter: rng.pick([undefined, undefined, 15_000, 30_000]),
  };
}

/** One line that says what a seed ran, for reports. */
export function describePlan(p: SeedPlan): string {
  const faults = Object.entries({ ...p.faults, ...p.lambdaFaults, ...p.coordinator })
    .filter(([, v]) => typeof v === 'number' && v > 0)
    .map(([k]) => k);
  return `job ${p.job.name}, ${p.interval / 1000} s batches, empty batches written ${p.writeEmptyBatches}, coordinator batches ≤ ${p.coordinatorBatchRecords} records, ${p.stream.shards} shard(s), ${p.stream.reshards} reshard(s), lag ≤ ${p.stream.maxLagMs} ms, inline ≤ ${p.inlineLimit} B, payloads ≤ ${p.payloadLimit} B, meta items ≤ ${p.metaItemLimit} B (spill over ${p.metaSpillBytes} B), faults: ${faults.join(' ') || 'none'}${p.idle.length ? `, idle ${p.idle.map(([a, b]) => `${(a - p.start) / 1000}-${(b - p.start) / 1000} s`).join(', ')}` : ''}${p.idleAfter ? `, idleAfter ${p.idleAfter / 1000} s` : ''}`;
}
