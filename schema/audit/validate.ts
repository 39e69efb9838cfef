import { z } from 'zod';
import { AUDIT_STRING_LIMITS, MAX_AUDIT_BATCH_ENTRIES, MAX_AUDIT_BODY_CHARS } from './limits.js';
import { AUDIT_FORMAT_VERSION, AUDIT_LEGS, AUDIT_STATUSES, type AuditBatch } from './types.js';

export { AUDIT_STRING_LIMITS, MAX_AUDIT_BATCH_ENTRIES, MAX_AUDIT_BODY_CHARS } from './limits.js';

const INT32_MAX = 2_147_483_647;
const L = AUDIT_STRING_LIMITS;

const id = z.guid();
const nullableId = id.nullable();
const text = (max: number) => z.string().max(max);
const nullableText = (max: number) => text(max).nullable();
const milliseconds = z.number().min(0).max(1e9).nullable();
const count = z.number().int().min(0).max(INT32_MAX).nullable();

const policyAction = z.strictObject({
  ruleId: text(L.name).min(1),
  ruleName: text(L.name * 2),
  action: text(64).min(1),
  findings: z.array(text(L.name)).max(L.findings),
  detail: text(L.detail).optional(),
  alert: z.boolean(),
});

const headers = z
  .record(text(L.headerName), text(L.headerValue))
  .refine((map) => Object.keys(map).length <= L.headers, { message: `at most ${L.headers} headers` })
  .nullable();

/** One entry, strict: unknown fields are refused, every field is present. */
export const auditEntrySchema = z.strictObject({
  id,
  correlationId: id,
  leg: z.enum(AUDIT_LEGS),
  occurredAt: z.iso.datetime({ offset: true }),
  durationMs: milliseconds,
  gatewayMs: milliseconds,
  upstreamMs: milliseconds,
  workspaceId: id,
  gatewayId: nullableId,
  serverId: nullableId,
  assignmentId: nullableId,
  hostId: nullableId,
  connectionId: nullableId,
  tokenId: nullableId,
  userId: nullableId,
  clientName: nullableText(L.name),
  clientVersion: nullableText(L.name),
  sessionRef: nullableText(L.sessionRef),
  method: nullableText(L.method),
  featureName: nullableText(L.featureName),
  jsonRpcId: nullableText(L.jsonRpcId),
  status: z.enum(AUDIT_STATUSES),
  errorCode: z.number().int().min(-INT32_MAX - 1).max(INT32_MAX).nullable(),
  errorMessage: nullableText(L.errorMessage),
  policyActions: z.array(policyAction).max(L.policyActions),
  body: nullableText(MAX_AUDIT_BODY_CHARS),
  bodyTruncated: z.boolean(),
  headers,
  inputTokens: count,
  outputTokens: count,
  bytesIn: count,
  bytesOut: count,
  originIp: nullableText(L.originIp),
  userAgent: nullableText(L.userAgent),
  dataPlaneId: nullableId,
  dataPlaneInstance: text(L.name).min(1),
  snapshotVersion: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable(),
});

export const auditBatchSchema = z.strictObject({
  formatVersion: z.literal(AUDIT_FORMAT_VERSION),
  entries: z.array(auditEntrySchema).min(1).max(MAX_AUDIT_BATCH_ENTRIES),
  droppedEntries: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

export type AuditBatchValidation =
  | { readonly ok: true; readonly batch: AuditBatch }
  | {
      readonly ok: false;
      /** The first bad field as a path, e.g. `entries[3].occurredAt` (`(root)` for the document). */
      readonly field: string;
      /** Index of the first bad entry, when the problem is inside one. */
      readonly index: number | undefined;
      /** `<field>: <what is wrong>`, for people. */
      readonly message: string;
    };

/**
 * `auditBatchSchema` compiled ahead (zod's `z.compile`: generated straight-line checks, no
 * output built), on first use so processes that only import the limits do not pay for it.
 * It answers exactly what the schema answers: zod generates it from the schema and hands
 * anything it cannot model to the runtime parser.
 */
let compiledBatch: typeof auditBatchSchema | undefined;

/**
 * Validates an ingest request body (already parsed JSON). The whole batch is accepted or
 * refused; a refusal names the first bad field so the sender can drop that entry and
 * resend the rest.
 *
 * An accepted batch is `input` itself (the schema has no defaults or transforms, so the
 * parsed value would be a copy equal to it). Only a refused one runs the runtime parser,
 * for its first issue, so messages are the schema's own.
 */
export function validateAuditBatch(input: unknown): AuditBatchValidation {
  compiledBatch ??= z.compile(auditBatchSchema);
  if (z.validate(compiledBatch, input)) return { ok: true, batch: input as AuditBatch };
  const parsed = auditBatchSchema.safeParse(input);
  if (parsed.success) return { ok: true, batch: parsed.data as AuditBatch };
  const issue = parsed.error.issues[0]!;
  // An unknown field is reported at its object; name the field itself.
  const path = issue.code === 'unrecognized_keys' && issue.keys.length > 0 ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = formatPath(path);
  const index = path[0] === 'entries' && typeof path[1] === 'number' ? path[1] : undefined;
  return { ok: false, field, index, message: `${field}: ${issue.message}` };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out === '' ? '(root)' : out;
}
