import type { EntityType } from '../finding.js';

/**
 * Where recognizers report candidates. `emit` applies context boosting, the scanner's
 * entity selection, minimum confidence and allow list, and answers whether the candidate
 * was kept, so a recognizer can try another reading of the same characters when it was not.
 */
export interface FindingSink {
  wants(type: EntityType): boolean;
  emit(type: EntityType, start: number, end: number, baseConfidence: number): boolean;
}

/**
 * A recognizer, driven by the scanner's single trigger pass (`pii-scanner.ts`): the pass
 * walks the text's code-unit bytes (`codes.ts`) once, collects every `i` where both
 * `trigger(codes[i - 1], codes[i])` and `triggerNext(codes[i], codes[i + 1])` hold
 * (`codes[-1]` reads as a space, `codes[length]` as 0) and hands them to `run`, a stretch
 * of text at a time, in increasing order. Each recognizer keeps its own resume position,
 * so it sees exactly the candidates its former RegExp trigger found with `lastIndex`;
 * `triggerNext` may only rule out positions where that RegExp could not match. State
 * lives in the recognizer's closure, set by `begin`. The predicates are read once, into
 * the pass's tables.
 */
export interface Recognizer {
  /** Whether a candidate can be found at `i` given the units at `i - 1` and `i`. */
  readonly trigger: (before: number, current: number) => boolean;
  /** Whether a candidate can be found at `i` given the units at `i` and `i + 1`. */
  readonly triggerNext: (current: number, next: number) => boolean;
  /** Prepares a scan; false when none of the recognizer's entity types is wanted (it is then not called). */
  begin(text: string, codes: Uint8Array, sink: FindingSink): boolean;
  /** Trigger positions `positions[0..count)`, increasing and after those of earlier calls. */
  run(positions: Int32Array, count: number): void;
}

