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

/** A recognizer scans the whole text once; it holds its precompiled state in a closure. */
export type Recognizer = (text: string, sink: FindingSink) => void;
