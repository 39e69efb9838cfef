import { describe, expect, it } from 'vitest';
import { AUDIT_STRING_LIMITS, MAX_AUDIT_BATCH_ENTRIES, auditBatchSchema, validateAuditBatch, type AuditBatchValidation } from '../../../schema/audit/validate.js';
import { sampleAuditEntry, sampleBatch } from '../../helpers/audit.js';

const WS = '0f8b6a52-1d3e-4c6f-9a8b-7c6d5e4f3a2b';

/**
 * The validator as it was before the compiled fast path: zod's runtime parser, first
 * issue. A valid batch is now the input itself rather than zod's copy of it, which differs
 * only where zod drops an own `__proto__` key of a header map (the text stored had it).
 */
function reference(input: unknown): AuditBatchValidation {
  const parsed = auditBatchSchema.safeParse(input);
  if (parsed.success) return { ok: true, batch: parsed.data as never };
  const issue = parsed.error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' && issue.keys.length > 0 ? [...issue.path, issue.keys[0]!] : issue.path;
  let field = '';
  for (const part of path) field += typeof part === 'number' ? `[${part}]` : field === '' ? String(part) : `.${String(part)}`;
  field ||= '(root)';
  const index = path[0] === 'entries' && typeof path[1] === 'number' ? path[1] : undefined;
  return { ok: false, field, index, message: `${field}: ${issue.message}` };
}

const astral = (n: number) => '😀'.repeat(n);
const strings = (limit: number) => ['', 'x', 'x'.repeat(limit - 1), 'x'.repeat(limit), 'x'.repeat(limit + 1), astral(Math.floor(limit / 2)), astral(limit), `${'x'.repeat(limit - 1)}😀`, '\u0000', '\ud800'];
const numbers = [0, -0, -1, 1, 1.5, 38, 1e9, 1e9 + 1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, Number.NaN, Infinity, -Infinity];
const others = [null, undefined, true, 'true', {}, [], '1'];
const uuids = ['6f1c2a8e-4c1d-4a55-9a51-0f7c8a1f2b3c', '6F1C2A8E-4C1D-4A55-9A51-0F7C8A1F2B3C', '6f1c2a8e4c1d4a559a510f7c8a1f2b3c', '{6f1c2a8e-4c1d-4a55-9a51-0f7c8a1f2b3c}', '6f1c2a8e-4c1d-4a55-9a51-0f7c8a1f2b3', 'zz1c2a8e-4c1d-4a55-9a51-0f7c8a1f2b3c'];
const times = ['2026-06-01T10:00:00.000Z', '2026-06-01T10:00:00Z', '2026-06-01T10:00:00.123456789Z', '2026-06-01T10:00:00+02:00', '2026-06-01T10:00:00.5-11:30', '2026-06-01T10:00Z', '2026-06-01 10:00:00Z', '2026-02-29T00:00:00Z', '2028-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-06-01T24:00:00Z', '2026-06-01T10:00:00+24:00', 'yesterday'];

/** Candidate values per field: boundaries and wrong types around what the schema allows. */
const candidates: Record<string, readonly unknown[]> = {
  id: [...uuids, ...others],
  correlationId: uuids,
  leg: ['client_request', 'policy_action', 'sideways', 'CLIENT_REQUEST', ...others],
  occurredAt: [...times, ...others],
  durationMs: [...numbers, ...others],
  gatewayMs: numbers,
  workspaceId: uuids,
  gatewayId: [...uuids, null, undefined],
  userId: [null, uuids[0], 3],
  clientName: [...strings(AUDIT_STRING_LIMITS.name), ...others],
  sessionRef: strings(AUDIT_STRING_LIMITS.sessionRef),
  featureName: strings(AUDIT_STRING_LIMITS.featureName),
  status: ['ok', 'error', 'blocked', 'fine', null],
  errorCode: [...numbers, ...others],
  errorMessage: [...strings(AUDIT_STRING_LIMITS.errorMessage), null],
  policyActions: [
    [],
    [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: [], alert: true }],
    [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: ['EMAIL'], detail: 'why', alert: false }],
    [{ ruleId: '', ruleName: 'n', action: 'block', findings: [], alert: true }],
    [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: [], alert: 'yes' }],
    [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: [], alert: true, extra: 1 }],
    [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: [], detail: undefined, alert: true }],
    [{ ruleId: 'r', ruleName: 'n', action: 'x'.repeat(65), findings: [], alert: true }],
    [{ ruleId: 'r', ruleName: 'n', action: 'block', findings: Array.from({ length: 101 }, () => 'E'), alert: true }],
    Array.from({ length: 101 }, () => ({ ruleId: 'r', ruleName: 'n', action: 'block', findings: [], alert: false })),
    [null],
    {},
    null,
  ],
  body: [null, '{"a":1}', 'x'.repeat(1024 * 1024), 'x'.repeat(1024 * 1024 + 1), 5],
  bodyTruncated: [true, false, 0, 'false', null],
  headers: [
    null,
    {},
    { 'content-type': 'application/json' },
    { ['x'.repeat(257)]: 'v' },
    { h: 'v'.repeat(8193) },
    { h: 1 },
    Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`h${i}`, 'v'])),
    Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`h${i}`, 'v'])),
    JSON.parse('{"__proto__":"v","a":"b"}'),
    [],
    'a: b',
  ],
  inputTokens: [...numbers, ...others],
  bytesOut: numbers,
  originIp: strings(AUDIT_STRING_LIMITS.originIp),
  userAgent: strings(AUDIT_STRING_LIMITS.userAgent),
  dataPlaneId: [null, ...uuids],
  dataPlaneInstance: ['', 'host/1/abc', 'x'.repeat(257), null],
  snapshotVersion: [...numbers, ...others],
};

function expectSameAnswer(batch: unknown, label: string): void {
  const answer = validateAuditBatch(batch);
  const expected = reference(batch);
  if (expected.ok) expect(answer, label).toEqual({ ok: true, batch });
  else expect(answer, label).toEqual(expected);
}

describe('the compiled audit batch validator', () => {
  it('answers exactly what the runtime schema answers, field, index and message, for every candidate value of every field', () => {
    let compared = 0;
    for (const [field, values] of Object.entries(candidates)) {
      for (const value of values) {
        for (const index of [0, 2]) {
          const batch = sampleBatch(WS, 1) as unknown as { entries: Record<string, unknown>[] };
          const entry = { ...batch.entries[index]! };
          if (value === undefined) delete entry[field];
          else entry[field] = value;
          batch.entries[index] = entry;
          expectSameAnswer(batch, `${field} = ${String(value).slice(0, 40)}`);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(300);
  });

  it('answers what the runtime schema answers for the batch around the entries', () => {
    const entry = sampleAuditEntry(WS);
    const batches: unknown[] = [
      null,
      undefined,
      [],
      'batch',
      { formatVersion: 1, entries: [entry] },
      { formatVersion: 2, entries: [entry] },
      { formatVersion: '1', entries: [entry] },
      { formatVersion: 1, entries: [] },
      { formatVersion: 1, entries: Array.from({ length: MAX_AUDIT_BATCH_ENTRIES }, () => entry) },
      { formatVersion: 1, entries: Array.from({ length: MAX_AUDIT_BATCH_ENTRIES + 1 }, () => entry) },
      { formatVersion: 1, entries: [entry], droppedEntries: 0 },
      { formatVersion: 1, entries: [entry], droppedEntries: 3.5 },
      { formatVersion: 1, entries: [entry], droppedEntries: -1 },
      { formatVersion: 1, entries: [entry], droppedEntries: undefined },
      { formatVersion: 1, entries: [entry], more: 1 },
      { formatVersion: 1, entries: [entry, null] },
      { formatVersion: 1, entries: [entry, { ...entry, extra: true, other: 1 }] },
      { formatVersion: 1, entries: { 0: entry } },
      Object.assign(Object.create({ inherited: 1 }), { formatVersion: 1, entries: [entry] }),
    ];
    for (const batch of batches) expectSameAnswer(batch, JSON.stringify(batch)?.slice(0, 80) ?? String(batch));
  });

  it('hands back the batch it was given when it is valid', () => {
    const batch = sampleBatch(WS, 2);
    const checked = validateAuditBatch(batch);
    expect(checked).toEqual({ ok: true, batch });
    expect(checked.ok && checked.batch).toBe(batch);
  });
});
