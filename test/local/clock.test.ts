import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, WallClock } from '../../lib/node/clock.ts';

describe('ManualClock', () => {
  it('starts at the given time, or 0', () => {
    expect(new ManualClock().now()).toBe(0);
    expect(new ManualClock(5000).now()).toBe(5000);
  });

  it('moves only when set or advanced', () => {
    // Prepare
    const clock = new ManualClock(1000);

    // Act / Assess
    expect(clock.now()).toBe(1000);
    expect(clock.advance(250)).toBe(1250);
    clock.set(4000);
    expect(clock.now()).toBe(4000);
  });

  it('jumps to the time slept until, at once', async () => {
    // Prepare
    const clock = new ManualClock(1000);

    // Act
    await clock.sleepUntil(3000);

    // Assess
    expect(clock.now()).toBe(3000);
  });

  it('does not go back when sleeping until a past time', async () => {
    // Prepare
    const clock = new ManualClock(5000);

    // Act
    await clock.sleepUntil(2000);

    // Assess
    expect(clock.now()).toBe(5000);
  });

  it('does not move for a sleeper that was already aborted', async () => {
    // Prepare
    const clock = new ManualClock(1000);
    const stop = new AbortController();
    stop.abort();

    // Act
    await clock.sleepUntil(9000, stop.signal);

    // Assess
    expect(clock.now()).toBe(1000);
  });
});

// WallClock reads Date.now() and waits with setTimeout; vitest's fake timers own both, so each
// test says to the millisecond when a sleep ends, without waiting for real time.
describe('WallClock', () => {
  const START = Date.UTC(2025, 0, 1);
  beforeEach(() => {
    vi.useFakeTimers({ now: START });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Whether `p` has settled, after the microtasks queued so far ran. */
  function tracked(p: Promise<void>): { readonly settled: boolean } {
    const state = { settled: false };
    void p.then(() => (state.settled = true));
    return state;
  }

  it('tells the wall time', () => {
    // Act / Assess
    expect(new WallClock().now()).toBe(START);
    vi.setSystemTime(START + 1234);
    expect(new WallClock().now()).toBe(START + 1234);
  });

  it('sleeps until exactly the given time', async () => {
    // Prepare
    const clock = new WallClock();
    const sleep = tracked(clock.sleepUntil(START + 30));

    // Act / Assess
    await vi.advanceTimersByTimeAsync(29);
    expect(sleep.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(sleep.settled).toBe(true);
    expect(clock.now()).toBe(START + 30);
  });

  it('sleeps on when its timer fires before the time (the wall clock was set back)', async () => {
    // Prepare
    const clock = new WallClock();
    const sleep = tracked(clock.sleepUntil(START + 100));

    // Act: the wall clock goes back 5 ms, so the 100 ms timer ends 5 ms short of the time.
    vi.setSystemTime(START - 5);
    await vi.advanceTimersByTimeAsync(100);

    // Assess
    expect(clock.now()).toBe(START + 95);
    expect(sleep.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(4);
    expect(sleep.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(sleep.settled).toBe(true);
  });

  it('sleeps longer than the longest timer delay in steps of that delay, waking at the time', async () => {
    // Prepare: 30 days; setTimeout fires at once for delays over 2^31 - 1 ms (~24.8 days).
    const clock = new WallClock();
    const days30 = 30 * 24 * 3600_000;
    const sleep = tracked(clock.sleepUntil(START + days30));

    // Act / Assess
    await vi.advanceTimersToNextTimerAsync();
    expect(clock.now()).toBe(START + 2 ** 31 - 1);
    expect(sleep.settled).toBe(false);
    await vi.advanceTimersToNextTimerAsync();
    expect(clock.now()).toBe(START + days30);
    expect(sleep.settled).toBe(true);
  });

  it('fires a deadline at exactly its time', async () => {
    // Prepare
    const clock = new WallClock();
    const deadline = tracked(clock.deadline(START + 250));

    // Act / Assess
    await vi.advanceTimersByTimeAsync(249);
    expect(deadline.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(deadline.settled).toBe(true);
  });

  it('returns at once for a time that has passed, leaving no timer', async () => {
    // Act
    const sleep = tracked(new WallClock().sleepUntil(START - 1000));
    await vi.advanceTimersByTimeAsync(0);

    // Assess
    expect(sleep.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('wakes when the signal aborts, without throwing, and leaves no timer', async () => {
    // Prepare
    const clock = new WallClock();
    const stop = new AbortController();
    const sleeping = clock.sleepUntil(START + 60_000, stop.signal);
    const sleep = tracked(sleeping);
    await vi.advanceTimersByTimeAsync(10);
    expect(sleep.settled).toBe(false);

    // Act
    stop.abort();
    await vi.advanceTimersByTimeAsync(0);

    // Assess
    expect(sleep.settled).toBe(true);
    await expect(sleeping).resolves.toBeUndefined();
    expect(clock.now()).toBe(START + 10);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('returns at once for a signal that was already aborted', async () => {
    // Prepare
    const stop = new AbortController();
    stop.abort();

    // Act
    const sleep = tracked(new WallClock().sleepUntil(START + 60_000, stop.signal));
    await vi.advanceTimersByTimeAsync(0);

    // Assess
    expect(sleep.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
