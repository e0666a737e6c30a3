import type { Rng } from './random.ts';
import type { Network } from './network.ts';
import type { Proc, Sim } from './scheduler.ts';

/** What can go wrong with a worker invocation, per invocation. */
export interface LambdaFaults {
  /** The SDK's retry of an `Invoke` whose response was slow: a second run of the same task, while the first runs on. */
  readonly duplicate: number;
  /** The container dies in the middle of the task (out of memory, a crash). */
  readonly crash: number;
  /** Lambda refuses the invocation (TooManyRequestsException); the invoker backs off and retries. */
  readonly throttle: number;
  /** The container pauses in the middle of the task for `pauseMs` (a slow dependency, a long GC): a late writer. */
  readonly pause: number;
  readonly pauseMs: readonly [number, number];
}

/** A warm container: one process, one handler (with its worker's memory), one task at a time. */
interface Container {
  readonly proc: Proc;
  readonly handler: (event: unknown) => Promise<unknown>;
  busy: boolean;
}

/**
 * The worker function as the coordinator's `LambdaInvoker` sees it: a fake `LambdaClient` whose
 * `send(InvokeCommand)` runs the real worker handler in a simulated container. Containers are
 * reused while warm (so a worker's state cache matters), die with a crash, and are killed at the
 * function's timeout; a task may run twice at once when the SDK retries a slow `Invoke`.
 */
export class SimLambda {
  private readonly containers: Container[] = [];
  private made = 0;
  invocations = 0;

  constructor(
    private readonly sim: Sim,
    private readonly rng: Rng,
    private readonly net: Network,
    private readonly faults: LambdaFaults,
    private readonly active: () => boolean,
    private readonly timeoutMs: number,
    /** A handler for a new container in `proc` (`createWorkerHandler` with the simulated ports). */
    private readonly makeHandler: (proc: Proc) => (event: unknown) => Promise<unknown>,
  ) {}

  /** A `LambdaClient` for the invoker of coordinator process `caller`. */
  client(caller: Proc): { send(command: { input: { Payload?: Uint8Array } }): Promise<{ Payload?: Uint8Array; FunctionError?: string }>; destroy(): void } {
    return {
      send: (command) => this.invoke(caller, command.input.Payload ?? new Uint8Array()),
      destroy: () => {},
    };
  }

  private async invoke(caller: Proc, payload: Uint8Array): Promise<{ Payload?: Uint8Array; FunctionError?: string }> {
    const on = this.active();
    if (on && this.rng.chance(this.faults.throttle)) {
      await new Promise<void>((r) => this.sim.after(this.net.latency(), caller, 'lambda:throttled', r));
      throw Object.assign(new Error('Rate exceeded (simulated)'), { name: 'TooManyRequestsException' });
    }
    const text = new TextDecoder().decode(payload);
    const duplicate = on && this.rng.chance(this.faults.duplicate);
    // A duplicated call's first run is slow (that is why the SDK sent the request again): it pauses, and runs on.
    const first = this.start(text, duplicate ? this.rng.between(this.faults.pauseMs[0], this.faults.pauseMs[1]) : 0);
    let answer = first;
    if (duplicate) {
      // The SDK sends the same request again and takes the second answer.
      answer = new Promise((resolve) => this.sim.after(this.rng.between(100, 5000), undefined, 'lambda:retry', () => this.start(text, 0).then(resolve)));
    }
    const result = await answer;
    // The response travels back to the caller (if it still lives).
    return new Promise((resolve) => this.sim.after(this.net.latency(), caller, 'lambda:response', () => resolve(result)));
  }

  /** One run of the function: the request reaches a container after the network's latency. */
  private start(text: string, slowMs: number): Promise<{ Payload?: Uint8Array; FunctionError?: string }> {
    return new Promise((resolve) => {
      this.sim.after(this.net.latency(), undefined, 'lambda:start', () => {
        this.invocations++;
        const c = this.container();
        let settled = false;
        const finish = (r: { Payload?: Uint8Array; FunctionError?: string }) => {
          if (settled) return;
          settled = true;
          resolve(r);
        };
        const error = (type: string, message: string) => ({ FunctionError: 'Unhandled', Payload: new TextEncoder().encode(JSON.stringify({ errorType: type, errorMessage: message })) });
        // Lambda's answer when the process dies or overruns the timeout.
        c.proc.whenKilled(() => finish(error('Runtime.ExitError', 'the worker container died (simulated)')));
        const timeout = this.sim.after(this.timeoutMs, undefined, 'lambda:timeout', () => {
          if (settled) return;
          c.proc.kill();
          finish(error('Sandbox.Timedout', `Task timed out after ${this.timeoutMs} ms`));
        });
        if (this.active() && this.rng.chance(this.faults.crash)) this.sim.after(this.rng.between(1, 200), undefined, 'lambda:crash', () => c.proc.kill());
        if (slowMs > 0 || (this.active() && this.rng.chance(this.faults.pause))) {
          const ms = slowMs || this.rng.between(this.faults.pauseMs[0], this.faults.pauseMs[1]);
          this.sim.after(this.rng.between(0, 15), undefined, 'lambda:pause', () => c.proc.freeze(this.sim.now + ms));
        }
        c.handler(JSON.parse(text)).then(
          (out) => {
            this.sim.cancel(timeout);
            c.busy = false;
            finish({ Payload: new TextEncoder().encode(JSON.stringify(out)) });
          },
          (e: unknown) => {
            this.sim.cancel(timeout);
            c.busy = false;
            finish(error('Error', e instanceof Error ? e.message : String(e)));
          },
        );
      });
    });
  }

  private container(): Container {
    for (let i = this.containers.length - 1; i >= 0; i--) if (!this.containers[i].proc.alive) this.containers.splice(i, 1);
    const idle = this.containers.filter((c) => !c.busy);
    if (idle.length) {
      const c = this.rng.pick(idle);
      c.busy = true;
      return c;
    }
    const proc = this.sim.proc(`worker-${this.made++}`);
    const c: Container = { proc, handler: this.makeHandler(proc), busy: true };
    this.containers.push(c);
    return c;
  }
}
