import type { FeatureType } from './types.js';

/** Joins an assignment's prefix to a tool or prompt name: `github__create_issue`. */
export const NAME_SEPARATOR = '__';

/**
 * Joins an assignment's prefix to a resource URI or URI template: `github+file:///a`.
 * `+` keeps the result a valid URI (it extends the scheme, where `_` is not allowed)
 * for prefixes made of letters, digits, `-` and `.`.
 */
export const URI_SEPARATOR = '+';

/**
 * The name clients see for a feature of an assignment. An empty prefix exposes the
 * upstream name unchanged. Data planes route by the snapshot's own `name` →
 * `upstreamName` pairs and never need to split a name apart.
 */
export function namespacedFeatureName(featureType: FeatureType, prefix: string, upstreamName: string): string {
  if (prefix === '') return upstreamName;
  const separator = featureType === 'tools' || featureType === 'prompts' ? NAME_SEPARATOR : URI_SEPARATOR;
  return prefix + separator + upstreamName;
}

/** The MCP request parameter that names a feature of each type, for messages. */
export const FEATURE_NOUNS: { readonly [T in FeatureType]: string } = {
  tools: 'tool',
  prompts: 'prompt',
  resources: 'resource',
  resourceTemplates: 'resource template',
};
