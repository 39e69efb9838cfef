import { hashFeatureDefinition, type FeatureType } from '../../schema/snapshot/index.js';

/**
 * Discovered MCP features, their content hashes and what changed between two discoveries.
 *
 * The hash is the snapshot contract's `hashFeatureDefinition` (schema/snapshot/hash.ts):
 * discovery stores it, pins approve it and a data plane recomputes it on live definitions,
 * so there is exactly one rule. It covers the fields in that module's `PINNED_FIELDS`
 * (identity, human-facing text, schemas) as canonical JSON with sorted keys, so key order,
 * `_meta`, icons and other fields do not trip a pin.
 */

export type FeatureKind = 'tool' | 'prompt' | 'resource' | 'resourceTemplate';

/** A feature kind in the snapshot's spelling (`tools`, `prompts`, …). */
export const FEATURE_TYPE_OF: Readonly<Record<FeatureKind, FeatureType>> = Object.freeze({
  tool: 'tools',
  prompt: 'prompts',
  resource: 'resources',
  resourceTemplate: 'resourceTemplates',
});

/** A JSON value as received from a server. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A JSON object as received from a server (`tools/list` entries and the like). */
export type JsonObject = { readonly [key: string]: JsonValue };

/**
 * One feature a server advertised, as discovery stores it.
 *
 * `name` is the key the feature is addressed by on the wire, and so its identity within a
 * server: the tool or prompt name, the resource `uri` (a resource's `name` is only a label;
 * `resources/read` addresses it by URI, and two resources may share a label), and the
 * resource template's `uriTemplate` (likewise what a client's URI is matched against).
 * The server's own `name` field stays in `definition`.
 */
export interface DiscoveredFeature {
  readonly kind: FeatureKind;
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  /** The full definition exactly as the server sent it. */
  readonly definition: JsonObject;
  /** `hashFeature(kind, definition)`: 64 lowercase hex characters. */
  readonly hash: string;
}

/** What changed between two discoveries of the same server. */
export interface FeatureDiff {
  readonly added: readonly DiscoveredFeature[];
  readonly changed: readonly { readonly previous: DiscoveredFeature; readonly current: DiscoveredFeature }[];
  readonly removed: readonly DiscoveredFeature[];
}

/** The pin hash of a feature definition: `hashFeatureDefinition` under the snapshot's kind name. */
export function hashFeature(kind: FeatureKind, definition: JsonObject): string {
  return hashFeatureDefinition(FEATURE_TYPE_OF[kind], definition);
}

/** The identity of a feature within one server. */
export function featureKey(feature: Pick<DiscoveredFeature, 'kind' | 'name'>): string {
  return `${feature.kind}:${feature.name}`;
}

/**
 * Builds a `DiscoveredFeature` from a definition as received. Returns `null` when the
 * definition lacks the string that identifies it (a server bug discovery skips rather than
 * failing the whole server on).
 */
export function toDiscoveredFeature(kind: FeatureKind, definition: JsonObject): DiscoveredFeature | null {
  const identity = definition[IDENTITY_FIELD[kind]];
  if (typeof identity !== 'string' || identity === '') return null;
  const { title, description } = definition;
  return Object.freeze({
    kind,
    name: identity,
    ...(typeof title === 'string' ? { title } : {}),
    ...(typeof description === 'string' ? { description } : {}),
    definition,
    hash: hashFeature(kind, definition),
  });
}

const IDENTITY_FIELD: Readonly<Record<FeatureKind, string>> = {
  tool: 'name',
  prompt: 'name',
  resource: 'uri',
  resourceTemplate: 'uriTemplate',
};

/**
 * Compares two discoveries of one server by `kind` + `name`. A feature whose hash differs is
 * `changed`; one only in `current` is `added`; one only in `previous` is `removed`. Each list
 * follows the order of the discovery it comes from.
 */
export function diffFeatures(
  previous: readonly DiscoveredFeature[],
  current: readonly DiscoveredFeature[],
): FeatureDiff {
  const before = new Map(previous.map((feature) => [featureKey(feature), feature]));
  const after = new Set<string>();
  const added: DiscoveredFeature[] = [];
  const changed: { previous: DiscoveredFeature; current: DiscoveredFeature }[] = [];
  for (const feature of current) {
    const key = featureKey(feature);
    after.add(key);
    const old = before.get(key);
    if (!old) added.push(feature);
    else if (old.hash !== feature.hash) changed.push({ previous: old, current: feature });
  }
  const removed = previous.filter((feature) => !after.has(featureKey(feature)));
  return { added, changed, removed };
}
