import type { DataPlaneLogger } from '../logger.js';

/** Text longer than this is estimated from its first this-many characters, scaled by length. */
export const TOKEN_SAMPLE_CHARS = 16 * 1024;

type CountTokens = (text: string) => number;

let loading: Promise<CountTokens | undefined> | undefined;

/**
 * Token estimates with a real BPE tokenizer (`gpt-tokenizer`, `cl100k_base`: the smaller
 * of its modern encodings in memory, ~45 MB, and within a few percent of `o200k_base` on
 * JSON and prose). The encoding is loaded once per process, on the first flush of the
 * audit shipper, never on a call's path. Long texts are sampled: tokenizing runs at
 * ~10 MB/s, and an audit estimate does not need the exact count of a 4 MiB body.
 */
export class TokenEstimator {
  #count: CountTokens | undefined;

  constructor(private readonly logger?: DataPlaneLogger) {}

  /** Loads the encoding (once per process); resolves false when it cannot be loaded. */
  async ready(): Promise<boolean> {
    if (this.#count) return true;
    loading ??= import('gpt-tokenizer/encoding/cl100k_base').then(
      (module) => module.countTokens as CountTokens,
      (error: unknown) => {
        this.logger?.warn({ err: error }, 'gpt-tokenizer could not be loaded; audit entries carry no token estimates');
        return undefined;
      },
    );
    this.#count = await loading;
    return this.#count !== undefined;
  }

  /** Estimated tokens of `text`; null before {@link ready} succeeded or for no text. */
  estimate(text: string | undefined): number | null {
    const count = this.#count;
    if (!count || text === undefined) return null;
    if (text.length <= TOKEN_SAMPLE_CHARS) return count(text);
    return Math.round((count(text.slice(0, TOKEN_SAMPLE_CHARS)) * text.length) / TOKEN_SAMPLE_CHARS);
  }
}
