import { SluiceError } from '../core/errors.ts';
import { TASK_PROTOCOL, type TaskDescriptor } from './protocol.ts';

/** A task payload that cannot be run: running it again will not help. */
export class TaskPayloadError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'TaskPayloadError';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Checks a payload's shape, so a wrong payload fails with a clear message instead of deep inside. */
export function validateTask(payload: unknown): TaskDescriptor {
  const bad = (what: string) => new TaskPayloadError(`not a Sluice task payload: ${what}`);
  if (!isObject(payload)) throw bad(`expected an object, got ${payload === null ? 'null' : typeof payload}`);
  const t = payload as Partial<TaskDescriptor> & Record<string, unknown>;
  if (t.protocol !== TASK_PROTOCOL) throw bad(`protocol must be ${TASK_PROTOCOL}, got ${JSON.stringify(t.protocol)} (coordinator and workers run different Sluice versions)`);
  if (typeof t.job !== 'string') throw bad('job must be a string');
  if (typeof t.fingerprint !== 'string') throw bad('fingerprint must be a string');
  if (typeof t.time !== 'number' || !Number.isFinite(t.time)) throw bad('time must be a number');
  if (typeof t.stageKey !== 'string') throw bad('stageKey must be a string');
  if (!Number.isInteger(t.partition) || (t.partition as number) < 0) throw bad('partition must be a whole number >= 0');
  if (!Number.isInteger(t.attempt) || (t.attempt as number) < 0) throw bad('attempt must be a whole number >= 0');
  if (!Number.isInteger(t.epoch) || (t.epoch as number) < 0) throw bad('epoch must be a whole number >= 0');
  if (!isObject(t.splitCounts)) throw bad('splitCounts must be an object');
  if (!isObject(t.splits)) throw bad('splits must be an object');
  if (!isObject(t.shuffleReads)) throw bad('shuffleReads must be an object');
  if (!isObject(t.cacheReads)) throw bad('cacheReads must be an object');
  if (typeof t.inlineLimit !== 'number') throw bad('inlineLimit must be a number');
  const s = t.stage as Record<string, unknown> | undefined;
  if (!isObject(s)) throw bad('stage must be an object');
  if (s.kind === 'map') {
    if (typeof s.shuffle !== 'string' || !Number.isInteger(s.parent)) throw bad('a map stage needs shuffle and parent');
  } else if (s.kind === 'cache') {
    if (typeof s.dataset !== 'string') throw bad('a cache stage needs dataset');
  } else if (s.kind === 'result') {
    const a = s.action as Record<string, unknown> | undefined;
    if (typeof s.dataset !== 'string' || !isObject(a) || !['collect', 'count', 'output'].includes(a.kind as string)) {
      throw bad('a result stage needs dataset and an action (collect, count or output)');
    }
  } else {
    throw bad(`unknown stage kind ${JSON.stringify(s.kind)}`);
  }
  return payload as unknown as TaskDescriptor;
}
