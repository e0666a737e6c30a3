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

  deadline(time: number, signal?: AbortSignal): Promise<void> {
    return this.sleepUntil(time, signal);
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
  /** Deadlines not reached yet: they fire when the clock is moved past them. */
  readonly #deadlines = new Set<{ time: number; fire: () => void }>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Sets the time (it may go backwards, to test how callers cope with that). */
  set(time: number): void {
    this.#now = time;
    this.#fireDue();
  }

  /** Moves the time forward by `ms` and returns the new time. */
  advance(ms: number): number {
    this.set(this.#now + ms);
    return this.#now;
  }

  async sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
    // An aborted sleeper gave up waiting: time must not move on its behalf.
    if (signal?.aborted) return;
    if (time > this.#now) this.set(time);
  }

  /** Fires once the clock is set, advanced or slept past `time`; never moves the clock itself. */
  deadline(time: number, signal?: AbortSignal): Promise<void> {
    if (time <= this.#now || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        time,
        fire: () => {
          this.#deadlines.delete(entry);
          signal?.removeEventListener('abort', entry.fire);
          resolve();
        },
      };
      this.#deadlines.add(entry);
      signal?.addEventListener('abort', entry.fire, { once: true });
    });
  }

  #fireDue(): void {
    for (const d of [...this.#deadlines]) if (d.time <= this.#now) d.fire();
  }
}
