import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { CL100K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';

/** Merged pieces remembered, of at most this many bytes (~150 bytes each; gpt-tokenizer remembers up to 100,000 of any length). */
const MERGED_CACHE_SIZE = 2048;
const MERGED_CACHE_PIECE_BYTES = 64;
/**
 * Longer pieces (a long word, an identifier, a run of one character, base64) are costly to
 * merge and may repeat too (the same blob in a request and its echo, a fixed banner): kept
 * in a second cache bounded by the bytes of its keys.
 */
const LONG_CACHE_BYTES = 1024 * 1024;

const NEWLINE = 0x0a;
const SPACE = 0x20;
const ZERO = 0x30;
const PAD = 0x3d; // '='
/** Standard base64 alphabet → 6-bit value; -1 for anything else. */
const BASE64 = new Int8Array(256).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) BASE64[c.charCodeAt(0)] = i;

/** Pair keys in the merge heap: rank · this + start (both fit: ranks < 2^17, starts < 2^32). */
const PAIR_KEY_SCALE = 4294967296;

/**
 * Counts `cl100k_base` tokens with the vocabulary gpt-tokenizer ships as a tiktoken file
 * (`gpt-tokenizer/data/cl100k_base.tiktoken`: base64 token, rank, one a line), held in
 * ~2 MB of typed arrays: the token bytes back to back, their offsets by rank, and an
 * open-addressing hash table from bytes to rank. gpt-tokenizer's own encoder keeps the
 * vocabulary as 100k JS strings, a 100k-entry Map and a merge cache of up to 100k more
 * entries (~10 MB of heap that grows with the variety of the text seen, and a 1.2 MB
 * module whose source and code stay loaded); the counts are the same.
 *
 * Same algorithm as gpt-tokenizer and tiktoken: the text is split with the cl100k
 * pattern (gpt-tokenizer's), each piece that is a token counts 1, any other is
 * byte-pair merged (always the adjacent pair of lowest rank, leftmost first) and counts
 * its parts. The merge runs on a heap (O(n log n)), so a long run of letters cannot
 * stall the flush; the counts of the last 2,048 merged pieces (of up to 64 bytes) are
 * remembered. Special-token texts (`<|endoftext|>` …) count as the ordinary text they
 * are (tiktoken's `encode_ordinary`), where gpt-tokenizer's `countTokens` throws.
 */
export class Cl100kCounter {
  readonly #bytes: Uint8Array;
  readonly #offsets: Uint32Array;
  /** Rank + 1 per slot; 0 is empty. Size: a power of two, at least twice the vocabulary. */
  readonly #slots: Int32Array;
  readonly #mask: number;
  readonly #split = new RegExp(CL100K_TOKEN_SPLIT_REGEX.source, 'gu');
  readonly #encoder = new TextEncoder();
  #piece = new Uint8Array(1024);
  // Merge state, reused across pieces (grown on demand).
  #next = new Int32Array(1024);
  #prev = new Int32Array(1024);
  #heapKeys = new Float64Array(1024);
  #heapEnds = new Int32Array(1024);
  #heapSize = 0;
  /** Merged pieces → their token count, oldest out first. */
  readonly #merged = new Map<string, number>();

  private constructor(bytes: Uint8Array, offsets: Uint32Array) {
    this.#bytes = bytes;
    this.#offsets = offsets;
    const ranks = offsets.length - 1;
    let size = 1;
    while (size < ranks * 2) size <<= 1;
    this.#slots = new Int32Array(size);
    this.#mask = size - 1;
    for (let rank = 0; rank < ranks; rank++) {
      let slot = this.#hash(bytes, offsets[rank]!, offsets[rank + 1]!) & this.#mask;
      while (this.#slots[slot] !== 0) slot = (slot + 1) & this.#mask;
      this.#slots[slot] = rank + 1;
    }
  }

  /** Reads the vocabulary from the gpt-tokenizer package (or `file`). */
  static async load(file = createRequire(import.meta.url).resolve('gpt-tokenizer/data/cl100k_base.tiktoken')): Promise<Cl100kCounter> {
    return Cl100kCounter.fromTiktoken(await readFile(file));
  }

  /**
   * Builds the counter from tiktoken text: `<base64 token> <rank>` per line, ranks 0…n-1.
   * Decodes straight from the file's bytes into the vocabulary (no string per line), so
   * loading leaves no garbage beyond the file itself.
   */
  static fromTiktoken(data: Uint8Array | string): Cl100kCounter {
    const file = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const refuse = (at: number) => {
      const end = file.indexOf(NEWLINE, at);
      throw new Error(`not a tiktoken vocabulary: bad line ${JSON.stringify(Buffer.from(file.subarray(at, end === -1 ? file.length : end)).toString('latin1').slice(0, 80))}`);
    };
    let lines = 0;
    for (let i = 0; i < file.length; i++) if (file[i] === NEWLINE && i > 0 && file[i - 1] !== NEWLINE) lines++;
    if (file.length > 0 && file[file.length - 1] !== NEWLINE) lines++;
    // Per rank: where its base64 starts and how long it is.
    const starts = new Int32Array(lines).fill(-1);
    const lengths = new Int32Array(lines);
    let total = 0;
    for (let at = 0; at < file.length; ) {
      let end = file.indexOf(NEWLINE, at);
      if (end === -1) end = file.length;
      if (end === at) {
        at++;
        continue;
      }
      const space = file.indexOf(SPACE, at);
      if (space <= at || space >= end) refuse(at);
      let rank = 0;
      for (let i = space + 1; i < end; i++) {
        const digit = file[i]! - ZERO;
        if (digit < 0 || digit > 9) refuse(at);
        rank = rank * 10 + digit;
      }
      if (space + 1 === end || rank >= lines || starts[rank] !== -1 || (space - at) % 4 !== 0) refuse(at);
      starts[rank] = at;
      lengths[rank] = space - at;
      total += ((space - at) / 4) * 3 - (file[space - 1] === PAD ? 1 : 0) - (file[space - 2] === PAD ? 1 : 0);
      at = end + 1;
    }
    const bytes = new Uint8Array(total);
    const offsets = new Uint32Array(lines + 1);
    let out = 0;
    for (let rank = 0; rank < lines; rank++) {
      const at = starts[rank]!;
      if (at === -1) throw new Error(`not a tiktoken vocabulary: rank ${rank} is missing`);
      const last = at + lengths[rank]! - 4;
      for (let i = at; i <= last; i += 4) {
        // Padding only ends the last quartet: `xx==` or `xxx=`.
        if ((file[i + 2] === PAD || file[i + 3] === PAD) && (i !== last || file[i + 3] !== PAD)) refuse(at);
        const a = BASE64[file[i]!]!;
        const b = BASE64[file[i + 1]!]!;
        const c = file[i + 2] === PAD ? 0 : BASE64[file[i + 2]!]!;
        const d = file[i + 3] === PAD ? 0 : BASE64[file[i + 3]!]!;
        if ((a | b | c | d) < 0) refuse(at);
        bytes[out++] = (a << 2) | (b >> 4);
        if (file[i + 2] !== PAD) bytes[out++] = ((b & 15) << 4) | (c >> 2);
        if (file[i + 3] !== PAD) bytes[out++] = ((c & 3) << 6) | d;
      }
      offsets[rank + 1] = out;
    }
    if (out !== total) throw new Error('not a tiktoken vocabulary: the token bytes do not add up');
    return new Cl100kCounter(bytes, offsets);
  }

  /** Tokens in the vocabulary. */
  get size(): number {
    return this.#offsets.length - 1;
  }

  /** Bytes held by the vocabulary and its index. */
  get byteLength(): number {
    return this.#bytes.byteLength + this.#offsets.byteLength + this.#slots.byteLength;
  }

  /** cl100k_base tokens of `text`. */
  count(text: string): number {
    // `test` moves `lastIndex` past each piece without allocating a match.
    const split = this.#split;
    split.lastIndex = 0;
    let count = 0;
    let start = 0;
    while (split.test(text)) {
      const end = split.lastIndex;
      if (end === start) {
        split.lastIndex++;
        start = split.lastIndex;
        continue;
      }
      count += this.#countPiece(text, start, end);
      start = end;
    }
    return count;
  }

  /** Tokens of the piece `text[start, end)`. */
  #countPiece(text: string, start: number, end: number): number {
    // Every single byte is a token; so is any one-character ASCII piece.
    if (end - start === 1 && text.charCodeAt(start) < 0x80) return 1;
    const length = this.#utf8(text, start, end);
    if (length <= 1 || this.#rank(this.#piece, 0, length) >= 0) return 1;
    // Short pieces that need merging (rarer words, identifiers) repeat across calls.
    // Keyed by a copy of the bytes: a slice of `text` would keep all of `text` alive.
    const piece = Buffer.from(this.#piece.buffer, this.#piece.byteOffset, length).toString('latin1');
    if (length > MERGED_CACHE_PIECE_BYTES) return this.#countLong(piece, length);
    let parts = this.#merged.get(piece);
    if (parts === undefined) {
      parts = this.#merge(length);
      if (this.#merged.size >= MERGED_CACHE_SIZE) this.#merged.delete(this.#merged.keys().next().value!);
      this.#merged.set(piece, parts);
    }
    return parts;
  }

  #long = new Map<string, number>();
  #longBytes = 0;

  /** A piece longer than the short cache takes, through the byte-bounded long cache. */
  #countLong(piece: string, length: number): number {
    let parts = this.#long.get(piece);
    if (parts !== undefined) return parts;
    parts = this.#merge(length);
    if (length > LONG_CACHE_BYTES / 16) return parts;
    this.#long.set(piece, parts);
    this.#longBytes += length;
    while (this.#longBytes > LONG_CACHE_BYTES) {
      const oldest = this.#long.keys().next().value!;
      this.#long.delete(oldest);
      this.#longBytes -= oldest.length;
    }
    return parts;
  }

  /** UTF-8 of `text[start, end)` into the scratch buffer; its length. */
  #utf8(text: string, start: number, end: number): number {
    if (this.#piece.length < (end - start) * 3) this.#piece = new Uint8Array((end - start) * 3);
    const bytes = this.#piece;
    for (let i = start; i < end; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) return this.#encoder.encodeInto(text.slice(start, end), bytes).written;
      bytes[i - start] = code;
    }
    return end - start;
  }

  /** Byte-pair merges the scratch piece of `n` bytes; the number of parts left. */
  #merge(n: number): number {
    if (this.#next.length < n + 1) {
      this.#next = new Int32Array(n + 1);
      this.#prev = new Int32Array(n + 1);
    }
    // Each merge pops one pair and pushes at most two: the heap never holds more than 2n.
    if (this.#heapKeys.length < 2 * n) {
      this.#heapKeys = new Float64Array(2 * n);
      this.#heapEnds = new Int32Array(2 * n);
    }
    // Parts are [i, next[i]); a merged-away start has next[i] = -1.
    const next = this.#next;
    const prev = this.#prev;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    this.#heapSize = 0;
    for (let i = 0; i + 1 < n; i++) this.#push(i, i + 2);
    let parts = n;
    const keys = this.#heapKeys;
    const ends = this.#heapEnds;
    while (this.#heapSize > 0) {
      const start = keys[0]! % PAIR_KEY_SCALE;
      const end = ends[0]!;
      this.#pop();
      // Stale unless the part at `start` and the one after it are still exactly [start, end).
      const middle = next[start]!;
      if (middle === -1 || middle >= n || next[middle] !== end) continue;
      next[start] = end;
      next[middle] = -1;
      if (end < n) prev[end] = start;
      parts--;
      if (end < n) this.#push(start, next[end]!);
      const before = prev[start]!;
      if (before >= 0) this.#push(before, end);
    }
    return parts;
  }

  /** Queues the pair [start, end) of the scratch piece if it is a token. Key = rank · 2^32 + start: the lowest rank first, the leftmost among equals (tiktoken's order). */
  #push(start: number, end: number): void {
    const rank = this.#rank(this.#piece, start, end);
    if (rank < 0) return;
    const keys = this.#heapKeys;
    const ends = this.#heapEnds;
    const key = rank * PAIR_KEY_SCALE + start;
    let i = this.#heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      ends[i] = ends[parent]!;
      i = parent;
    }
    keys[i] = key;
    ends[i] = end;
  }

  /** Removes the heap's first pair. */
  #pop(): void {
    const keys = this.#heapKeys;
    const ends = this.#heapEnds;
    const size = --this.#heapSize;
    const lastKey = keys[size]!;
    const lastEnd = ends[size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && keys[child + 1]! < keys[child]!) child++;
      if (keys[child]! >= lastKey) break;
      keys[i] = keys[child]!;
      ends[i] = ends[child]!;
      i = child;
    }
    keys[i] = lastKey;
    ends[i] = lastEnd;
  }

  /** Rank of bytes [start, end) of `source`, or -1. */
  #rank(source: Uint8Array, start: number, end: number): number {
    const slots = this.#slots;
    const vocabulary = this.#bytes;
    const offsets = this.#offsets;
    const length = end - start;
    let slot = this.#hash(source, start, end) & this.#mask;
    for (;;) {
      const entry = slots[slot]!;
      if (entry === 0) return -1;
      const rank = entry - 1;
      const at = offsets[rank]!;
      if (offsets[rank + 1]! - at === length) {
        let i = 0;
        while (i < length && vocabulary[at + i] === source[start + i]) i++;
        if (i === length) return rank;
      }
      slot = (slot + 1) & this.#mask;
    }
  }

  /** FNV-1a over bytes [start, end). */
  #hash(source: Uint8Array, start: number, end: number): number {
    let hash = 0x811c9dc5;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ source[i]!, 0x01000193);
    return hash >>> 0;
  }
}
