import type { Clock } from '../../lib/ports/index.ts';

/**
 * A coordinator's clock that runs `ahead` ms ahead of the wall clock, which the emulators stamp
 * Kinesis arrivals with; `pass(ms)` moves it further ahead at once, as if that much time had gone
 * by for whoever reads it (a lease runs out without the test waiting for it). Sleepers wake up as
 * soon as the time they wait for is reached, `pass` included.
 *
 * Ahead of Kinesis, a batch's time is still to come when the coordinator cuts its input: records
 * put after the cut still belong to the batch, so an open split read later holds more than the
 * same split read at once (on AWS, the skew between the coordinator's clock and the arrival
 * timestamps does the same on a smaller scale).
 *
 * @example
 * ```ts
 * const clock = new SkewedClock(2000); // batch times 2 s ahead of Kinesis arrival times
 * clock.pass(1200);                     // a 1.2 s lease taken now has run out
 * ```
 */
export class SkewedClock implements Clock {
  readonly #wakers = new Set<() => void>();

  constructor(private ahead: number) {}

  now(): number {
    return Date.now() + this.ahead;
  }

  /** Moves the clock `ms` further ahead of the wall clock. */
  pass(ms: number): void {
    this.ahead += ms;
    for (const wake of [...this.#wakers]) wake();
  }

  sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(timer);
        this.#wakers.delete(check);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      // Checked again on every wake-up: by the timer, or by pass().
      const check = () => {
        clearTimeout(timer);
        const remaining = time - this.now();
        if (remaining <= 0 || signal?.aborted) finish();
        else timer = setTimeout(check, remaining);
      };
      this.#wakers.add(check);
      signal?.addEventListener('abort', finish, { once: true });
      check();
    });
  }

  deadline(time: number, signal?: AbortSignal): Promise<void> {
    return this.sleepUntil(time, signal);
  }
}

/**
 * A {@link SkewedClock} whose sleepers never wait: one that sleeps until a later time moves the
 * clock there at once, as if the wait were over. A coordinator on it runs its batches back to back
 * (as one behind schedule does) and ends a lease wait at once; a deadline (a task's timeout, which
 * runs beside the work) still comes in wall-clock time, or when a sleeper moves the clock past it.
 * It never falls behind the wall clock, so a batch is never cut before records that arrived.
 *
 * `beforeSleep`, when given, is awaited before each sleep: a test holds a sleeper there until it
 * has seen what the sleeper waits for (a lease handed over).
 *
 * @example
 * ```ts
 * const clock = new HurriedClock();
 * await clock.sleepUntil(clock.now() + 60_000); // returns at once, a minute later by this clock
 * ```
 */
export class HurriedClock extends SkewedClock {
  constructor(private readonly beforeSleep?: () => Promise<void>) {
    super(0);
  }

  override async sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    await this.beforeSleep?.();
    // An aborted sleeper gave up waiting: time must not move on its behalf.
    if (!signal?.aborted && time > this.now()) this.pass(time - this.now());
  }

  override deadline(time: number, signal?: AbortSignal): Promise<void> {
    return super.sleepUntil(time, signal);
  }
}
