// Trending hashtags: the 10 most used hashtags of the last 5 minutes, every second (Spark's
// TwitterPopularTags, on generated posts).
//   npx sluice run examples/hashtags.ts --batches 5      (or without --batches: until Ctrl-C)
// `window` keeps every hashtag of the last 5 minutes and counts them again each second; for big
// windows prefer an incremental form such as countByValueAndWindow (see examples/top-urls.ts).
import { defineJob } from 'sluice';

// Earlier tags come up more often: there is a clear trend, and a long tail.
const TAGS = ['#typescript', '#nodejs', '#serverless', '#aws', '#spark', '#streaming', '#kinesis', '#lambda', '#dataeng', '#bigdata', '#opensource', '#devops', '#rust', '#kafka', '#flink'];
const TEXTS = ['Shipped it', 'Reading about', 'Hot take on', 'Loving', 'Finally tried', 'Conference talk on', 'Debugging'];

function tag(): string {
  return TAGS[Math.floor(TAGS.length * Math.random() ** 2)];
}

/** A post with 0 to 3 hashtags, e.g. `Loving #typescript and #nodejs`. */
function post(i: number): string {
  const tags = Array.from({ length: i % 4 }, tag);
  return `${TEXTS[i % TEXTS.length]} ${tags.join(' and ')}`.trim();
}

export default defineJob({ name: 'hashtags', batchInterval: '1s' }, (ctx) => {
  const posts = ctx.generatorStream({ ratePerSec: 200, make: post });
  const hashtags = posts.flatMap((p) => (p.match(/#\w+/g) ?? []).map((t) => t.toLowerCase())); // #AWS and #aws are one tag
  hashtags
    .window('5m', '1s')
    .countByValue()
    .transform((b) => b.sortBy(([, n]) => n, false))
    .print(10);
});
