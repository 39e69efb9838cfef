import type { FeatureType, JsonValue, RuleHook } from '../../snapshot/types.js';

/** 16 MiB: the most the gateway sends to, or reads from, a rule engine. */
export const DEFAULT_ENGINE_MAX_BYTES = 16 * 1024 * 1024;
/** Nesting deeper than this in a `modify` payload is refused (walks stay iterative regardless). */
export const MAX_MODIFY_DEPTH = 256;
/** Reasons are cut to this many characters before they reach audit records. */
export const MAX_REASON_LENGTH = 1024;

/**
 * Why an engine call ended in an `error` verdict. The evaluator applies the rule's
 * failure mode to every one of them; the code goes into the audit record.
 *
 * - `CONFIGURATION`: the engine cannot be called as configured (bad URL, unopenable secret, missing adapter option);
 * - `DESTINATION_REFUSED`: the URL is, or resolved to, a private/loopback address, or is not https;
 * - `UNREACHABLE`: connecting or sending failed after the retries;
 * - `TIMEOUT`: no complete answer within the engine's `timeoutMs` (retries included);
 * - `ABORTED`: the caller gave up (client cancelled the call);
 * - `REDIRECT`: the engine answered 3xx (redirects are never followed);
 * - `HTTP_STATUS`: any other non-2xx status (502/503/504 after the retries);
 * - `TOO_LARGE`: the envelope or the answer exceeds the byte cap;
 * - `INVALID_PAYLOAD`: the payload cannot be serialized (too deeply nested, not JSON);
 * - `INVALID_RESPONSE`: the answer is not JSON, or not a known verdict / the adapter's documented shape;
 * - `INVALID_MODIFY`: a `modify` payload that does not keep the input's shape or size;
 * - `ENGINE_ERROR`: the engine itself answered `{"verdict":"error"}`.
 */
export type EngineErrorCode =
  | 'CONFIGURATION'
  | 'DESTINATION_REFUSED'
  | 'UNREACHABLE'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'REDIRECT'
  | 'HTTP_STATUS'
  | 'TOO_LARGE'
  | 'INVALID_PAYLOAD'
  | 'INVALID_RESPONSE'
  | 'INVALID_MODIFY'
  | 'ENGINE_ERROR';

/** What one engine call decided about one payload. */
export type EngineVerdict =
  | { readonly verdict: 'pass' }
  | { readonly verdict: 'block'; readonly reason: string }
  | { readonly verdict: 'modify'; readonly payload: JsonValue }
  | { readonly verdict: 'error'; readonly reason: string; readonly code: EngineErrorCode };

/**
 * The body the gateway POSTs to a `webhook` engine (and the input of the adapters). See
 * `README.md` in this folder for the wire form.
 */
export interface EngineEnvelope {
  readonly version: 1;
  /** Unique per evaluation; the same across retries of it (engines may dedupe on it). */
  readonly id: string;
  /** ISO 8601 UTC, when the gateway built the envelope. */
  readonly timestamp: string;
  readonly workspace: { readonly id: string };
  readonly gateway: { readonly id: string; readonly slug: string };
  readonly server: { readonly id: string; readonly name: string };
  /** `name` is the upstream's own name of the tool / prompt / resource. */
  readonly feature: { readonly type: FeatureType; readonly name: string };
  /** `userId` is null for a host acting without a user (machine token). */
  readonly caller: { readonly userId: string | null; readonly connectionId: string; readonly hostId: string };
  readonly hook: RuleHook;
  /** The part of the MCP message the rule scans (tool arguments, a tool result, …). */
  readonly payload: JsonValue;
}

/** What the evaluator hands to {@link RuleEngineClient.evaluate}; the client adds version, id (unless given) and timestamp. */
export type EngineEvaluation = Omit<EngineEnvelope, 'version' | 'id' | 'timestamp'> & { readonly id?: string };

export function engineError(code: EngineErrorCode, reason: string): EngineVerdict {
  return { verdict: 'error', code, reason: clipReason(reason) };
}

/** Cuts to {@link MAX_REASON_LENGTH} and drops control characters (they end up in logs and UIs). */
export function clipReason(reason: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = reason.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ');
  return clean.length > MAX_REASON_LENGTH ? `${clean.slice(0, MAX_REASON_LENGTH - 1)}…` : clean;
}

type Kind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null' | 'other';

function kindOf(value: unknown): Kind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'object':
      return 'object';
    case 'string':
      return 'string';
    case 'number':
      return Number.isFinite(value) ? 'number' : 'other';
    case 'boolean':
      return 'boolean';
    default:
      return 'other';
  }
}

export type PayloadCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

function pathText(path: readonly (string | number)[]): string {
  return path.length === 0 ? 'the payload' : `payload${path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${part}`)).join('')}`;
}

/**
 * Checks a replacement payload before anyone uses it: a JSON value (no undefined,
 * functions, NaN), nesting ≤ {@link MAX_MODIFY_DEPTH}, the same kind as the original at
 * the top, and every object or array of the original that is still present (same key /
 * index) still an object or array. Keys and elements may be added or dropped and
 * scalars may change; the MCP shape (content blocks, schemas) is the evaluator's check.
 * Finally the serialized size must not exceed `maxBytes` (default 16 MiB).
 */
export function validateModifiedPayload(original: unknown, modified: unknown, options: { maxBytes?: number } = {}): PayloadCheck {
  const maxBytes = options.maxBytes ?? DEFAULT_ENGINE_MAX_BYTES;
  const top = kindOf(original);
  const replaced = kindOf(modified);
  if (replaced !== top) return { ok: false, reason: `modify changed the payload from ${article(top)} to ${article(replaced)}` };
  // Iterative walk: engines' answers are untrusted and may nest arbitrarily deep.
  const stack: { original: unknown; modified: unknown; path: (string | number)[] }[] = [{ original, modified, path: [] }];
  while (stack.length > 0) {
    const { original: before, modified: after, path } = stack.pop()!;
    const kind = kindOf(after);
    if (kind === 'other') return { ok: false, reason: `${pathText(path)} is not a JSON value` };
    if (path.length > MAX_MODIFY_DEPTH) return { ok: false, reason: `modify payload nests deeper than ${MAX_MODIFY_DEPTH} levels` };
    const was = before === undefined ? undefined : kindOf(before);
    if ((was === 'object' || was === 'array') && kind !== was) {
      return { ok: false, reason: `modify turned ${pathText(path)} from ${article(was)} into ${article(kind)}` };
    }
    if (kind === 'array') {
      const items = after as unknown[];
      const previous = was === 'array' ? (before as unknown[]) : undefined;
      for (let i = 0; i < items.length; i++) stack.push({ original: previous?.[i], modified: items[i], path: [...path, i] });
    } else if (kind === 'object') {
      const previous = was === 'object' ? (before as Record<string, unknown>) : undefined;
      for (const [key, value] of Object.entries(after as Record<string, unknown>)) {
        stack.push({ original: previous && Object.hasOwn(previous, key) ? previous[key] : undefined, modified: value, path: [...path, key] });
      }
    }
  }
  const size = Buffer.byteLength(JSON.stringify(modified), 'utf8');
  if (size > maxBytes) return { ok: false, reason: `modify payload is ${size} bytes, over the ${maxBytes}-byte limit` };
  return { ok: true };
}

function article(kind: Kind): string {
  switch (kind) {
    case 'object':
    case 'array':
      return `an ${kind}`;
    case 'null':
      return 'null';
    case 'other':
      return 'a non-JSON value';
    default:
      return `a ${kind}`;
  }
}

/**
 * Reads a `webhook` engine's JSON answer into a verdict. Unknown verdicts, missing
 * fields and bad `modify` payloads become `error` verdicts with the reason.
 */
export function parseWebhookVerdict(answer: unknown, original: JsonValue, engineName: string, maxBytes: number): EngineVerdict {
  if (kindOf(answer) !== 'object') return engineError('INVALID_RESPONSE', `rule engine "${engineName}" answered ${article(kindOf(answer))}, not a verdict object`);
  const body = answer as Record<string, unknown>;
  const verdict = body['verdict'];
  switch (verdict) {
    case 'pass':
      return { verdict: 'pass' };
    case 'block': {
      const reason = typeof body['reason'] === 'string' && body['reason'].trim() !== '' ? body['reason'] : `blocked by rule engine "${engineName}"`;
      return { verdict: 'block', reason: clipReason(reason) };
    }
    case 'modify': {
      if (!Object.hasOwn(body, 'payload')) return engineError('INVALID_RESPONSE', `rule engine "${engineName}" answered modify without a payload`);
      const check = validateModifiedPayload(original, body['payload'], { maxBytes });
      if (!check.ok) return engineError('INVALID_MODIFY', `rule engine "${engineName}": ${check.reason}`);
      return { verdict: 'modify', payload: body['payload'] as JsonValue };
    }
    case 'error': {
      const reason = typeof body['reason'] === 'string' && body['reason'].trim() !== '' ? body['reason'] : 'no reason given';
      return engineError('ENGINE_ERROR', `rule engine "${engineName}" reported an error: ${reason}`);
    }
    default:
      return engineError(
        'INVALID_RESPONSE',
        typeof verdict === 'string'
          ? `rule engine "${engineName}" answered an unknown verdict "${clipReason(verdict).slice(0, 64)}" (expected pass, block, modify or error)`
          : `rule engine "${engineName}" answered without a "verdict" string`,
      );
  }
}

/** One string value of a payload and where it sits. */
export interface StringLeaf {
  readonly path: readonly (string | number)[];
  readonly text: string;
}

/**
 * The string values of a payload (not keys), depth first in document order, skipping
 * empty and whitespace-only ones. What the adapters send to text-only guard APIs.
 */
export function collectStringLeaves(payload: JsonValue): StringLeaf[] {
  const leaves: StringLeaf[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: payload, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (value.trim() !== '') leaves.push({ path, text: value });
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] });
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], path: [...path, entries[i]![0]] });
    }
  }
  return leaves;
}

/** A deep copy of `payload` with the string at each leaf's path replaced. */
export function replaceStringLeaves(payload: JsonValue, replacements: readonly { path: readonly (string | number)[]; text: string }[]): JsonValue {
  const copy = structuredClone(payload) as JsonValue;
  let result: JsonValue = copy;
  for (const { path, text } of replacements) {
    if (path.length === 0) {
      result = text;
      continue;
    }
    let node = copy as unknown as Record<string | number, unknown>;
    for (let i = 0; i < path.length - 1; i++) node = node[path[i]!] as Record<string | number, unknown>;
    node[path[path.length - 1]!] = text;
  }
  return result;
}
