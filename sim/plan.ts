import { JOBS, type SimJob } from './jobs.ts';
import type { LambdaFaults } from './lambda.ts';
import { type Faults, NO_FAULTS } from './network.ts';
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
  };
  readonly stream: { readonly shards: number; readonly reshards: number; readonly reshardFrom: number; readonly reshardTo: number; readonly maxLagMs: number; readonly meanGapMs: number };
}

/** The plan of `seed`; `job` picks the job by name instead of by the seed. */
export function planFor(seed: number, job?: string): SeedPlan {
  const rng = new Rng(seed ^ 0x5eed);
  const picked = job === undefined ? JOBS[rng.int(JOBS.length)] : JOBS.find((j) => j.name === job);
  if (!picked) throw new Error(`no simulated job ${job}; the jobs are ${JOBS.map((j) => j.name).join(', ')}`);
  const start = 10_000_000;
  const interval = rng.pick([3000, 5000]);
  // Two minutes of faults, then up to three fault-free minutes to catch up in.
  const minutes = 5;
  const faultsUntil = start + 2 * 60_000;
  // A few seeds run without faults: the fault-free path must hold too.
  const calm = rng.chance(0.05);
  const level = calm ? 0 : rng.pick([0.5, 1, 2]);
  return {
    seed,
    job: picked,
    start,
    interval,
    minutes,
    faultsUntil,
    taskTimeoutMs: rng.pick([5000, 15_000]),
    workerTimeoutMs: 30_000,
    faults: calm ? NO_FAULTS : { stall: 0.003 * level, stallMs: [2000, 40_000], error: 0.002 * level, lostResponse: 0.01 * level },
    lambdaFaults: { duplicate: 0.05 * level, crash: 0.02 * level, throttle: 0.02 * level },
    coordinator: { freeze: 0.3 * level, freezeMs: [5000, 45_000], crashAtStep: 0.004 * level, duplicate: 0.2 * level },
    stream: {
      shards: rng.between(1, 3),
      reshards: rng.between(0, 2),
      reshardFrom: start,
      reshardTo: faultsUntil,
      maxLagMs: rng.pick([0, 500, 1500]),
      meanGapMs: rng.pick([150, 400]),
    },
  };
}

/** One line that says what a seed ran, for reports. */
export function describePlan(p: SeedPlan): string {
  return `job ${p.job.name}, ${p.interval / 1000} s batches, ${p.stream.shards} shard(s), ${p.stream.reshards} reshard(s), lag ≤ ${p.stream.maxLagMs} ms, stall p=${p.faults.stall}`;
}
