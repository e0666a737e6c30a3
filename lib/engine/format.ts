/**
 * Text of a record the way Spark prints it: tuples (pairs) as `(a,b)`, arrays in a tuple as
 * `[a, b]`-free lists, objects as JSON, strings as they are.
 */
export function formatRecord(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'undefined':
      return 'None';
    case 'object':
      if (v === null) return 'null';
      if (Array.isArray(v)) return `(${v.map(formatRecord).join(',')})`;
      if (v instanceof Date) return v.toISOString();
      if (v instanceof Map) return `Map(${[...v].map(([k, x]) => `${formatRecord(k)} -> ${formatRecord(x)}`).join(', ')})`;
      if (v instanceof Set) return `Set(${[...v].map(formatRecord).join(', ')})`;
      return JSON.stringify(v);
    default:
      return String(v);
  }
}

/** One JSON line of a record (`undefined` becomes `null`, so every line parses). */
export function jsonLine(v: unknown): string {
  return JSON.stringify(v === undefined ? null : v, (_k, x) => (x === undefined ? null : typeof x === 'bigint' ? x.toString() : x));
}

const RULE = '-------------------------------------------';

/** Spark's `print()` block for a batch. `records` holds up to `num + 1` records. */
export function printBlock(time: number, records: readonly unknown[], num: number): string {
  const lines = [RULE, `Time: ${time} ms`, RULE];
  for (let i = 0; i < Math.min(num, records.length); i++) lines.push(formatRecord(records[i]));
  if (records.length > num) lines.push('...');
  lines.push('');
  return `${lines.join('\n')}\n`;
}

/** `part-00007` */
export function partName(partition: number): string {
  return `part-${String(partition).padStart(5, '0')}`;
}

/** `<prefix>-<time>[.<suffix>]`, Spark's name of a batch's output directory. */
export function outputLocation(prefix: string, time: number, suffix: string | undefined): string {
  return `${prefix}-${time}${suffix ? `.${suffix}` : ''}`;
}
