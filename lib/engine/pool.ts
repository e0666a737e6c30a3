/** Runs `fn(i)` for i in [0, n) with at most `limit` running at once; rejects on the first failure. */
export async function forEachLimit(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < n) {
      const i = next++;
      try {
        await fn(i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const lanes: Promise<void>[] = [];
  for (let k = 0; k < Math.max(1, Math.min(limit, n)); k++) lanes.push(lane());
  await Promise.all(lanes);
}
