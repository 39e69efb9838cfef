import type { RuleTestResult } from '../../schema/rules/engine/index.js';
import type { RuleAction, RuleDetection, SnapshotRuleScope } from '../../schema/snapshot/index.js';
import type { GatewayRow } from '../gateways/gateway.table.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, decodeIds, encodeGlobalId } from '../graphql/global-id.js';
import { AssignmentRef, GatewayRef } from '../graphql/refs.js';
import type { RuleEngineConnectionTest, RuleEngineWithSecret } from './rule-engine.service.js';
import { ruleDefinitionInput } from './rule-input.js';
import type { RuleTemplate } from './rule-templates.js';
import type { RuleEngineRow, RuleRow } from './rule.table.js';

// ---------------------------------------------------------------- enums

const HOOKS = { REQUEST: { value: 'request' }, RESPONSE: { value: 'response' } } as const;
const PARTS = {
  TOOL_ARGUMENTS: { value: 'toolArguments', description: 'Request leg: tools/call arguments.' },
  PROMPT_ARGUMENTS: {
    value: 'promptArguments',
    description: 'Request leg: prompts/get arguments, and in completion/complete for a prompt the value being typed (argument.value) and the arguments already given (context.arguments).',
  },
  RESOURCE_URIS: {
    value: 'resourceUris',
    description:
      'Request leg: the URI of resources/read, resources/subscribe and resources/unsubscribe, scanned percent-decoded (a rewrite is sent upstream percent-encoded), and in completion/complete for a resource or resource template the value being typed (argument.value) and the variables already given (context.arguments).',
  },
  TOOL_RESULTS: { value: 'toolResults', description: 'Response leg: tools/call content and structuredContent.' },
  RESOURCE_CONTENTS: { value: 'resourceContents', description: 'Response leg: resources/read text, and the suggested values of completion/complete for a resource or resource template.' },
  PROMPT_MESSAGES: { value: 'promptMessages', description: 'Response leg: prompts/get messages, and the suggested values of completion/complete for a prompt argument.' },
  RELAYED_REQUESTS: {
    value: 'relayedRequests',
    description:
      'Response leg: what an upstream asks the client while serving a call, in the scope of that call: the messages and system prompt of sampling/createMessage, the message of elicitation/create. A block refuses the request to the upstream; the client never sees it.',
  },
  RELAYED_ANSWERS: {
    value: 'relayedAnswers',
    description:
      'Request leg: what the client answers such a request, before it goes upstream: the sampled content of sampling/createMessage, the values a person entered for elicitation/create. A block sends the upstream an error instead of the answer.',
  },
} as const;
const ACTIONS = {
  BLOCK: {
    value: 'block',
    description: 'End the call: a JSON-RPC error naming the rule; on the response leg of tools/call, an error result naming the rule instead.',
  },
  REDACT: { value: 'redact', description: 'Write `[REDACTED:<type>]` over each match.' },
  REPLACE: { value: 'replace', description: 'Write `text` over each match.' },
  MASK: { value: 'mask', description: 'Keep the last `keepLast` characters, star the rest.' },
  HASH: { value: 'hash', description: 'Write `sha256:<hex>` of the match, salted per workspace (stable across calls).' },
  ALERT_ONLY: { value: 'alert_only', description: 'Change nothing; record the trigger (and alert when raiseAlert).' },
} as const;
const FAILURE_MODES = {
  OPEN: { value: 'open', description: 'When detection fails at run time (an engine times out), let the call through (audited).' },
  CLOSED: { value: 'closed', description: 'When detection fails at run time, refuse the call.' },
} as const;
const DETECTORS = { PROMPT_INJECTION: { value: 'prompt_injection' } } as const;
const ENGINE_KINDS = {
  WEBHOOK: { value: 'webhook', description: "Gatehouse's own signed envelope." },
  LAKERA: { value: 'lakera', description: 'Lakera Guard.' },
  BEDROCK: { value: 'bedrock', description: 'Amazon Bedrock Guardrails (ApplyGuardrail).' },
} as const;

const RuleHookEnum = builder.enumType('RuleHook', { values: HOOKS });
const RulePartEnum = builder.enumType('RulePart', { values: PARTS });
const RuleActionKindEnum = builder.enumType('RuleActionKind', { values: ACTIONS });
const RuleFailureModeEnum = builder.enumType('RuleFailureMode', { values: FAILURE_MODES });
const RuleDetectorEnum = builder.enumType('RuleDetector', { values: DETECTORS });
const RuleEngineKindEnum = builder.enumType('RuleEngineKind', { values: ENGINE_KINDS });
const RuleEngineMethodEnum = builder.enumType('RuleEngineMethod', { values: ['POST', 'PUT'] as const });
const RuleEngineVerdictEnum = builder.enumType('RuleEngineVerdict', {
  values: { PASS: { value: 'pass' }, BLOCK: { value: 'block' }, MODIFY: { value: 'modify' }, ERROR: { value: 'error' } } as const,
});
const AuditBodiesEnum = builder.enumType('AuditBodies', {
  values: {
    FULL: { value: 'full', description: 'Audit entries carry request and response bodies, secret-scrubbed and cut at maxBodyBytes.' },
    METADATA: { value: 'metadata', description: 'No bodies: sizes and token estimates only.' },
  } as const,
});

/** Internal value → GraphQL enum name, for templates shown as ready inputs. */
const nameOf = (values: Record<string, { value: string }>) => new Map(Object.entries(values).map(([name, v]) => [v.value, name]));
const HOOK_NAME = nameOf(HOOKS);
const PART_NAME = nameOf(PARTS);
const ACTION_NAME = nameOf(ACTIONS);
const FAILURE_MODE_NAME = nameOf(FAILURE_MODES);
const DETECTOR_NAME = nameOf(DETECTORS);

// ---------------------------------------------------------------- rule output types

const RuleEngineRef = builder.objectRef<RuleEngineRow>('RuleEngine');

const RegexDetection = builder.objectRef<Extract<RuleDetection, { kind: 'regex' }>>('RegexDetection').implement({
  description: "Patterns OR'd together, matched with RE2 (linear time).",
  fields: (t) => ({
    patterns: t.stringList({ resolve: (d) => [...d.patterns] }),
    caseInsensitive: t.exposeBoolean('caseInsensitive'),
  }),
});
const PiiDetection = builder.objectRef<Extract<RuleDetection, { kind: 'pii' }>>('PiiDetection').implement({
  description: 'The built-in PII recognizers, restricted to these entity types.',
  fields: (t) => ({
    entityTypes: t.stringList({ resolve: (d) => [...d.entityTypes] }),
    minConfidence: t.exposeFloat('minConfidence', { description: '0..1; findings below it are ignored.' }),
    allowList: t.stringList({ description: 'Exact values never reported.', resolve: (d) => [...d.allowList] }),
  }),
});
const EngineDetection = builder.objectRef<Extract<RuleDetection, { kind: 'engine' }>>('EngineDetection').implement({
  description: 'A custom rule engine of the workspace.',
  fields: (t) => ({
    engineId: t.id({ resolve: (d) => encodeGlobalId('RuleEngine', d.engineId) }),
    engine: t.field({
      type: RuleEngineRef,
      nullable: true,
      description: 'Null without integrations.view.',
      resolve: (d, _a, ctx) => (ctx.viewer.capabilities.has('integrations.view') ? ctx.loaders.ruleEngine.load(d.engineId) : null),
    }),
  }),
});
const DetectorDetection = builder.objectRef<Extract<RuleDetection, { kind: 'detector' }>>('DetectorDetection').implement({
  description: 'A built-in detector and the score (0..1) at or above which it triggers.',
  fields: (t) => ({
    detector: t.field({ type: RuleDetectorEnum, resolve: (d) => d.detector }),
    threshold: t.exposeFloat('threshold'),
  }),
});
const RuleDetectionUnion = builder.unionType('RuleDetection', {
  types: [RegexDetection, PiiDetection, EngineDetection, DetectorDetection],
  resolveType: (d) => ({ regex: RegexDetection, pii: PiiDetection, engine: EngineDetection, detector: DetectorDetection })[(d as RuleDetection).kind],
});

const RuleActionType = builder.objectRef<RuleAction>('RuleAction').implement({
  fields: (t) => ({
    kind: t.field({ type: RuleActionKindEnum, resolve: (a) => a.kind }),
    text: t.string({ nullable: true, description: 'For REPLACE.', resolve: (a) => (a.kind === 'replace' ? a.text : null) }),
    keepLast: t.int({ nullable: true, description: 'For MASK.', resolve: (a) => (a.kind === 'mask' ? a.keepLast : null) }),
  }),
});

const RuleScopeType = builder.objectRef<SnapshotRuleScope>('RuleScope').implement({
  description: 'Where a rule applies. Empty assignment and feature lists mean all.',
  fields: (t) => ({
    assignmentIds: t.idList({ resolve: (s) => s.assignmentIds.map((id) => encodeGlobalId('Assignment', id)) }),
    assignments: t.field({
      type: [AssignmentRef],
      resolve: async (s, _a, ctx) => (await Promise.all(s.assignmentIds.map((id) => ctx.loaders.assignment.load(id)))).filter((a) => a !== null),
    }),
    features: t.stringList({ description: 'Exposed (namespaced) feature names.', resolve: (s) => [...s.features] }),
    parts: t.field({ type: [RulePartEnum], resolve: (s) => [...s.parts] }),
  }),
});

const RuleRef = builder.objectRef<RuleRow>('Rule');
export const Rule = builder.node(RuleRef, {
  description: 'A content rule of a gateway, evaluated in order on the legs it hooks.',
  authScopes: { capability: 'gateways.view' },
  id: { resolve: (r) => r.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.rule.load(id)),
  fields: (t) => ({
    gateway: t.field({ type: GatewayRef, resolve: async (r, _a, ctx) => (await ctx.loaders.gateway.load(r.gateway_id))! }),
    name: t.exposeString('name', { description: 'Named in refusals and audit records; the patterns never are.' }),
    enabled: t.exposeBoolean('enabled', { description: 'Disabled rules are not compiled into the snapshot.' }),
    position: t.exposeInt('position', { description: '0-based place in the gateway’s evaluation order.' }),
    hooks: t.field({ type: [RuleHookEnum], resolve: (r) => [...r.hooks] }),
    scope: t.field({ type: RuleScopeType, resolve: (r) => r.scope }),
    detection: t.field({ type: RuleDetectionUnion, resolve: (r) => r.detection }),
    action: t.field({ type: RuleActionType, resolve: (r) => r.action }),
    failureMode: t.field({ type: RuleFailureModeEnum, resolve: (r) => r.failure_mode }),
    raiseAlert: t.exposeBoolean('raise_alert', { description: 'Whether a trigger raises an alert; every trigger is audited.' }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (r) => r.updated_at }),
  }),
});

const GatewayAuditSettings = builder.objectRef<GatewayRow>('GatewayAuditSettings').implement({
  description: 'What data planes record of a gateway’s calls.',
  fields: (t) => ({
    bodies: t.field({ type: AuditBodiesEnum, resolve: (g) => g.audit_bodies }),
    maxBodyBytes: t.exposeInt('audit_max_body_bytes', { description: 'Bodies are cut at this many bytes.' }),
  }),
});

builder.objectField(GatewayRef, 'rules', (t) =>
  t.field({
    type: [Rule],
    description: 'Content rules in evaluation order.',
    resolve: (g, _a, ctx) => ctx.loaders.gatewayRules.load(g.id),
  }),
);
builder.objectField(GatewayRef, 'auditSettings', (t) => t.field({ type: GatewayAuditSettings, resolve: (g) => g }));

// ---------------------------------------------------------------- templates and tests

/** A template with its definition parsed into the output shapes. */
interface TemplateView {
  readonly template: RuleTemplate;
  readonly hooks: readonly string[];
  readonly scope: SnapshotRuleScope;
  readonly detection: RuleDetection;
  readonly action: RuleAction;
}
let templateViews: TemplateView[] | undefined;
function templatesOf(templates: readonly RuleTemplate[]): TemplateView[] {
  templateViews ??= templates.map((template) => {
    const parsed = ruleDefinitionInput.parse(structuredClone(template.definition));
    return { template, hooks: parsed.hooks, scope: parsed.scope, detection: parsed.detection, action: parsed.action };
  });
  return templateViews;
}

/** The template as `CreateRuleInput` JSON (GraphQL enum names), without `gatewayId`. */
function templateInput(view: TemplateView): Record<string, unknown> {
  const d = view.template.definition;
  const detection =
    'detector' in d.detection
      ? { detector: { detector: DETECTOR_NAME.get(d.detection.detector.detector), threshold: d.detection.detector.threshold } }
      : structuredClone(d.detection);
  return {
    name: d.name,
    hooks: d.hooks.map((h) => HOOK_NAME.get(h)),
    scope: { assignmentIds: [], features: [], parts: d.scope.parts.map((p) => PART_NAME.get(p)) },
    detection,
    action: { ...d.action, kind: ACTION_NAME.get(d.action.kind) },
    failureMode: FAILURE_MODE_NAME.get(d.failureMode),
    raiseAlert: d.raiseAlert,
  };
}

const RuleTemplateType = builder.objectRef<TemplateView>('RuleTemplate').implement({
  description: 'A ready-made rule. `input` plus a gatewayId is a complete CreateRuleInput.',
  fields: (t) => ({
    key: t.string({ resolve: (v) => v.template.key }),
    name: t.string({ resolve: (v) => v.template.name }),
    description: t.string({ resolve: (v) => v.template.description }),
    hooks: t.field({ type: [RuleHookEnum], resolve: (v) => [...(v.hooks as ('request' | 'response')[])] }),
    scope: t.field({ type: RuleScopeType, resolve: (v) => v.scope }),
    detection: t.field({ type: RuleDetectionUnion, resolve: (v) => v.detection }),
    action: t.field({ type: RuleActionType, resolve: (v) => v.action }),
    input: t.field({ type: 'JSONObject', description: 'CreateRuleInput fields (all but gatewayId).', resolve: (v) => templateInput(v) }),
  }),
});

const RuleTestMatchType = builder.objectRef<RuleTestResult['matches'][number]>('RuleTestMatch').implement({
  fields: (t) => ({
    type: t.exposeString('type', { description: 'PII entity type, REGEX, or the detector name.' }),
    start: t.exposeInt('start', { description: 'UTF-16 offset of the first character.' }),
    end: t.exposeInt('end', { description: 'UTF-16 offset after the last character.' }),
    text: t.exposeString('text'),
  }),
});
const RuleTestResultType = builder.objectRef<RuleTestResult>('RuleTestResult').implement({
  description: 'What a rule would do to a sample. Nothing is saved or sent.',
  fields: (t) => ({
    matches: t.field({ type: [RuleTestMatchType], resolve: (r) => [...r.matches] }),
    matched: t.boolean({ resolve: (r) => r.matches.length > 0 }),
    output: t.exposeString('output', { description: 'The sample as the rule would pass it on (unchanged for BLOCK and ALERT_ONLY).' }),
    blocked: t.exposeBoolean('blocked', { description: 'The rule blocks and matched: the call would be refused.' }),
  }),
});

// ---------------------------------------------------------------- rule engines

export const RuleEngine = builder.node(RuleEngineRef, {
  description: 'A custom rule engine rules can call. Header values and the signing secret are never returned.',
  authScopes: { capability: 'integrations.view' },
  id: { resolve: (e) => e.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.ruleEngine.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    kind: t.field({ type: RuleEngineKindEnum, resolve: (e) => e.kind }),
    url: t.exposeString('url'),
    method: t.field({ type: RuleEngineMethodEnum, resolve: (e) => e.method }),
    headerNames: t.stringList({ description: 'Names of the configured headers; values are encrypted and never shown.', resolve: (e) => Object.keys(e.headers).sort() }),
    forwardHeaders: t.stringList({ description: 'Caller request headers copied onto engine calls.', resolve: (e) => [...e.forward_headers] }),
    timeoutMs: t.exposeInt('timeout_ms'),
    allowPrivateNetwork: t.exposeBoolean('allow_private_network', { description: 'Development only: loopback and private addresses (and http) allowed.' }),
    options: t.field({ type: 'JSONObject', description: 'Adapter settings (Bedrock guardrail, Lakera project).', resolve: (e) => e.options }),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (e) => e.updated_at }),
  }),
});

const CreatedRuleEngine = builder.objectRef<RuleEngineWithSecret>('CreatedRuleEngine').implement({
  fields: (t) => ({
    ruleEngine: t.field({ type: RuleEngine, resolve: (c) => c.engine }),
    signingSecret: t.exposeString('signingSecret', {
      description: 'The HMAC-SHA256 key of the x-gatehouse-signature header. Shown only now: store it in the engine.',
    }),
  }),
});

const RuleEngineConnectionTestType = builder.objectRef<RuleEngineConnectionTest>('RuleEngineConnectionTest').implement({
  fields: (t) => ({
    ok: t.exposeBoolean('ok', { description: 'The engine answered with a verdict other than ERROR.' }),
    verdict: t.field({ type: RuleEngineVerdictEnum, resolve: (r) => r.verdict }),
    reason: t.exposeString('reason', { nullable: true }),
    errorCode: t.exposeString('errorCode', { nullable: true, description: 'TIMEOUT, NETWORK, HTTP_STATUS, INVALID_RESPONSE, DESTINATION_REFUSED, …' }),
    durationMs: t.exposeFloat('durationMs'),
  }),
});

// ---------------------------------------------------------------- inputs

const RegexDetectionInput = builder.inputType('RegexDetectionInput', {
  fields: (t) => ({
    patterns: t.stringList({ required: true, description: 'RE2 syntax; no lookaround or backreferences.' }),
    caseInsensitive: t.boolean({ description: 'Default true.' }),
  }),
});
const PiiDetectionInput = builder.inputType('PiiDetectionInput', {
  fields: (t) => ({
    entityTypes: t.stringList({ required: true, description: 'EMAIL_ADDRESS, PHONE_NUMBER, US_SSN, CREDIT_CARD, IBAN_CODE, IP_ADDRESS, AWS_ACCESS_KEY, …' }),
    minConfidence: t.float({ description: '0..1, default 0.5.' }),
    allowList: t.stringList(),
  }),
});
const EngineDetectionInput = builder.inputType('EngineDetectionInput', { fields: (t) => ({ engineId: t.id({ required: true }) }) });
const DetectorDetectionInput = builder.inputType('DetectorDetectionInput', {
  fields: (t) => ({ detector: t.field({ type: RuleDetectorEnum, required: true }), threshold: t.float({ description: '0..1, default 0.5.' }) }),
});
const RuleDetectionInput = builder.inputType('RuleDetectionInput', {
  description: 'Exactly one of the fields.',
  fields: (t) => ({
    regex: t.field({ type: RegexDetectionInput }),
    pii: t.field({ type: PiiDetectionInput }),
    engine: t.field({ type: EngineDetectionInput }),
    detector: t.field({ type: DetectorDetectionInput }),
  }),
});
const RuleActionInput = builder.inputType('RuleActionInput', {
  fields: (t) => ({
    kind: t.field({ type: RuleActionKindEnum, required: true }),
    text: t.string({ description: 'For REPLACE.' }),
    keepLast: t.int({ description: 'For MASK; default 4.' }),
  }),
});
const RuleScopeInput = builder.inputType('RuleScopeInput', {
  fields: (t) => ({
    assignmentIds: t.idList({ description: 'Assignments of the rule’s gateway; empty or omitted = all.' }),
    features: t.stringList({ description: 'Exposed feature names; empty or omitted = all.' }),
    parts: t.field({
      type: [RulePartEnum],
      required: true,
      description:
        'What the rule scans; the rule must run on the leg of each part (REQUEST: TOOL_ARGUMENTS, PROMPT_ARGUMENTS, RESOURCE_URIS, RELAYED_ANSWERS; RESPONSE: the others). completion/complete has no part of its own: it is scanned with the parts of the prompt or resource it completes.',
    }),
  }),
});
const CreateRuleInput = builder.inputType('CreateRuleInput', {
  fields: (t) => ({
    gatewayId: t.id({ required: true }),
    name: t.string({ required: true }),
    enabled: t.boolean({ description: 'Default true.' }),
    position: t.int({ description: '0-based place in the gateway’s order; default last.' }),
    hooks: t.field({ type: [RuleHookEnum], required: true }),
    scope: t.field({ type: RuleScopeInput, required: true }),
    detection: t.field({ type: RuleDetectionInput, required: true }),
    action: t.field({ type: RuleActionInput, required: true }),
    failureMode: t.field({ type: RuleFailureModeEnum, description: 'Default CLOSED.' }),
    raiseAlert: t.boolean({ description: 'Default false.' }),
  }),
});
const UpdateRuleInput = builder.inputType('UpdateRuleInput', {
  description: 'Omitted fields keep their value; the resulting rule is validated whole.',
  fields: (t) => ({
    name: t.string(),
    enabled: t.boolean(),
    hooks: t.field({ type: [RuleHookEnum] }),
    scope: t.field({ type: RuleScopeInput }),
    detection: t.field({ type: RuleDetectionInput }),
    action: t.field({ type: RuleActionInput }),
    failureMode: t.field({ type: RuleFailureModeEnum }),
    raiseAlert: t.boolean(),
  }),
});
const RuleInput = builder.inputType('RuleInput', {
  description: 'A rule to try with testRule.',
  fields: (t) => ({
    name: t.string(),
    detection: t.field({ type: RuleDetectionInput, required: true }),
    action: t.field({ type: RuleActionInput, required: true }),
  }),
});
const HeaderInput = builder.inputType('RuleEngineHeaderInput', {
  fields: (t) => ({ name: t.string({ required: true }), value: t.string({ required: true, description: 'Encrypted at rest; never returned.' }) }),
});
const CreateRuleEngineInput = builder.inputType('CreateRuleEngineInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    kind: t.field({ type: RuleEngineKindEnum, required: true }),
    url: t.string({ required: true, description: 'https:// (http:// only with allowPrivateNetwork).' }),
    method: t.field({ type: RuleEngineMethodEnum, description: 'Default POST.' }),
    headers: t.field({ type: [HeaderInput] }),
    forwardHeaders: t.stringList({ description: 'Caller request headers to copy onto engine calls (never authorization or cookie).' }),
    timeoutMs: t.int({ description: 'Default 30000.' }),
    allowPrivateNetwork: t.boolean({ description: 'Development only: allow loopback and private addresses and http. Default false.' }),
    options: t.field({ type: 'JSONObject', description: 'String adapter settings: bedrock guardrailIdentifier, guardrailVersion, region; lakera projectId.' }),
  }),
});
const UpdateRuleEngineInput = builder.inputType('UpdateRuleEngineInput', {
  fields: (t) => ({
    name: t.string(),
    url: t.string(),
    method: t.field({ type: RuleEngineMethodEnum }),
    setHeaders: t.field({ type: [HeaderInput], description: 'Added, or replaced by name.' }),
    removeHeaders: t.stringList(),
    forwardHeaders: t.stringList(),
    timeoutMs: t.int(),
    allowPrivateNetwork: t.boolean(),
    options: t.field({ type: 'JSONObject' }),
  }),
});
const UpdateGatewayAuditSettingsInput = builder.inputType('UpdateGatewayAuditSettingsInput', {
  fields: (t) => ({
    bodies: t.field({ type: AuditBodiesEnum, required: true }),
    maxBodyBytes: t.int({ required: true, description: '0..16777216.' }),
  }),
});

/** GraphQL passes omitted optional input fields as null, at any depth; services treat absent and null alike. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (item !== null && item !== undefined) out[key] = withoutNulls(item);
  return out;
}

/** Decodes the global ids inside a rule input (scope assignments, engine), in place on a null-free copy. */
function decodeRuleInput(raw: unknown, prefix: string): Record<string, unknown> {
  const input = withoutNulls(raw) as Record<string, any>;
  if (input.scope?.assignmentIds) input.scope.assignmentIds = decodeIds('Assignment', input.scope.assignmentIds, `${prefix}.scope.assignmentIds`);
  if (input.detection?.engine?.engineId !== undefined) {
    input.detection.engine.engineId = decodeIdOf('RuleEngine', String(input.detection.engine.engineId), `${prefix}.detection.engine.engineId`);
  }
  return input;
}

// ---------------------------------------------------------------- root fields

builder.queryFields((t) => ({
  rules: t.field({
    type: [Rule],
    description: 'A gateway’s content rules in evaluation order.',
    authScopes: { capability: 'gateways.view' },
    args: { gatewayId: t.arg.id({ required: true }) },
    resolve: (_r, { gatewayId }, ctx) => ctx.services.rules.list(ctx.viewer, decodeIdOf('Gateway', String(gatewayId), 'gatewayId')),
  }),
  ruleTemplates: t.field({
    type: [RuleTemplateType],
    description: 'Ready-made rules: SSNs, credit cards, phone numbers, API keys and secrets, prompt injection.',
    authScopes: { capability: 'gateways.view' },
    resolve: (_r, _a, ctx) => templatesOf(ctx.services.rules.templates()),
  }),
  testRule: t.field({
    type: RuleTestResultType,
    description: 'Runs a rule (given, or saved: ruleId) over a sample as a data plane would, with the workspace’s hash salt. Saves nothing.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'result' } },
    args: { rule: t.arg({ type: RuleInput }), ruleId: t.arg.id(), sample: t.arg.string({ required: true }) },
    resolve: (_r, { rule, ruleId, sample }, ctx) =>
      ctx.services.rules.test(
        ctx.viewer,
        ruleId != null ? { ruleId: decodeIdOf('Rule', String(ruleId), 'ruleId') } : rule != null ? { rule: decodeRuleInput(rule, 'rule') } : {},
        sample,
      ),
  }),
  ruleEngines: t.field({
    type: [RuleEngine],
    authScopes: { capability: 'integrations.view' },
    resolve: (_r, _a, ctx) => ctx.services.ruleEngines.list(ctx.viewer),
  }),
}));

const ruleMutation = <Name extends string>(name: Name) => ({ types: [...COMMON_ERRORS], dataField: { name } });

builder.mutationFields((t) => ({
  createRule: t.field({
    type: Rule,
    errors: ruleMutation('rule'),
    args: { input: t.arg({ type: CreateRuleInput, required: true }) },
    resolve: (_r, { input }, ctx) => {
      const decoded = decodeRuleInput(input, 'input');
      return ctx.services.rules.create(ctx.viewer, { ...decoded, gatewayId: decodeIdOf('Gateway', String(input.gatewayId), 'input.gatewayId') });
    },
  }),
  createRuleFromTemplate: t.field({
    type: Rule,
    description: 'Adds a ready-made rule (see ruleTemplates) at the end of the gateway’s list.',
    errors: ruleMutation('rule'),
    args: { gatewayId: t.arg.id({ required: true }), templateKey: t.arg.string({ required: true }), name: t.arg.string(), enabled: t.arg.boolean() },
    resolve: (_r, { gatewayId, templateKey, name, enabled }, ctx) =>
      ctx.services.rules.createFromTemplate(ctx.viewer, decodeIdOf('Gateway', String(gatewayId), 'gatewayId'), templateKey, {
        ...(name != null && { name }),
        ...(enabled != null && { enabled }),
      }),
  }),
  updateRule: t.field({
    type: Rule,
    errors: ruleMutation('rule'),
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateRuleInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.rules.update(ctx.viewer, decodeIdOf('Rule', String(id), 'id'), decodeRuleInput(input, 'input')),
  }),
  setRuleEnabled: t.field({
    type: Rule,
    errors: ruleMutation('rule'),
    args: { id: t.arg.id({ required: true }), enabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, enabled }, ctx) => ctx.services.rules.setEnabled(ctx.viewer, decodeIdOf('Rule', String(id), 'id'), enabled),
  }),
  deleteRule: t.field({
    type: 'ID',
    errors: ruleMutation('deletedRuleId'),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.rules.delete(ctx.viewer, decodeIdOf('Rule', String(id), 'id'));
      return String(id);
    },
  }),
  reorderRules: t.field({
    type: [Rule],
    description: 'Sets the evaluation order: ruleIds lists every rule of the gateway once, first evaluated first.',
    errors: ruleMutation('rules'),
    args: { gatewayId: t.arg.id({ required: true }), ruleIds: t.arg.idList({ required: true }) },
    resolve: (_r, { gatewayId, ruleIds }, ctx) =>
      ctx.services.rules.reorder(ctx.viewer, decodeIdOf('Gateway', String(gatewayId), 'gatewayId'), decodeIds('Rule', ruleIds, 'ruleIds')),
  }),
  updateGatewayAuditSettings: t.field({
    type: GatewayRef,
    description: 'Whether audit entries of the gateway carry bodies, and the body cap.',
    errors: ruleMutation('gateway'),
    args: { gatewayId: t.arg.id({ required: true }), bodies: t.arg({ type: AuditBodiesEnum, required: true }), maxBodyBytes: t.arg.int({ required: true }) },
    resolve: (_r, { gatewayId, bodies, maxBodyBytes }, ctx) =>
      ctx.services.rules.updateAuditSettings(ctx.viewer, decodeIdOf('Gateway', String(gatewayId), 'gatewayId'), { bodies, maxBodyBytes }),
  }),
  createRuleEngine: t.field({
    type: CreatedRuleEngine,
    description: 'Registers a custom rule engine. The signing secret is in the answer and never again.',
    errors: ruleMutation('created'),
    args: { input: t.arg({ type: CreateRuleEngineInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.ruleEngines.create(ctx.viewer, withoutNulls(input)),
  }),
  updateRuleEngine: t.field({
    type: RuleEngine,
    errors: ruleMutation('ruleEngine'),
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateRuleEngineInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.ruleEngines.update(ctx.viewer, decodeIdOf('RuleEngine', String(id), 'id'), withoutNulls(input)),
  }),
  deleteRuleEngine: t.field({
    type: 'ID',
    description: 'Refused (CONFLICT) while rules use the engine.',
    errors: ruleMutation('deletedRuleEngineId'),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.ruleEngines.delete(ctx.viewer, decodeIdOf('RuleEngine', String(id), 'id'));
      return String(id);
    },
  }),
  rotateRuleEngineSecret: t.field({
    type: CreatedRuleEngine,
    description: 'A new signing secret, shown once; the old one stops being used with the next snapshot.',
    errors: ruleMutation('created'),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.ruleEngines.rotateSecret(ctx.viewer, decodeIdOf('RuleEngine', String(id), 'id')),
  }),
  testRuleEngineConnection: t.field({
    type: RuleEngineConnectionTestType,
    description: 'Sends a harmless test envelope to the engine and reports its verdict.',
    errors: ruleMutation('result'),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.ruleEngines.testConnection(ctx.viewer, decodeIdOf('RuleEngine', String(id), 'id')),
  }),
}));
