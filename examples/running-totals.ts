// Running totals per customer since the job started: number of purchases, amount spent and mean
// basket, updated every second with updateStateByKey, printed and saved as JSON lines.
//   npx sluice run examples/running-totals.ts --batches 5      (or without --batches: until Ctrl-C)
// Saved under out/running-totals-<batchTimeMs>/part-0000N, one `["user",{"count":..}]` per line.
// The totals live in .sluice/running-totals/: stop with Ctrl-C, run again, and they carry on.
import { defineJob } from 'sluice';

interface Purchase {
  readonly user: string;
  readonly amount: number; // in euros, with cents
}
interface Totals {
  readonly count: number;
  readonly total: number;
}

const USERS = Array.from({ length: 20 }, (_, k) => `user-${String(k + 1).padStart(2, '0')}`);

/** Money rounded to cents, so sums of cents stay readable (no 0.30000000000000004). */
const cents = (x: number) => Math.round(x * 100) / 100;

export default defineJob({ name: 'running-totals', batchInterval: '1s' }, (ctx) => {
  const purchases = ctx.generatorStream<Purchase>({
    ratePerSec: 100,
    // Deterministic in i: user-01 buys most often, and baskets vary from 1 to 90 euros.
    make: (i) => ({ user: USERS[Math.floor(USERS.length * ((i * 0.618034) % 1) ** 2)], amount: cents(1 + ((i * 7919) % 8900) / 100) }),
  });
  const totals = purchases
    .map((p) => [p.user, p.amount] as [string, number])
    // Called for every user with state or purchases in this batch: users who bought nothing this
    // second keep their totals (values is empty).
    .updateStateByKey((amounts, state: Totals | undefined): Totals => ({
      count: (state?.count ?? 0) + amounts.length,
      total: cents((state?.total ?? 0) + amounts.reduce((a, b) => a + b, 0)),
    }))
    .mapValues(({ count, total }) => ({ count, total, mean: cents(total / count) }));
  totals.print(USERS.length);
  totals.saveAsJsonFiles('out/running-totals');
});
