// Plain values as every layer sees them: JSON, which crosses processes and lands in the stores,
// and how a message describes a value the user gave.

/**
 * Any value that survives `JSON.stringify` / `JSON.parse` unchanged.
 * @example
 * ```ts
 * const params: JsonValue = { stream: 'clicks', maxRecordsPerBatch: 5000 };
 * ```
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A short description of a value for error messages: what it is, never all of it.
 * @example
 * ```ts
 * describeValue(0);     // 'the number 0'
 * describeValue([1, 2]); // 'an array of length 2'
 * ```
 */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 40)}…` : v;
      return `the string ${JSON.stringify(s)}`;
    }
    case 'number':
    case 'boolean':
    case 'bigint':
      return `the ${typeof v} ${String(v)}`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    default:
      return `an object (${Object.prototype.toString.call(v)})`;
  }
}
