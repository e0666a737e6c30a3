import { it } from 'vitest';
import { loadJob } from '../../lib/local/loadJob.ts';
import { buildGraph } from '../../lib/api/job.ts';
it('fp', async () => {
  const g = buildGraph(await loadJob('test/fixtures/pairs-job.ts'));
  console.log(g.fingerprint(), JSON.stringify(g.nodes.map((n: any) => n.fns)));
});
