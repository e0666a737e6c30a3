// Counts words in the new files of a folder (Spark's HdfsWordCount).
//   mkdir -p incoming && npx sluice run examples/file-wordcount.ts
// then, from another terminal, move files in atomically:
//   echo "to be or not to be" > /tmp/f1.txt && mv /tmp/f1.txt incoming/
// Folder: SLUICE_INPUT_DIR (default incoming/). Counts are saved under out/file-wordcount-<time>/.
import { defineJob } from 'sluice';

const dir = process.env.SLUICE_INPUT_DIR ?? 'incoming';

export default defineJob({ name: 'file-wordcount', batchInterval: '2s' }, (ctx) => {
  const counts = ctx
    .textFileStream(dir)
    .flatMap((line) => line.split(/\s+/))
    .filter((w) => w !== '')
    .map((w) => [w.toLowerCase(), 1] as [string, number])
    .reduceByKey((a, b) => a + b);
  counts.print();
  counts.saveAsTextFiles('out/file-wordcount');
});
