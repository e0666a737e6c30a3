import { describe, expect, it } from 'vitest';
import { buildGraph, defineJob } from '../../lib/api/job.ts';
import { emfMetrics } from '../../lib/aws/emfMetrics.ts';
import { createCoordinatorHandler } from '../../lib/aws/handlers.ts';
import { lambdaLog } from '../../lib/aws/lambdaLog.ts';
import type { CoordinatorRuntime } from '../../lib/engine/coordinator.ts';
import { Worker } from '../../lib/engine/worker.ts';
import { InProcessInvoker } from '../../lib/local/inProcessInvoker.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import { ManualClock } from '../../lib/node/clock.ts';

// The coordinator function's structured log (lib/aws/lambdaLog.ts): with Lambda's JSON log format,
// one JSON object per line with timestamp, level, request id and the batch in progress; EMF lines
// stay EMF objects (CloudWatch extracts metrics only from a log event that is the EMF object).

const AT = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

/** A JSON-format log whose lines are kept, parsed. */
function jsonLog() {
  const lines: string[] = [];
  const log = lambdaLog({ json: true, write: (l) => lines.push(l), now: () => AT });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('lambdaLog in JSON format', () => {
  it('writes each line as one JSON object: timestamp, level, request id, the batch in progress, message', () => {
    // Prepare
    const { log, parsed } = jsonLog();

    // Act: an invocation, a line before any batch, lines of batch 60000, a line after it.
    log.invocation('req-1');
    log.info('coordinator: started');
    log.listener.onBatchSubmitted?.({ batchTime: 60_000, submissionTime: 60_000, numRecords: 0 });
    log.warn('a task was retried');
    log.print('-------------------------------------------\nTime: 60000 ms\n-------------------------------------------\n(a,1)\n\n');
    log.listener.onBatchCompleted?.({ batchTime: 60_000, submissionTime: 60_000, numRecords: 1 });
    log.info('coordinator: done');

    // Assess
    const timestamp = '2026-01-02T03:04:05.006Z';
    expect(parsed()).toEqual([
      { timestamp, level: 'INFO', requestId: 'req-1', message: 'coordinator: started' },
      { timestamp, level: 'WARN', requestId: 'req-1', batchTime: 60_000, message: 'a task was retried' },
      { timestamp, level: 'INFO', requestId: 'req-1', batchTime: 60_000, message: '-------------------------------------------\nTime: 60000 ms\n-------------------------------------------\n(a,1)' },
      { timestamp, level: 'INFO', requestId: 'req-1', message: 'coordinator: done' },
    ]);
  });

  it('a new invocation has its own request id and no batch until one is submitted', () => {
    const { log, parsed } = jsonLog();

    log.invocation('req-1');
    log.listener.onBatchSubmitted?.({ batchTime: 60_000, submissionTime: 60_000, numRecords: 0 });
    log.invocation('req-2');
    log.info('next minute');

    expect(parsed()).toEqual([{ timestamp: expect.any(String), level: 'INFO', requestId: 'req-2', message: 'next minute' }]);
  });

  it('keeps an EMF line the EMF object, with its level and request id added, its metrics and dimensions intact', () => {
    // Prepare
    const { log, parsed } = jsonLog();
    log.invocation('req-1');

    // Act
    emfMetrics((l) => log.metric(l), { deployment: 'S' }).batch({ job: 'j', batchTime: 60_000, inputRecords: 5, schedulingDelayMs: 1, processingDelayMs: 2, totalDelayMs: 3 });

    // Assess
    const [line] = parsed();
    expect(line).toMatchObject({ level: 'INFO', requestId: 'req-1', Job: 'j', Stack: 'S', BatchTime: 60_000, InputRecords: 5, TotalDelay: 3 });
    expect(line._aws).toMatchObject({ Timestamp: 60_000, CloudWatchMetrics: [{ Namespace: 'Sluice', Dimensions: [['Job', 'Stack']] }] });
  });
});

describe('lambdaLog in text format', () => {
  it('hands lines to the console by level (Lambda prefixes time, request id and level), warnings marked, and EMF lines as they are', () => {
    const text: [string, string][] = [];
    const raw: string[] = [];
    const log = lambdaLog({ json: false, text: (level, line) => text.push([level, line]), write: (l) => raw.push(l) });

    log.invocation('req-1');
    log.info('coordinator: started');
    log.warn('a task was retried');
    log.metric('{"_aws":{}}');

    expect(text).toEqual([
      ['INFO', 'coordinator: started'],
      ['WARN', 'warning: a task was retried'],
    ]);
    expect(raw).toEqual(['{"_aws":{}}']);
  });
});

describe('the coordinator handler with lambdaLog, wired as coordinatorHandler wires it', () => {
  it("a batch's print() output carries that batch's time and the invocation's request id", async () => {
    // Prepare: a job printing each batch; the log's listener on the graph, as coordinatorHandler puts it.
    const clock = new ManualClock(1_000_000);
    const job = defineJob({ name: 'printed', batchInterval: 1000 }, (ctx) => ctx.queueStream([['a'], ['b']], { default: [] }).print());
    const { log, parsed } = jsonLog();
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const handler = createCoordinatorHandler(
      async () => job,
      (graph): CoordinatorRuntime => {
        graph.listeners.push(log.listener);
        const base = { blobs, sources: localSources(), sinks: localSinks(process.cwd()) };
        return { ...base, meta, invoker: new InProcessInvoker(new Worker(buildGraph(job), base), 1), clock, log, owner: 'test' };
      },
      { marginMs: 0, log: (line) => log.info(line) },
    );

    // Act
    log.invocation('req-7');
    await handler({}, { getRemainingTimeInMillis: () => 2500 });

    // Assess
    const printed = parsed().filter((l) => String(l.message).includes('Time: '));
    expect(printed.length).toBeGreaterThan(0);
    for (const line of printed) {
      expect(line).toMatchObject({ level: 'INFO', requestId: 'req-7' });
      expect(String(line.message)).toContain(`Time: ${line.batchTime as number} ms`);
    }
  });
});
