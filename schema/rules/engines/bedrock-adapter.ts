import type { EngineAdapter, OpenedEngine, PreparedCall } from './adapter.js';
import { EngineConfigurationError } from './adapter.js';
import { signSigV4, type AwsCredentials } from './sigv4.js';
import {
  clipReason,
  collectStringLeaves,
  engineError,
  replaceStringLeaves,
  validateModifiedPayload,
  type EngineEnvelope,
  type EngineVerdict,
  type StringLeaf,
} from './verdict.js';

/** Encrypted engine headers the Bedrock adapter consumes as AWS credentials (never sent as headers). */
export const BEDROCK_CREDENTIAL_HEADERS = {
  accessKeyId: 'x-aws-access-key-id',
  secretAccessKey: 'x-aws-secret-access-key',
  sessionToken: 'x-aws-session-token',
} as const;

/** The SigV4 signing name of every Bedrock endpoint (the host says `bedrock-runtime`; the signature says `bedrock`). */
export const BEDROCK_SIGNING_SERVICE = 'bedrock';

// The documented patterns of the ApplyGuardrail URI parameters.
const GUARDRAIL_IDENTIFIER = /^(?:[a-z0-9]+|arn:aws(?:-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail\/[a-z0-9]+)$/;
const GUARDRAIL_VERSION = /^(?:[1-9][0-9]{0,7}|DRAFT)$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$/;

function regionOf(url: URL, option: string | undefined): string {
  if (option !== undefined) {
    if (!REGION.test(option)) throw new EngineConfigurationError(`Bedrock option region "${option}" is not an AWS region name`);
    return option;
  }
  const match = /^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(url.hostname);
  if (!match) throw new EngineConfigurationError('Bedrock engine needs option region (it cannot be read from the URL host)');
  return match[1]!;
}

/**
 * Amazon Bedrock Guardrails `ApplyGuardrail`. The engine's URL is the runtime endpoint
 * (`https://bedrock-runtime.<region>.amazonaws.com`); the adapter appends
 * `/guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply` (options
 * `guardrailIdentifier`, `guardrailVersion`, optional `region`). Each non-blank string of
 * the payload is one `{text: {text}}` content block, `source` is `INPUT` on the request
 * leg and `OUTPUT` on the response leg.
 *
 * Credentials are encrypted engine headers: `x-aws-access-key-id` +
 * `x-aws-secret-access-key` (+ `x-aws-session-token`) → SigV4 (service `bedrock`); or an
 * `authorization: Bearer <Bedrock API key>` header, sent as is and not SigV4-signed.
 *
 * Answer: `action: "NONE"` → pass. `GUARDRAIL_INTERVENED` → block when any assessment
 * action is `BLOCKED` (or the masked `outputs` do not line up one-to-one with the blocks
 * sent); otherwise (masking only, `ANONYMIZED`) → modify, each string replaced by its output.
 */
export function bedrockAdapter(opened: OpenedEngine): EngineAdapter {
  const { engine, url: base, maxBytes } = opened;
  const identifier = engine.options['guardrailIdentifier'];
  const version = engine.options['guardrailVersion'];
  if (!identifier || !GUARDRAIL_IDENTIFIER.test(identifier)) {
    throw new EngineConfigurationError('Bedrock engine needs option guardrailIdentifier: a guardrail id or ARN');
  }
  if (!version || !GUARDRAIL_VERSION.test(version)) {
    throw new EngineConfigurationError('Bedrock engine needs option guardrailVersion: a version number or DRAFT');
  }
  const region = regionOf(base, engine.options['region']);
  const url = new URL(base.href);
  url.pathname = `${base.pathname.replace(/\/+$/, '')}/guardrail/${encodeURIComponent(identifier)}/version/${encodeURIComponent(version)}/apply`;
  url.search = '';

  const headers = opened.headers;
  const hasBearer = headers['authorization'] !== undefined;
  let credentials: AwsCredentials | undefined;
  const accessKeyId = headers[BEDROCK_CREDENTIAL_HEADERS.accessKeyId];
  const secretAccessKey = headers[BEDROCK_CREDENTIAL_HEADERS.secretAccessKey];
  const sessionToken = headers[BEDROCK_CREDENTIAL_HEADERS.sessionToken];
  if (accessKeyId && secretAccessKey) credentials = { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  else if (!hasBearer) {
    throw new EngineConfigurationError(
      `Bedrock engine needs credentials: encrypted headers ${BEDROCK_CREDENTIAL_HEADERS.accessKeyId} and ${BEDROCK_CREDENTIAL_HEADERS.secretAccessKey}, or authorization: Bearer <Bedrock API key>`,
    );
  }
  return {
    consumedHeaders: new Set(Object.values(BEDROCK_CREDENTIAL_HEADERS)),
    prepare(envelope: EngineEnvelope): PreparedCall | EngineVerdict {
      const leaves = collectStringLeaves(envelope.payload);
      if (leaves.length === 0) return { verdict: 'pass' };
      const body = JSON.stringify({
        source: envelope.hook === 'request' ? 'INPUT' : 'OUTPUT',
        content: leaves.map((leaf) => ({ text: { text: leaf.text } })),
      });
      return {
        method: 'POST',
        url,
        body,
        headers: (nowMs) => {
          const own: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
          if (!credentials) return own;
          return { ...own, ...signSigV4({ method: 'POST', url, headers: own, body }, { credentials, region, service: BEDROCK_SIGNING_SERVICE, now: new Date(nowMs) }) };
        },
        interpret: (answer) => interpretBedrock(answer, envelope, leaves, engine.name, maxBytes),
      };
    },
  };
}

interface Intervention {
  readonly policy: string;
  readonly type: string | undefined;
  readonly action: string;
}

/** Every `action` in the assessments with the policy it belongs to and the entry's `type`/`name`; never `match` (the sensitive text). */
function interventions(assessments: unknown): Intervention[] {
  const found: Intervention[] = [];
  const stack: { value: unknown; policy: string; depth: number }[] = [{ value: assessments, policy: 'guardrail', depth: 0 }];
  while (stack.length > 0) {
    const { value, policy, depth } = stack.pop()!;
    if (depth > 16 || value === null || typeof value !== 'object') continue;
    // Children are pushed last-first so they are visited in document order.
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], policy, depth: depth + 1 });
      continue;
    }
    const record = value as Record<string, unknown>;
    if (typeof record['action'] === 'string') {
      // Topics are named by the admin (`name`); filters and entities by their `type`.
      const label = typeof record['name'] === 'string' ? record['name'] : typeof record['type'] === 'string' ? record['type'] : undefined;
      found.push({ policy, type: label, action: record['action'] });
    }
    const entries = Object.entries(record);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i]!;
      if (key === 'match') continue;
      stack.push({ value: child, policy: key.endsWith('Policy') ? key : policy, depth: depth + 1 });
    }
  }
  return found;
}

function interpretBedrock(answer: unknown, envelope: EngineEnvelope, leaves: readonly StringLeaf[], engineName: string, maxBytes: number): EngineVerdict {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
    return engineError('INVALID_RESPONSE', `Bedrock engine "${engineName}" answered something other than a JSON object`);
  }
  const body = answer as { action?: unknown; actionReason?: unknown; outputs?: unknown; assessments?: unknown };
  if (body.action === 'NONE') return { verdict: 'pass' };
  if (body.action !== 'GUARDRAIL_INTERVENED') {
    return engineError('INVALID_RESPONSE', `Bedrock engine "${engineName}" answered an unknown action ${typeof body.action === 'string' ? `"${body.action.slice(0, 64)}"` : '(missing)'}`);
  }
  const acted = interventions(body.assessments).filter((entry) => entry.action !== 'NONE');
  const blocked = acted.filter((entry) => entry.action === 'BLOCKED');
  const describe = (entries: readonly Intervention[]) =>
    [...new Set(entries.map((entry) => (entry.type ? `${entry.policy} ${entry.type}` : entry.policy)))].join(', ');
  const because = typeof body.actionReason === 'string' && body.actionReason.trim() !== '' ? body.actionReason : undefined;
  if (blocked.length > 0 || acted.length === 0) {
    const what = blocked.length > 0 ? describe(blocked) : because ?? 'no assessment given';
    return { verdict: 'block', reason: clipReason(`Bedrock guardrail intervened on the ${envelope.hook}: ${what}`) };
  }
  const outputs = body.outputs;
  const texts = Array.isArray(outputs) && outputs.every((item) => typeof item?.text === 'string') ? outputs.map((item) => item.text as string) : undefined;
  if (!texts || texts.length !== leaves.length) {
    return {
      verdict: 'block',
      reason: clipReason(`Bedrock guardrail masked the ${envelope.hook} (${describe(acted)}) but its outputs do not line up with the ${leaves.length} text blocks sent`),
    };
  }
  const payload = replaceStringLeaves(
    envelope.payload,
    leaves.map((leaf, i) => ({ path: leaf.path, text: texts[i]! })),
  );
  const check = validateModifiedPayload(envelope.payload, payload, { maxBytes });
  if (!check.ok) return engineError('INVALID_MODIFY', `Bedrock engine "${engineName}": ${check.reason}`);
  return { verdict: 'modify', payload };
}
