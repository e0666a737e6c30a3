/**
 * Deterministic input of the benchmarks: lines of exactly {@link LINE_BYTES} ASCII bytes made of
 * words from a ~1000-word vocabulary drawn with a Zipf-like distribution (a few words are very
 * common, most are rare, as in real text), a small fraction of them containing `ERROR`.
 *
 * Everything is derived from a seed, so every run (and both sides of every comparison) sees the
 * same bytes, and a change in the numbers comes from the code, not from the data.
 */

/** Bytes per generated line (ASCII, so also UTF-16 code units). */
export const LINE_BYTES = 100;

/** The marker the grep pipeline looks for. Vocabulary words are lowercase, so only inserted markers match. */
export const ERROR_MARKER = 'ERROR';

/** Longest vocabulary word; every length from 1 to this has words, so a line can always be filled exactly. */
const MAX_WORD = 10;

/**
 * mulberry32: a tiny, fast 32-bit PRNG. Quality is plenty for test data and, unlike
 * `Math.random`, it is seedable and identical on every platform.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Vocabulary {
  /** Words by rank: `words[0]` is the most frequent. */
  readonly words: readonly string[];
  /** Words of each length (index = length), used to fill the end of a line exactly. */
  readonly byLength: readonly (readonly string[])[];
  /** Cumulative Zipf weights over `words`, for sampling by binary search. */
  readonly cumulative: Float64Array;
}

/**
 * `size` distinct lowercase pseudo-words of 1..{@link MAX_WORD} letters, ranked for a Zipf
 * distribution with exponent `s` (weight of rank r ∝ 1 / r^s).
 */
export function makeVocabulary(rand: () => number, size = 1000, s = 1.05): Vocabulary {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const seen = new Set<string>();
  const words: string[] = [];
  const word = (len: number) => {
    let w = '';
    for (let i = 0; i < len; i++) w += letters[Math.floor(rand() * letters.length)];
    return w;
  };
  // A few words of every length first, so exact line filling never runs out of candidates.
  for (let len = 1; len <= MAX_WORD; len++) {
    for (let tries = 0, got = 0; got < 3 && tries < 1000; tries++) {
      const w = word(len);
      if (!seen.has(w)) {
        seen.add(w);
        words.push(w);
        got++;
      }
    }
  }
  while (words.length < size) {
    // Short words dominate natural text: lengths 2..8 mostly.
    const w = word(2 + Math.floor(rand() * rand() * (MAX_WORD - 1)));
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  // Shuffle so a word's rank (frequency) is unrelated to its length.
  for (let i = words.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [words[i], words[j]] = [words[j], words[i]];
  }
  const byLength: string[][] = Array.from({ length: MAX_WORD + 1 }, () => []);
  for (const w of words) byLength[w.length].push(w);
  const cumulative = new Float64Array(words.length);
  let total = 0;
  for (let r = 0; r < words.length; r++) {
    total += 1 / (r + 1) ** s;
    cumulative[r] = total;
  }
  return { words, byLength, cumulative };
}

/** A word drawn by Zipf rank. */
function sampleWord(v: Vocabulary, rand: () => number): string {
  const c = v.cumulative;
  const u = rand() * c[c.length - 1];
  let lo = 0;
  let hi = c.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (c[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return v.words[lo];
}

/**
 * One line of exactly `bytes` ({@link LINE_BYTES} unless told) bytes: words separated by single
 * spaces (so `split(' ')` yields only words, never empty strings), the last word chosen to fit exactly.
 */
function makeLine(v: Vocabulary, rand: () => number, withError: boolean, bytes: number): string {
  // Where the marker goes (as the k-th word) when this line has one; lines hold ~16 words.
  const errorAt = withError ? Math.floor(rand() * 8) : -1;
  const words: string[] = [];
  let length = -1; // length of words.join(' ') so far (no separator before the first word)
  for (;;) {
    const room = bytes - length - 1; // bytes left for the next word after its separator
    if (room <= MAX_WORD) {
      // Fill the rest exactly with a word of that length (every length has some).
      const fit = v.byLength[room];
      words.push(fit[Math.floor(rand() * fit.length)]);
      // join() builds a flat string; concatenation would leave a rope that whichever side of a
      // comparison touched it first would pay to flatten.
      return words.join(' ');
    }
    let w = words.length === errorAt ? ERROR_MARKER : sampleWord(v, rand);
    // Never leave exactly 1 byte: it would only fit the separator, not a word.
    while (room - w.length === 1) w = sampleWord(v, rand);
    words.push(w);
    length += w.length + 1;
  }
}

/** Options of {@link generateBatches}. */
export interface GenerateOptions {
  readonly seed: number;
  readonly batches: number;
  readonly linesPerBatch: number;
  /** Fraction of lines that contain {@link ERROR_MARKER}. @default 0.01 */
  readonly errorRate?: number;
  /** Bytes per line, more than the longest vocabulary word (10). @default {@link LINE_BYTES} */
  readonly lineBytes?: number;
}

/** `batches` arrays of `linesPerBatch` lines each, the same for the same options. */
export function generateBatches(options: GenerateOptions): string[][] {
  const rand = mulberry32(options.seed);
  const vocab = makeVocabulary(rand);
  const errorRate = options.errorRate ?? 0.01;
  const lineBytes = options.lineBytes ?? LINE_BYTES;
  if (!Number.isInteger(lineBytes) || lineBytes <= MAX_WORD) throw new Error(`lineBytes must be a whole number > ${MAX_WORD}, got ${lineBytes}`);
  const out: string[][] = [];
  for (let b = 0; b < options.batches; b++) {
    const lines = new Array<string>(options.linesPerBatch);
    for (let i = 0; i < options.linesPerBatch; i++) {
      lines[i] = makeLine(vocab, rand, rand() < errorRate, lineBytes);
    }
    out.push(lines);
  }
  return out;
}
