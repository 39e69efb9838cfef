import { describe, expect, it } from 'vitest';
import { evaluateInjection, evaluatePii, loadJsonl } from '../../corpus/evaluate.js';
import type { InjectionSample } from '../../corpus/injection/templates.js';
import type { PiiSample } from '../../corpus/pii/templates.js';

// Floors sit a little below the measured values (see the closing note of issue 5), so a
// regression fails while small, deliberate trade-offs do not.
describe('labelled corpora', () => {
  it('PII corpus sizes', () => {
    expect(loadJsonl<PiiSample>('pii/tuned.jsonl').length + loadJsonl<PiiSample>('pii/held-out.jsonl').length).toBeGreaterThanOrEqual(300);
    expect(loadJsonl<InjectionSample>('injection/tuned.jsonl').length + loadJsonl<InjectionSample>('injection/held-out.jsonl').length).toBeGreaterThanOrEqual(150);
  });

  it('PII recognizers on the tuned corpus: every entity ≥ 0.95 precision and ≥ 0.95 recall', () => {
    const { perEntity } = evaluatePii(loadJsonl<PiiSample>('pii/tuned.jsonl'));
    for (const [type, s] of perEntity) {
      expect(s.precision, `${type} precision`).toBeGreaterThanOrEqual(0.95);
      expect(s.recall, `${type} recall`).toBeGreaterThanOrEqual(0.95);
    }
  });

  it('PII recognizers on the held-out corpus: overall floors', () => {
    const { perEntity } = evaluatePii(loadJsonl<PiiSample>('pii/held-out.jsonl'));
    const all = perEntity.get('ALL')!;
    expect(all.precision).toBeGreaterThanOrEqual(HELD_OUT_PII.precision);
    expect(all.recall).toBeGreaterThanOrEqual(HELD_OUT_PII.recall);
  });

  it('injection detector at its default threshold', () => {
    const tuned = evaluateInjection(loadJsonl<InjectionSample>('injection/tuned.jsonl')).score;
    expect(tuned.precision).toBeGreaterThanOrEqual(0.95);
    expect(tuned.recall).toBeGreaterThanOrEqual(0.95);
    const heldOut = evaluateInjection(loadJsonl<InjectionSample>('injection/held-out.jsonl')).score;
    expect(heldOut.precision).toBeGreaterThanOrEqual(HELD_OUT_INJECTION.precision);
    expect(heldOut.recall).toBeGreaterThanOrEqual(HELD_OUT_INJECTION.recall);
  });
});

const HELD_OUT_PII = { precision: 0.93, recall: 0.93 };
const HELD_OUT_INJECTION = { precision: 0.95, recall: 0.93 };
