import type { BlobStore, JsonValue, MetaItem, MetaStore } from '../lib/ports/index.ts';
import type { Rng } from './random.ts';
import type { Proc, Sim } from './scheduler.ts';

/** How the simulated network and services misbehave in one seed (probabilities per call). */
export interface Faults {
  /** A request or its response is held for a long time (`stallMs`): overlaps come from here. */
  readonly stall: number;
  readonly stallMs: readonly [number, number];
  /** A call is refused before it does anything (a throttle, a 5xx). */
  readonly error: number;
  /** A write applies, its response is lost, and the SDK's retry sends it again. */
  readonly lostResponse: number;
  /** A blob write lands late (`stallMs`): the writer waits for it, and so may a coordinator that timed it out. */
  readonly lateWrite: number;
}

/**
 * The network between processes and services: every call is a request event (the service does
 * the work) and a response event (the caller sees the result), each after a latency drawn from
 * the seed. While `active()` holds, the faults of `faults` apply.
 */
export class Network {
  constructor(
    readonly sim: Sim,
    readonly rng: Rng,
    readonly faults: Faults,
    readonly active: () => boolean,
  ) {}

  latency(): number {
    const f = this.faults;
    if (this.active() && this.rng.chance(f.stall)) return this.rng.between(f.stallMs[0], f.stallMs[1]);
    return this.rng.between(1, 10);
  }

  /** Whether this call fails before it does anything. */
  refuses(): boolean {
    return this.active() && this.rng.chance(this.faults.error);
  }

  /** Whether this write's response is lost (the write applied; the SDK sends it again). */
  losesResponse(): boolean {
    return this.active() && this.rng.chance(this.faults.lostResponse);
  }

  /**
   * One call from `proc` to a service: `work` runs when the request arrives (whatever became of
   * the caller), its result reaches the caller after the response's latency, if the caller lives.
   * `retry` is what the SDK sends again when the response is lost (undefined: the call is not
   * retried, the caller sees a timeout).
   */
  call<T>(proc: Proc, label: string, work: () => Promise<T>, retry?: () => Promise<T>, write = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.refuses()) {
        this.sim.after(this.latency(), proc, `${label}:refused`, () => reject(throttled(label)));
        return;
      }
      const f = this.faults;
      const late = write && this.active() && this.rng.chance(f.lateWrite);
      this.sim.after(late ? this.rng.between(f.stallMs[0], f.stallMs[1]) : this.latency(), undefined, label, async () => {
        type Outcome = { ok: true; value: T } | { ok: false; error: unknown };
        let outcome: Outcome;
        try {
          outcome = { ok: true, value: await work() };
        } catch (error) {
          outcome = { ok: false, error };
        }
        if (outcome.ok && this.losesResponse()) {
          if (!retry) {
            this.sim.after(this.latency(), proc, `${label}:lost`, () => reject(timedOut(label)));
            return;
          }
          // The SDK's retry: sent again after a while; the caller sees the retry's answer.
          this.sim.after(this.latency(), undefined, `${label}:retry`, async () => {
            let second: Outcome;
            try {
              second = { ok: true, value: await retry() };
            } catch (error) {
              second = { ok: false, error };
            }
            this.respond(proc, label, second, resolve, reject);
          });
          return;
        }
        this.respond(proc, label, outcome, resolve, reject);
      });
    });
  }

  private respond<T>(proc: Proc, label: string, outcome: { ok: true; value: T } | { ok: false; error: unknown }, resolve: (v: T) => void, reject: (e: unknown) => void): void {
    this.sim.after(this.latency(), proc, `${label}:response`, () => (outcome.ok ? resolve(outcome.value) : reject(outcome.error)));
  }
}

/** A service's refusal, as the AWS SDK reports a throttle. */
function throttled(label: string): Error {
  return Object.assign(new Error(`${label}: Rate exceeded (simulated throttle)`), { name: 'ThrottlingException' });
}

/** A call whose response never came. */
function timedOut(label: string): Error {
  return Object.assign(new Error(`${label}: socket timed out (simulated lost response)`), { name: 'TimeoutError' });
}

/** The MetaStore as one process sees it: a shared store behind the simulated network. */
export class SimMetaStore implements MetaStore {
  constructor(
    private readonly net: Network,
    private readonly proc: Proc,
    private readonly store: MetaStore,
    private readonly onApplied: (key: string, item: MetaItem) => Promise<void>,
  ) {}

  get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined> {
    return this.net.call(this.proc, `meta.get ${key}`, () => this.store.get<T>(key), () => this.store.get<T>(key));
  }

  put(key: string, value: JsonValue, condition: { expectedVersion: number | 'any'; epoch: number }): Promise<number | undefined> {
    const write = async () => {
      const v = await this.store.put(key, value, condition);
      if (v !== undefined) await this.onApplied(key, (await this.store.get(key))!);
      return v;
    };
    // A lost response is retried by the SDK: the retry's condition fails on the write just made.
    return this.net.call(this.proc, `meta.put ${key}`, write, write);
  }

  delete(key: string, condition: { epoch: number }): Promise<void> {
    return this.net.call(this.proc, `meta.delete ${key}`, () => this.store.delete(key, condition), () => this.store.delete(key, condition));
  }

  list(prefix: string): Promise<string[]> {
    return this.net.call(this.proc, `meta.list ${prefix}`, () => this.store.list(prefix), () => this.store.list(prefix));
  }
}

/** A BlobStore as one process sees it. A lost PUT response is sent again: the object is written twice. */
export class SimBlobStore implements BlobStore {
  constructor(
    private readonly net: Network,
    private readonly proc: Proc,
    private readonly store: BlobStore,
    private readonly name: string,
  ) {}

  put(key: string, body: Uint8Array | string): Promise<void> {
    const copy = typeof body === 'string' ? body : body.slice();
    return this.net.call(this.proc, `${this.name}.put ${key}`, () => this.store.put(key, copy), () => this.store.put(key, copy), true);
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.net.call(this.proc, `${this.name}.get ${key}`, () => this.store.get(key), () => this.store.get(key));
  }

  getRange(key: string, start: number, end: number): Promise<Uint8Array | undefined> {
    return this.net.call(this.proc, `${this.name}.getRange ${key}`, () => this.store.getRange(key, start, end), () => this.store.getRange(key, start, end));
  }

  exists(key: string): Promise<boolean> {
    return this.net.call(this.proc, `${this.name}.exists ${key}`, () => this.store.exists(key), () => this.store.exists(key));
  }

  delete(keys: readonly string[]): Promise<void> {
    const copy = [...keys];
    return this.net.call(this.proc, `${this.name}.delete`, () => this.store.delete(copy), () => this.store.delete(copy));
  }

  list(prefix: string): Promise<string[]> {
    return this.net.call(this.proc, `${this.name}.list ${prefix}`, () => this.store.list(prefix), () => this.store.list(prefix));
  }
}
