import type { EngineAdapter, OpenedEngine, PreparedCall } from './adapter.js';
import { EngineConfigurationError } from './adapter.js';
import { clipReason, collectStringLeaves, engineError, type EngineEnvelope, type EngineVerdict } from './verdict.js';

const ROLES = ['user', 'assistant', 'system'] as const;
type Role = (typeof ROLES)[number];

function role(value: string | undefined, option: string, fallback: Role): Role {
  if (value === undefined) return fallback;
  if ((ROLES as readonly string[]).includes(value)) return value as Role;
  throw new EngineConfigurationError(`Lakera option ${option} must be one of ${ROLES.join(', ')} (got "${value}")`);
}

/**
 * Lakera Guard `POST /v2/guard` (the engine's URL, e.g. `https://api.lakera.ai/v2/guard`).
 * Request: `{messages: [{role, content}], project_id?, breakdown: true, metadata}` where
 * `content` is the payload's string values joined by newlines; the request leg is sent
 * as role `user` and the response leg as `assistant` (options `requestRole` /
 * `responseRole` change that). Authentication is a configured encrypted header
 * `authorization: Bearer <key>`. Answer `{flagged: boolean, breakdown?: [{detector_type,
 * detected}]}` → `block` (naming the detectors that fired) or `pass`; Lakera never modifies.
 */
export function lakeraAdapter(opened: OpenedEngine): EngineAdapter {
  const { engine, url } = opened;
  const options = engine.options;
  const projectId = options['projectId'];
  const requestRole = role(options['requestRole'], 'requestRole', 'user');
  const responseRole = role(options['responseRole'], 'responseRole', 'assistant');
  return {
    prepare(envelope: EngineEnvelope): PreparedCall | EngineVerdict {
      const leaves = collectStringLeaves(envelope.payload);
      if (leaves.length === 0) return { verdict: 'pass' };
      const body = JSON.stringify({
        messages: [{ role: envelope.hook === 'request' ? requestRole : responseRole, content: leaves.map((leaf) => leaf.text).join('\n') }],
        ...(projectId ? { project_id: projectId } : {}),
        breakdown: true,
        metadata: { gatehouse_request_id: envelope.id, gateway: envelope.gateway.slug, server: envelope.server.name, feature: envelope.feature.name },
      });
      return {
        method: 'POST',
        url,
        body,
        headers: () => ({ 'content-type': 'application/json' }),
        interpret: (answer) => interpretLakera(answer, engine.name, envelope.hook),
      };
    },
  };
}

function interpretLakera(answer: unknown, engineName: string, hook: string): EngineVerdict {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
    return engineError('INVALID_RESPONSE', `Lakera Guard engine "${engineName}" answered something other than a JSON object`);
  }
  const body = answer as { flagged?: unknown; breakdown?: unknown };
  if (typeof body.flagged !== 'boolean') {
    return engineError('INVALID_RESPONSE', `Lakera Guard engine "${engineName}" answered without a boolean "flagged"`);
  }
  if (!body.flagged) return { verdict: 'pass' };
  const detectors = Array.isArray(body.breakdown)
    ? [
        ...new Set(
          body.breakdown
            .filter((item): item is { detector_type: string; detected: true } => item?.detected === true && typeof item?.detector_type === 'string')
            .map((item) => item.detector_type),
        ),
      ]
    : [];
  const which = detectors.length > 0 ? ` (${detectors.join(', ')})` : '';
  return { verdict: 'block', reason: clipReason(`Lakera Guard flagged the ${hook}${which}`) };
}
