// Joins each batch's word counts with a static dataset of historic counts, and keeps the words
// whose count in this batch beats their history (a stream-static join through transform).
//   npx sluice run examples/join-historic.ts --batches 5
import { defineJob } from 'sluice';

const vocabulary = ['spark', 'flink', 'kafka', 'kinesis', 'lambda', 's3', 'dynamodb', 'sluice'];

// Historic counts per batch: what a usual second looks like. Words missing here have no history.
const historic: [string, number][] = [
  ['spark', 120],
  ['flink', 80],
  ['kafka', 150],
  ['kinesis', 60],
  ['lambda', 90],
  ['s3', 100],
];

export default defineJob({ name: 'join-historic', batchInterval: '1s' }, (ctx) => {
  const history = ctx.parallelize(historic, 2);
  const words = ctx.generatorStream({
    ratePerSec: 800,
    // Skewed on purpose: lower indexes come up more often, so some words beat their history.
    make: () => vocabulary[Math.floor(vocabulary.length * Math.random() ** 2)],
  });
  const counts = words.map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b);
  const trending = counts.transform((batch) =>
    batch
      .leftOuterJoin(history)
      .filter(([, [now, before]]) => before === undefined || now > before)
      .map(([word, [now, before]]) => [word, before === undefined ? `${now} (new)` : `${now} > ${before}`] as [string, string]),
  );
  trending.print();
});
