import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JobDefinitionError } from '../api/errors.ts';
import { isJobDefinition, type JobDefinition } from '../api/job.ts';

/**
 * Imports a job file and returns its default export, checked to be a {@link defineJob} result.
 * TypeScript job files load through tsx, which `sluice` registers before calling this.
 *
 * @example
 * ```ts
 * const job = await loadJob('examples/wordcount.ts');
 * ```
 */
export async function loadJob(file: string): Promise<JobDefinition> {
  const path = resolve(file);
  if (!existsSync(path)) throw new JobDefinitionError(`job file ${file} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof JobDefinitionError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new JobDefinitionError(`job file ${file} failed to load: ${msg}`, { cause: e });
  }
  const job = mod.default;
  if (!isJobDefinition(job)) {
    throw new JobDefinitionError(
      `job file ${file} must export a job as its default export: export default defineJob({ name, batchInterval }, (ctx) => { ... })`,
    );
  }
  return job;
}
