import { parseArgs } from 'node:util';
import { replayCommand, runSeed } from './run.ts';

/**
 * `npm run sim -- [--seeds N] [--from S] [--seed S] [--job NAME] [--verbose]`: runs seeds of the
 * deterministic simulation of the batch protocol and prints one line per failing seed with the
 * command that replays it; the last line is `N seeds, F failed`.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '100' },
      from: { type: 'string', default: '1' },
      seed: { type: 'string' },
      job: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const whole = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0, got ${text}`);
    return n;
  };
  const seeds = values.seed !== undefined ? [whole('seed', values.seed)] : Array.from({ length: whole('seeds', values.seeds) }, (_, i) => whole('from', values.from) + i);
  let failed = 0;
  let ms = 0;
  // Both paths, and the switch between them, must be covered: counted over the seeds.
  const paths = { coordinator: 0, workers: 0, switched: 0, quiet: 0 };
  for (const seed of seeds) {
    const r = await runSeed(seed, values.job);
    ms += r.ms;
    paths.coordinator += r.inCoordinator;
    paths.workers += r.batches - r.inCoordinator - r.quiet;
    paths.quiet += r.quiet;
    if (r.inCoordinator > 0 && r.inCoordinator < r.batches - r.quiet) paths.switched++;
    if (values.verbose) {
      console.log(`seed ${seed}: ${r.plan}; ${r.batches} batches committed (${r.inCoordinator} in the coordinator, ${r.quiet} quiet), ${r.invocations} worker invocations, ${r.steps} events, trace ${r.trace}, ${r.ms.toFixed(0)} ms`);
      for (const l of r.logs) console.log(`  ${l}`);
    }
    if (r.failures.length) {
      failed++;
      console.log(`seed ${seed} FAILED (${r.plan}): ${r.failures[0]}${r.failures.length > 1 ? ` (+${r.failures.length - 1} more)` : ''}`);
      if (values.verbose) for (const f of r.failures) console.log(`  - ${f}`);
      console.log(`  replay: ${replayCommand(seed, values.job)}`);
    }
  }
  console.log(`(${(ms / Math.max(1, seeds.length)).toFixed(0)} ms per seed)`);
  console.log(`${paths.coordinator} batches committed in the coordinator, ${paths.workers} on workers, ${paths.quiet} quiet; ${paths.switched} seeds switched between the two`);
  console.log(`${seeds.length} seeds, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(2);
  },
);
