import { PINNED_FIELDS } from '../../../schema/snapshot/index.js';
import { jsonDiff, type JsonDiff } from '../../alerts/json-diff.js';
import { FEATURE_TYPE_OF, type FeatureKind } from '../feature-hash.js';

/**
 * What changed between two definitions of one feature, over the fields a pin covers
 * (`PINNED_FIELDS`: name, title, description, schemas, tool annotations): the "diff" of a
 * rug pull, which an admin reviews before re-approving a pin. Fields outside the pin hash
 * (`_meta`, icons) never show up, so the diff explains exactly why a hash moved. Uses the
 * alerts' bounded JSON diff, so the GraphQL field and the PIN_VIOLATION alert read alike.
 */

/** Changes listed at most. */
const MAX_CHANGES = 100;

/** The pinned fields of a definition; absent and null are the same to the pin hash, so both are left out. */
export function pinnedPart(kind: FeatureKind, definition: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of PINNED_FIELDS[FEATURE_TYPE_OF[kind]]) {
    if (definition[field] !== undefined && definition[field] !== null) out[field] = definition[field];
  }
  return out;
}

/** The changes from `before` to `after` over the pinned fields; identical definitions give no changes. */
export function diffDefinitions(kind: FeatureKind, before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): JsonDiff {
  return jsonDiff(pinnedPart(kind, before), pinnedPart(kind, after), { maxChanges: MAX_CHANGES });
}
