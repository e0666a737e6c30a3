import type { Clock } from '../lib/ports/index.ts';
import { Rng } from './random.ts';

/**
 * The simulation's scheduler: it owns time and the order of everything that happens. The code
 * under test (the real coordinator, workers and handlers) runs in promises; every port call,
 * sleep and timer of it becomes an event here, and the scheduler runs one event at a time, chosen
 * by the seed among those that are due, after letting every microtask settle. So one seed is one
 * interleaving, replayed exactly (FoundationDB's simulation, TigerBeetle's VOPR).
 *
 * A {@link Proc} is a process: a coordinator invocation or a worker container. Killing it drops its
 * pending events (its promises never settle, as a dead process's); freezing it holds them until a
 * time. Requests already sent are in the network and land whatever becomes of the sender.
 */
export class Sim {
  now: number;
  readonly rng: Rng;
  private seq = 0;
  private readonly queue: SimEvent[] = [];
  /** Events run so far, and a hash of what ran when: two runs of one seed must agree on it. */
  steps = 0;
  private hash = 2166136261;

  constructor(seed: number, start: number) {
    this.rng = new Rng(seed);
    this.now = start;
  }

  /** Schedules `run` at `time`; with a proc, only while it lives, and not before it thaws. */
  at(time: number, proc: Proc | undefined, label: string, run: () => unknown): SimEvent {
    const ev: SimEvent = { seq: this.seq++, at: Math.max(time, this.now), proc, label, run, cancelled: false };
    this.queue.push(ev);
    return ev;
  }

  after(delay: number, proc: Proc | undefined, label: string, run: () => unknown): SimEvent {
    return this.at(this.now + delay, proc, label, run);
  }

  cancel(ev: SimEvent): void {
    ev.cancelled = true;
  }

  /** A new process. */
  proc(name: string): Proc {
    return new Proc(name, this);
  }

  /** A clock whose sleeps and timers are events of `proc`. */
  clock(proc: Proc): Clock {
    const sleep = (time: number, signal?: AbortSignal): Promise<void> =>
      new Promise((resolve) => {
        if (signal?.aborted) return resolve();
        const ev = this.at(time, proc, 'timer', resolve);
        signal?.addEventListener(
          'abort',
          () => {
            this.cancel(ev);
            resolve();
          },
          { once: true },
        );
      });
    return { now: () => this.now, sleepUntil: sleep, deadline: sleep };
  }

  /**
   * Runs events until none is left or `until` (a time) is reached. Between two events every
   * microtask settles, so the code under test has done all it can before the next thing happens.
   */
  async run(until = Number.POSITIVE_INFINITY, maxSteps = 2_000_000): Promise<void> {
    for (;;) {
      await settle();
      let next = Number.POSITIVE_INFINITY;
      const due: number[] = [];
      // Events of dead processes, and cancelled ones, are dropped; the rest keep their order.
      let kept = 0;
      for (let i = 0; i < this.queue.length; i++) {
        const ev = this.queue[i];
        if (ev.cancelled || (ev.proc && !ev.proc.alive)) continue;
        this.queue[kept] = ev;
        const at = ev.proc ? Math.max(ev.at, ev.proc.frozenUntil) : ev.at;
        if (at <= this.now) due.push(kept);
        else if (at < next) next = at;
        kept++;
      }
      this.queue.length = kept;
      if (!due.length) {
        if (next === Number.POSITIVE_INFINITY || next > until) return;
        this.now = next;
        continue;
      }
      // One of the due events, picked by the seed.
      const i = due[this.rng.int(due.length)];
      const ev = this.queue[i];
      this.queue.splice(i, 1);
      this.steps++;
      if (this.steps > maxSteps) throw new Error(`simulation did not end within ${maxSteps} steps`);
      this.mix(`${this.now}:${ev.label}`);
      ev.run();
    }
  }

  /** Mixes a line into the trace hash. */
  mix(line: string): void {
    let h = this.hash;
    for (let i = 0; i < line.length; i++) {
      h ^= line.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    this.hash = h >>> 0;
  }

  /** The trace hash: the same for two runs of one seed. */
  get trace(): string {
    return this.hash.toString(16).padStart(8, '0');
  }
}

/** One scheduled event. */
export interface SimEvent {
  readonly seq: number;
  readonly at: number;
  readonly proc: Proc | undefined;
  readonly label: string;
  readonly run: () => unknown;
  cancelled: boolean;
}

/** A simulated process (a coordinator invocation, a worker container). */
export class Proc {
  alive = true;
  frozenUntil = 0;
  private readonly onKill: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly sim: Sim,
  ) {}

  /** Stops the process: its pending events and sleeps are dropped. */
  kill(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const f of this.onKill.splice(0)) f();
  }

  /** Holds every event of the process until `until` (a GC pause, a stalled network). */
  freeze(until: number): void {
    this.frozenUntil = Math.max(this.frozenUntil, until);
  }

  /** Runs `f` when the process is killed. */
  whenKilled(f: () => void): void {
    if (!this.alive) f();
    else this.onKill.push(f);
  }
}

/** Resolves once every pending microtask (and `process.nextTick`) has run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
