import type { Clock } from '../ports/index.ts';

/** The longest delay `setTimeout` honours; longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock (`Date.now()`), for running jobs.
 *
 * @example
 * ```ts
 * const clock = new WallClock();
 * await clock.sleepUntil(clock.now() + 1000, stop.signal); // a second, or until `stop.abort()`
 * ```
 */
export class WallClock implements Clock {
  now(): number {
    return Date.now();
  }

  sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      // Timers may fire a millisecond early against Date.now() (and cap at ~24.8 days), so
      // check the time again on each wake-up instead of trusting a single timer.
      const wait = () => {
        const remaining = time - Date.now();
        if (remaining <= 0 || signal?.aborted) finish();
        else timer = setTimeout(wait, Math.min(remaining, MAX_TIMER_MS));
      };
      signal?.addEventListener('abort', finish, { once: true });
      wait();
    });
  }
}

/**
 * A clock that only moves when told to, for deterministic tests: `sleepUntil` jumps the clock
 * forward to the requested time instead of waiting, so a test runs batches as fast as it can.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(1000);
 * await clock.sleepUntil(3000); // returns at once
 * clock.now(); // 3000
 * clock.advance(500); // 3500
 * ```
 */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Sets the time (it may go backwards, to test how callers cope with that). */
  set(time: number): void {
    this.#now = time;
  }

  /** Moves the time forward by `ms` and returns the new time. */
  advance(ms: number): number {
    this.#now += ms;
    return this.#now;
  }

  async sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    // An aborted sleeper gave up waiting: time must not move on its behalf.
    if (signal?.aborted) return;
    this.#now = Math.max(this.#now, time);
  }
}
