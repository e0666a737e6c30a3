/**
 * Task payloads and results as JSON, for invokers that cross a process boundary by text (Lambda):
 * byte arrays become `{ "$bytes": "<base64>" }`, `Infinity` (an open-ended byte range) becomes
 * `{ "$num": "Infinity" }`. Worker threads need none of this: they clone.
 */
export function toWire(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
    return v;
  });
}

/** Reads what {@link toWire} wrote. */
export function fromWire(text: string): unknown {
  return JSON.parse(text, (_k, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'base64'));
      if (keys.length === 1 && typeof v.$num === 'string') return Number(v.$num);
    }
    return v;
  });
}
