import { describe, expect, it } from 'vitest';
import { validateAuditBatch } from '../../../schema/audit/validate.js';
import { sampleAuditEntry, sampleBatch } from '../../helpers/audit.js';

const WS = '0f8b6a52-1d3e-4c6f-9a8b-7c6d5e4f3a2b';

describe('audit batch validation', () => {
  it('accepts a well-formed batch, with or without droppedEntries', () => {
    expect(validateAuditBatch(sampleBatch(WS, 3))).toMatchObject({ ok: true });
    expect(validateAuditBatch({ ...sampleBatch(WS, 1), droppedEntries: 5 })).toMatchObject({ ok: true, batch: { droppedEntries: 5 } });
  });

  it('names the first bad field and the entry it is in', () => {
    const bad = (patch: Record<string, unknown>, index = 1) => {
      const batch = sampleBatch(WS, 1) as unknown as { entries: Record<string, unknown>[] };
      batch.entries[index] = { ...batch.entries[index], ...patch };
      return validateAuditBatch(batch);
    };
    expect(bad({ id: 'not-a-uuid' })).toMatchObject({ ok: false, field: 'entries[1].id', index: 1 });
    expect(bad({ leg: 'sideways' })).toMatchObject({ ok: false, field: 'entries[1].leg' });
    expect(bad({ status: 'fine' })).toMatchObject({ ok: false, field: 'entries[1].status' });
    expect(bad({ occurredAt: '2026-13-01' })).toMatchObject({ ok: false, field: 'entries[1].occurredAt' });
    expect(bad({ durationMs: -1 })).toMatchObject({ ok: false, field: 'entries[1].durationMs' });
    expect(bad({ inputTokens: 1.5 })).toMatchObject({ ok: false, field: 'entries[1].inputTokens' });
    expect(bad({ errorMessage: 'x'.repeat(9000) })).toMatchObject({ ok: false, field: 'entries[1].errorMessage' });
    expect(bad({ headers: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`h${i}`, 'v'])) })).toMatchObject({ ok: false, field: 'entries[1].headers' });
    expect(bad({ policyActions: [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: [], alert: 'yes' }] })).toMatchObject({ ok: false, field: 'entries[1].policyActions[0].alert' });
    expect(bad({ extra: true }, 2)).toMatchObject({ ok: false, field: 'entries[2].extra', index: 2, message: expect.stringMatching(/^entries\[2\]\.extra: /) });
    expect(validateAuditBatch(null)).toMatchObject({ ok: false, field: '(root)', index: undefined });
    expect(validateAuditBatch({ formatVersion: 1, entries: [sampleAuditEntry(WS)], more: 1 })).toMatchObject({ ok: false, field: 'more' });
  });
});
