import type { StreamingListener } from '../core/listener.ts';
import type { OutputLog } from '../ports/index.ts';

// The coordinator function's log lines. With Lambda's JSON log format (the SluiceJob default) each
// line is one JSON object with the fields Lambda's own lines have (timestamp, level, requestId)
// and the batch it is about; in plain text, lines go through `console`, which Lambda prefixes with
// the time, the request id and the level.

/**
 * A log level as Lambda names it in JSON logs.
 * @example
 * ```ts
 * const level: LambdaLogLevel = 'WARN';
 * ```
 */
export type LambdaLogLevel = 'INFO' | 'WARN';

/**
 * The coordinator's log: the engine's lines (`info`, `warn`, `print`), the metric lines, and what
 * it knows about the invocation and the batch they belong to.
 *
 * @example
 * ```ts
 * const log = lambdaLog({ json: true });
 * log.invocation('c793869b-ee49-115b-a5b6-4fd21e8dedac');
 * log.listener.onBatchSubmitted?.({ batchTime: 1_700_000_001_000, submissionTime: 1_700_000_001_000, numRecords: 0 });
 * log.warn('a task was retried');
 * // {"timestamp":"…","level":"WARN","requestId":"c793869b-…","batchTime":1700000001000,"message":"a task was retried"}
 * ```
 */
export interface LambdaLog extends OutputLog {
  /** The invocation the lines that follow belong to (`context.awsRequestId`); no batch is current after it. */
  invocation(requestId: string | undefined): void;
  /** A listener that makes the batch in progress the one the lines that follow are about. */
  readonly listener: StreamingListener;
  /**
   * Writes an Embedded Metric Format line: to stdout as it is, for CloudWatch extracts metrics only
   * from a log event that is the EMF object itself; in JSON format with the level and request id
   * added to it, so that it is a structured line as the others are.
   */
  metric(line: string): void;
}

/**
 * Options of {@link lambdaLog}.
 * @example
 * ```ts
 * const lines: string[] = [];
 * const log = lambdaLog({ json: true, write: (line) => lines.push(line), now: () => 0 });
 * ```
 */
export interface LambdaLogOptions {
  /** One JSON object per line. @default whether Lambda's log format is JSON (`AWS_LAMBDA_LOG_FORMAT`) */
  readonly json?: boolean;
  /** Where the JSON lines and metric lines go. @default stdout */
  readonly write?: (line: string) => void;
  /** Where plain text lines go, by level. @default `console.log` and `console.warn` */
  readonly text?: (level: LambdaLogLevel, line: string) => void;
  /** The clock of the lines' timestamps. @default Date.now */
  readonly now?: () => number;
}

/**
 * The coordinator function's structured log (see {@link LambdaLog}). With Lambda's JSON log
 * format it writes its own JSON lines to stdout rather than through `console`, which Lambda would
 * wrap again (`"message": {…}`): Lambda reads their `level` and `timestamp` as it reads its own,
 * so the function's application log level filters them.
 *
 * @example
 * ```ts
 * const log = lambdaLog();
 * export const handler = async (event: unknown, context: { awsRequestId: string }) => {
 *   log.invocation(context.awsRequestId);
 *   log.info('coordinator: started');
 * };
 * ```
 */
export function lambdaLog(options: LambdaLogOptions = {}): LambdaLog {
  const json = options.json ?? process.env.AWS_LAMBDA_LOG_FORMAT === 'JSON';
  const write = options.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const text = options.text ?? ((level: LambdaLogLevel, line: string) => (level === 'WARN' ? console.warn(line) : console.log(line)));
  const now = options.now ?? Date.now;
  let requestId: string | undefined;
  let batchTime: number | undefined;

  const line = (level: LambdaLogLevel, message: string) => {
    if (!json) return text(level, level === 'WARN' ? `warning: ${message}` : message);
    write(JSON.stringify({ timestamp: new Date(now()).toISOString(), level, requestId, ...(batchTime === undefined ? {} : { batchTime }), message }));
  };
  return {
    invocation(id) {
      requestId = id;
      batchTime = undefined;
    },
    listener: {
      onBatchSubmitted: (b) => void (batchTime = b.batchTime),
      onBatchCompleted: () => void (batchTime = undefined),
    },
    info: (message) => line('INFO', message),
    warn: (message) => line('WARN', message),
    print: (block) => line('INFO', block.trimEnd()),
    metric(emf) {
      // The EMF object with two more members, spliced in rather than parsed and written again.
      write(json && emf.startsWith('{') ? `{"level":"INFO","requestId":${JSON.stringify(requestId ?? null)},${emf.slice(1)}` : emf);
    },
  };
}
