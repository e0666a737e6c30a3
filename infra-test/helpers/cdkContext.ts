import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The context of the project's cdk.json: the feature flags `cdk synth` runs the app with (the ones
 * `cdk init` writes). Apps built in tests get it too, so a template checked in a test is the one the
 * CLI makes, and the one a `cdk init` project gets.
 */
export function projectContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(import.meta.dirname, '../../cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}
