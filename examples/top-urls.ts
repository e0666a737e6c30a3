// The top 10 URLs of the last 5 minutes, every second, from a web server's access log: a sliding
// window kept incrementally (each second adds the entering batch and subtracts the one leaving,
// so a slide costs the same whether the window is 5 minutes or an hour).
//   npx sluice run examples/top-urls.ts --batches 5      (or without --batches: until Ctrl-C)
// The log lines are generated (Apache common log format) with a skewed popularity, so a few pages
// clearly lead.
import { defineJob } from 'sluice';

const PAGES = [
  '/', '/products/42', '/search', '/cart', '/products/7', '/login', '/products/13', '/checkout',
  '/blog/streaming-101', '/products/99', '/about', '/products/1', '/help', '/products/58',
  '/blog/windows', '/contact', '/products/23', '/careers', '/products/77', '/terms',
];
const SEARCHES = ['shoes', 'lamp', 'desk', 'socks'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `21/Nov/2026:15:00:00 +0000`, the timestamp of the common log format. */
function clf(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** One access-log line; `Math.random() ** 3` favours the first pages (a long tail behind a clear top). */
function logLine(i: number): string {
  let page = PAGES[Math.floor(PAGES.length * Math.random() ** 3)];
  if (page === '/search') page += `?q=${SEARCHES[i % SEARCHES.length]}`;
  const status = Math.random() < 0.03 ? 404 : 200;
  return `10.0.${(i >> 8) & 255}.${i & 255} - - [${clf(new Date())}] "GET ${page} HTTP/1.1" ${status} ${200 + (i % 5000)}`;
}

// host ident user [time] "METHOD URL PROTOCOL" status bytes
const CLF = /^\S+ \S+ \S+ \[[^\]]+\] "\S+ (\S+)[^"]*" \d{3} (?:\d+|-)$/;

export default defineJob({ name: 'top-urls', batchInterval: '1s' }, (ctx) => {
  const lines = ctx.generatorStream({ ratePerSec: 500, make: logLine });
  // flatMap rather than map + filter: a malformed line yields nothing instead of failing the batch.
  const urls = lines.flatMap((line) => {
    const m = CLF.exec(line);
    return m ? [m[1].split('?')[0]] : []; // '/search?q=shoes' and '/search?q=lamp' are one page
  });
  const counts = urls
    .map((u) => [u, 1] as [string, number])
    // The inverse function makes the window incremental; the filter drops URLs whose count fell
    // back to 0 (without it they would stay in the window's state forever, as in Spark).
    .reduceByKeyAndWindow((a, b) => a + b, (a, b) => a - b, '300s', '1s', { filter: ([, n]) => n > 0 });
  counts.transform((b) => b.sortBy(([, n]) => n, false)).print(10);
});
