import { FEATURE_NOUNS, type FeatureType, type WithheldReason } from '../../schema/snapshot/index.js';
import type { CompiledGateway, ExposedFeature } from '../snapshot/compiled-snapshot.js';
import { pass, refuse, type StageResult } from './refusal.js';

/** A targeted call resolved to the entry that serves it, with the name to send upstream. */
export interface RoutedFeature {
  readonly exposed: ExposedFeature;
  /** The upstream's own name (or URI) to put in the forwarded request. */
  readonly upstreamName: string;
}

/** Tells whether the upstream currently lists a pinned feature with another definition. */
export type LivePinCheck = (exposed: ExposedFeature) => boolean;

const WITHHELD_WHY: { readonly [R in WithheldReason]: (serverName: string) => string } = {
  PIN_MISMATCH: () => 'its definition changed since it was pinned; an admin must review and re-approve it',
  FLAGGED: () => 'discovery flagged its definition as suspicious; an admin must review and clear it',
  NAME_COLLISION: () => 'more than one server on this gateway exposes that name; an admin must set a namespace prefix or deprovision one',
  SERVER_HELD: (serverName) =>
    `its server "${serverName}" is held pending admin approval as a possible impersonation of another server (its name or URL resembles one already registered)`,
};

/**
 * Stage 5 for targeted calls (`tools/call`, `prompts/get`): the feature must be in the
 * snapshot (provisioned), not withheld (by the snapshot, or live: an upstream listing a
 * pinned feature with another hash), and its assignment entry must be in service.
 */
export function resolveFeature(
  gateway: CompiledGateway,
  featureType: FeatureType,
  name: string,
  livePinMismatch: LivePinCheck = () => false,
): StageResult<RoutedFeature> {
  const exposed = gateway.features[featureType].get(name);
  if (!exposed) return notProvisioned(gateway, featureType, name);
  return check(gateway, exposed, name, exposed.feature.upstreamName, livePinMismatch);
}

/**
 * Stage 5 for `resources/read`: an exposed resource URI, else a URI expanding an
 * exposed resource template (the template's namespaced prefix is cut off the URI to
 * give the upstream URI).
 */
export function resolveResource(
  gateway: CompiledGateway,
  uri: string,
  livePinMismatch: LivePinCheck = () => false,
): StageResult<RoutedFeature> {
  const exposed = gateway.features.resources.get(uri);
  if (exposed) return check(gateway, exposed, uri, exposed.feature.upstreamName, livePinMismatch);
  for (const matcher of gateway.templateMatchers) {
    if (matcher.pattern.test(uri)) {
      return check(gateway, matcher.exposed, uri, uri.slice(matcher.prefixLength), livePinMismatch);
    }
  }
  return notProvisioned(gateway, 'resources', uri);
}

function check(
  gateway: CompiledGateway,
  exposed: ExposedFeature,
  name: string,
  upstreamName: string,
  livePinMismatch: LivePinCheck,
): StageResult<RoutedFeature> {
  const noun = FEATURE_NOUNS[exposed.featureType];
  const slug = gateway.gateway.slug;
  const withheld = exposed.feature.withheld ?? (livePinMismatch(exposed) ? 'PIN_MISMATCH' : undefined);
  if (withheld) {
    return refuse('WITHHELD', 200, `${noun} "${name}" is withheld on gateway "${slug}": ${WITHHELD_WHY[withheld](exposed.entry.assignment.serverName)}`, {
      detail: { reason: withheld },
    });
  }
  const { assignment } = exposed.entry;
  if (!assignment.enabled) {
    return refuse(
      'DISABLED',
      200,
      `${noun} "${name}" is unavailable: server "${assignment.serverName}" on gateway "${slug}" is switched off (${assignment.disabledBy.join(', ')})`,
      { detail: { level: 'assignment' } },
    );
  }
  return pass({ exposed, upstreamName });
}

function notProvisioned(gateway: CompiledGateway, featureType: FeatureType, name: string) {
  return refuse('NOT_PROVISIONED', 200, `${FEATURE_NOUNS[featureType]} "${name}" is not provisioned on gateway "${gateway.gateway.slug}"`);
}
