import type { DataPlaneLogger } from '../logger.js';
import { Cl100kCounter } from './cl100k-counter.js';

/** Text longer than this is estimated from its first this-many characters, scaled by length. */
export const TOKEN_SAMPLE_CHARS = 16 * 1024;

let loading: Promise<Cl100kCounter | undefined> | undefined;

/**
 * Token estimates with a real BPE tokenizer: `cl100k_base`, counted by
 * {@link Cl100kCounter} from the vocabulary file gpt-tokenizer ships (the same counts as
 * gpt-tokenizer's `countTokens`, in ~2 MB of typed arrays instead of ~10 MB of heap and
 * a merge cache that grows with the text seen). `cl100k_base` rather than `o200k_base`:
 * half the vocabulary, within a few percent on JSON and prose. The vocabulary is loaded
 * once per process, on the first flush of the audit shipper, never on a call's path.
 * Long texts are sampled: counting runs at ~5 MB/s, and an audit estimate does not need
 * the exact count of a 4 MiB body.
 */
export class TokenEstimator {
  #counter: Cl100kCounter | undefined;

  constructor(private readonly logger?: DataPlaneLogger) {}

  /** Loads the vocabulary (once per process); resolves false when it cannot be loaded. */
  async ready(): Promise<boolean> {
    if (this.#counter) return true;
    loading ??= Cl100kCounter.load().catch((error: unknown) => {
      this.logger?.warn({ err: error }, 'the cl100k_base vocabulary could not be loaded; audit entries carry no token estimates');
      return undefined;
    });
    this.#counter = await loading;
    return this.#counter !== undefined;
  }

  /** Estimated tokens of `text`; null before {@link ready} succeeded or for no text. */
  estimate(text: string | undefined): number | null {
    const counter = this.#counter;
    if (!counter || text === undefined) return null;
    if (text.length <= TOKEN_SAMPLE_CHARS) return counter.count(text);
    return Math.round((counter.count(text.slice(0, TOKEN_SAMPLE_CHARS)) * text.length) / TOKEN_SAMPLE_CHARS);
  }
}
