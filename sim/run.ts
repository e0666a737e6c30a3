import { check, reference } from './check.ts';
import { describePlan, planFor } from './plan.ts';
import { World } from './world.ts';

/** What one seed did and found. */
export interface SeedResult {
  readonly seed: number;
  readonly plan: string;
  readonly failures: string[];
  readonly batches: number;
  readonly steps: number;
  readonly invocations: number;
  /** Committed batches whose record said they run in the coordinator. */
  readonly inCoordinator: number;
  /** Batches done quiet (no input, no lineage record). */
  readonly quiet: number;
  /** Hash of the event order: one seed always gives the same. */
  readonly trace: string;
  readonly ms: number;
  readonly logs: string[];
}

/** Runs one seed: the faulty run, the model run over its committed input, and the checks. */
export async function runSeed(seed: number, job?: string): Promise<SeedResult> {
  const began = performance.now();
  const plan = planFor(seed, job);
  const world = new World(plan);
  let failures: string[];
  try {
    await world.run();
    failures = await check(world, await reference(world));
  } catch (e) {
    failures = [`the run threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`];
  }
  return {
    seed,
    plan: describePlan(plan),
    failures,
    batches: world.commits.length,
    steps: world.sim.steps,
    invocations: world.invocations,
    inCoordinator: world.commits.filter((c) => c.runs === 'coordinator' && !c.quiet).length,
    quiet: world.commits.filter((c) => c.quiet).length,
    trace: world.sim.trace,
    ms: performance.now() - began,
    logs: world.logs,
  };
}

/** The command that replays one seed. */
export function replayCommand(seed: number, job?: string): string {
  return `npm run sim -- --seed ${seed}${job ? ` --job ${job}` : ''} --verbose`;
}
