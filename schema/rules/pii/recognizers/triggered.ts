import type { EntityType } from '../finding.js';
import type { FindingSink, Recognizer } from './sink.js';

/** What a recognizer built by {@link triggeredRecognizer} states; the builder does the rest. */
export interface TriggeredRecognizerSpec {
  /** The entity types it reports; it runs when the scanner wants any of them. */
  readonly types: readonly EntityType[];
  readonly trigger: Recognizer['trigger'];
  readonly triggerNext: Recognizer['triggerNext'];
  /**
   * A scan starts: the text's code-unit bytes and length and the scanner's sink, plus which
   * of `types` the sink wants (`wants[k]` for `types[k]`; asked once per sink, as the
   * sink and its wishes never change). The recognizer resets its resume position here.
   */
  readonly begin: (codes: Uint8Array, length: number, sink: FindingSink, wants: readonly boolean[]) => void;
  /** Looks at one trigger position (positions come in increasing order). */
  readonly at: (position: number) => void;
}

/**
 * A recognizer driven by the scanner's trigger pass from its trigger predicates, a `begin`
 * per scan and an `at` per trigger position: the begin/run scaffolding the recognizers
 * had each written out (keeping the scan's state, asking the sink what it wants once,
 * running `at` over each stretch of positions). A recognizer with several entity types
 * (`numeric.ts`) reads its wishes from `wants`. Each recognizer keeps its own copy of the
 * scan's text, length, sink and resume position in closure variables (set in `begin`):
 * `numeric.ts` reads them from several nested helpers in its hot loops, where a shared
 * state object would add a property load per read to code tuned cell by cell.
 */
export function triggeredRecognizer(spec: TriggeredRecognizerSpec): Recognizer {
  const { types, begin, at } = spec;
  const wants = types.map(() => false);
  let wanted = false;
  let sink: FindingSink | undefined;
  return {
    trigger: spec.trigger,
    triggerNext: spec.triggerNext,
    begin(text, codes, findings) {
      if (findings !== sink) {
        sink = findings;
        for (let k = 0; k < types.length; k++) wants[k] = findings.wants(types[k]!);
        wanted = wants.includes(true);
      }
      begin(codes, text.length, findings, wants);
      return wanted;
    },
    run(positions, count) {
      for (let k = 0; k < count; k++) at(positions[k]!);
    },
  };
}
