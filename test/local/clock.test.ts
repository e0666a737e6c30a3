import { describe, expect, it } from 'vitest';
import { ManualClock, WallClock } from '../../lib/local/clock.ts';

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

describe('WallClock', () => {
  it('tells the wall time', () => {
    // Prepare
    const before = Date.now();

    // Act
    const now = new WallClock().now();

    // Assess
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('sleeps until the given time has come', async () => {
    // Prepare
    const clock = new WallClock();
    const wakeAt = clock.now() + 30;

    // Act
    await clock.sleepUntil(wakeAt);

    // Assess
    expect(clock.now()).toBeGreaterThanOrEqual(wakeAt);
  });

  it('returns at once for a time that has passed', async () => {
    // Prepare
    const clock = new WallClock();
    const start = clock.now();

    // Act
    await clock.sleepUntil(start - 1000);

    // Assess
    expect(clock.now() - start).toBeLessThan(1000);
  });

  it('wakes early, without throwing, when the signal aborts', async () => {
    // Prepare
    const clock = new WallClock();
    const stop = new AbortController();
    const start = clock.now();
    const sleeping = clock.sleepUntil(start + 60_000, stop.signal);

    // Act
    stop.abort();
    await sleeping;

    // Assess
    expect(clock.now() - start).toBeLessThan(60_000);
  });

  it('returns at once for a signal that was already aborted', async () => {
    // Prepare
    const clock = new WallClock();
    const stop = new AbortController();
    stop.abort();

    // Act / Assess
    await expect(clock.sleepUntil(clock.now() + 60_000, stop.signal)).resolves.toBeUndefined();
  });
});
