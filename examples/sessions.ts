// User sessions from a click stream: a session is a run of clicks with no gap longer than
// SESSION_IDLE; when a user has been idle that long, mapWithState's timeout closes the session
// and the job prints it as (user,{"clicks":..,"startedAt":..,"endedAt":..}).
//   SLUICE_SESSION_IDLE=2s npx sluice run examples/sessions.ts --batches 8   # sessions close within seconds
//   npx sluice run examples/sessions.ts --batches 40                          # the default 30s idle time
// With the default, the first sessions close about 33 s after the start.
import { defineJob, StateSpec, type State } from 'sluice';

const SESSION_IDLE = process.env.SLUICE_SESSION_IDLE || '30s'; // unset or empty: 30s
const RATE = 40; // clicks per second

interface Click {
  readonly user: string;
  readonly page: string;
}
interface Session {
  readonly clicks: number;
  readonly startedAt: number; // batch times (ms) of the first and the last click
  readonly lastClickAt: number;
}
interface ClosedSession {
  readonly clicks: number;
  readonly startedAt: string;
  readonly endedAt: string;
}

// Users come and go on a 60 s cycle: user k arrives at second 3k and stays 2 to 10 s, then is away
// for 50 s or more (longer than the default idle time, so every visit is its own session). It is a
// function of the record index, so a run's sessions are the same every time: at RATE records a
// second, record i belongs to second i / RATE of the job.
const USERS = 20;
const CYCLE = 60;
const present = (k: number, second: number) => (((second - 3 * k) % CYCLE) + CYCLE) % CYCLE < 2 + (k % 5) * 2;
const PAGES = ['/', '/products', '/products/42', '/cart', '/checkout', '/help'];

function click(i: number): Click {
  const second = Math.floor(i / RATE);
  const here = Array.from({ length: USERS }, (_, k) => k).filter((k) => present(k, second)); // never empty
  const k = here[i % here.length];
  return { user: `user-${String(k).padStart(2, '0')}`, page: PAGES[i % PAGES.length] };
}

/** Counts a user's clicks; on timeout (no click for SESSION_IDLE) emits the closed session. */
function track(user: string, c: Click | undefined, state: State<Session>, time: number): [string, ClosedSession] | undefined {
  if (state.isTimingOut()) {
    const s = state.get();
    return [user, { clicks: s.clicks, startedAt: new Date(s.startedAt).toISOString(), endedAt: new Date(s.lastClickAt).toISOString() }];
  }
  if (c === undefined) return undefined;
  const s = state.getOption();
  state.update({ clicks: (s?.clicks ?? 0) + 1, startedAt: s?.startedAt ?? time, lastClickAt: time });
  return undefined; // open sessions emit nothing; stateSnapshots() would show them
}

export default defineJob({ name: 'sessions', batchInterval: '1s' }, (ctx) => {
  const clicks = ctx.generatorStream({ ratePerSec: RATE, make: click }).map((c) => [c.user, c] as [string, Click]);
  const closed = clicks.mapWithState(StateSpec.function(track).timeout(SESSION_IDLE));
  closed.print();
});
