import { it } from 'vitest';
import { runBatches } from 'sluice/testing';
it('probe', async () => {
  const b: [string, number][][] = [[['a', 1]], [['a', 2], ['b', 1]], [['b', 1]], [['c', 1]], [], [['a', 1]]];
  const t0 = Date.now();
  try {
    const out = await runBatches({ batchInterval: 1000, batches: 6, maxTaskAttempts: 1 }, (ctx) => ctx.queueStream(b).reduceByKeyAndWindow((x, y) => x + y, (x, y) => x - y, 3000, 2000));
    console.log(JSON.stringify(out.map((o) => [o.time, o.data])));
  } catch (e) { console.log('ERR', (e as Error).message); }
  console.log('ms', Date.now() - t0);
});
