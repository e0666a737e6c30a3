import { expect } from 'vitest';
import { replayCommand, runSeed } from '../../sim/run.ts';

/**
 * Runs seeds `from` to `to` of the simulation and expects every one to pass; a failure names the
 * seed, what went wrong first, and the command that replays it.
 */
export async function expectSeedsPass(from: number, to: number): Promise<void> {
  const failed: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = await runSeed(seed);
    if (r.failures.length) failed.push(`seed ${seed} (${r.plan}): ${r.failures[0]}\n  replay: ${replayCommand(seed)}`);
  }
  expect(failed).toEqual([]);
}
