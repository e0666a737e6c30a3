import { portValue, progressLineParts } from '../core/metrics.ts';
import type { BatchMetrics, Metrics, OutputLog } from '../ports/index.ts';

/**
 * `print()` blocks to stdout, progress and warnings to stderr, so piping stdout keeps only the
 * job's output.
 *
 * @example
 * ```ts
 * const log = consoleLog({ quiet: false });
 * ```
 */
export function consoleLog(options: { quiet?: boolean } = {}): OutputLog {
  return {
    print: (text) => process.stdout.write(text),
    info: (line) => {
      if (!options.quiet) process.stderr.write(`${line}\n`);
    },
    warn: (line) => process.stderr.write(`warning: ${line}\n`),
  };
}

/** A log that keeps everything in arrays (tests). */
export function memoryLog(): OutputLog & { printed: string[]; infos: string[]; warnings: string[] } {
  const printed: string[] = [];
  const infos: string[] = [];
  const warnings: string[] = [];
  return { printed, infos, warnings, print: (t) => printed.push(t), info: (l) => infos.push(l), warn: (l) => warnings.push(l) };
}

/** A batch's time of day in UTC, the zone named: batch times are epoch milliseconds, the same on every machine. */
function clockTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 23)} UTC`;
}

/**
 * One progress line per batch: records in, processing time, scheduling delay (the catalogue's
 * `progressLineParts`).
 *
 * @example
 * ```ts
 * // batch 12:00:01.000 UTC  1000 records  processed in 12 ms  scheduling delay 3 ms
 * ```
 */
export function progressMetrics(write: (line: string) => void): Metrics {
  return {
    batch: (m: BatchMetrics) => write([`batch ${clockTime(m.batchTime)}`, ...progressLineParts.map((p) => p.text(portValue(m, p.metric)))].join('  ')),
  };
}
