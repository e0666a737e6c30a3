// Word counts over a Kinesis stream, saved to S3 — the AWS path. Locally: `npm run dev:aws`
// (emulators, a producer and the real handlers); on AWS: deploy with the SluiceJob construct.
// Stream and bucket: SLUICE_STREAM (default sluice-dev), SLUICE_SINK_BUCKET (default sluice-out).
import { defineJob } from 'sluice';

const stream = process.env.SLUICE_STREAM ?? 'sluice-dev';
const bucket = process.env.SLUICE_SINK_BUCKET ?? 'sluice-out';

export default defineJob({ name: 'kinesis-wordcount', batchInterval: '1s' }, (ctx) => {
  const counts = ctx
    .kinesisStream(stream, { initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: 5000 })
    .flatMap((line) => line.split(' '))
    .map((w) => [w, 1] as [string, number])
    .reduceByKey((a, b) => a + b, { numPartitions: 4 });
  counts.print();
  counts.saveAsTextFiles(`s3://${bucket}/wordcount`);
});
