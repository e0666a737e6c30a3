// The demo behind `npm start`: a generated source of 1000 lines/s, 1-second batches, word counts
// printed and saved under out/.
import { defineJob } from 'sluice';

export default defineJob({ name: 'wordcount', batchInterval: '1s' }, (ctx) => {
  const lines = ctx.generatorStream({
    ratePerSec: 1000,
    make: () => `I am a dummy source ${Math.floor(Math.random() * 10)}`,
  });
  const counts = lines
    .flatMap((l) => l.split(' '))
    .map((w) => [w, 1] as [string, number])
    .reduceByKey((a, b) => a + b);
  counts.print();
  counts.saveAsTextFiles('out/wordcount');
});
