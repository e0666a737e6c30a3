// Counts words in text received over TCP (Spark's NetworkWordCount).
//   terminal 1: nc -lk 9999
//   terminal 2: npx sluice run examples/network-wordcount.ts
// then type lines into terminal 1. Host and port: SLUICE_HOST / SLUICE_PORT.
import { defineJob } from 'sluice';

const host = process.env.SLUICE_HOST ?? 'localhost';
const port = Number(process.env.SLUICE_PORT ?? 9999);

export default defineJob({ name: 'network-wordcount', batchInterval: '1s' }, (ctx) => {
  ctx
    .socketTextStream(host, port)
    .flatMap((line) => line.split(' '))
    .filter((w) => w !== '')
    .map((w) => [w, 1] as [string, number])
    .reduceByKey((a, b) => a + b)
    .print();
});
