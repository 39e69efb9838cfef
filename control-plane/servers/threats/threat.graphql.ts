import DataLoader from 'dataloader';
import { resolveOffsetConnection } from '@pothos/plugin-relay';
import type { JsonDiff } from '../../alerts/json-diff.js';
import { builder } from '../../graphql/builder.js';
import type { Context } from '../../graphql/context.js';
import { COMMON_ERRORS } from '../../graphql/error-types.js';
import { decodeIdOf } from '../../graphql/global-id.js';
import { AssignmentRef, ServerFeatureRef, ServerRef } from '../../graphql/refs.js';
import { ServerFeatureKind } from '../server.graphql.js';
import type { ServerRow } from '../server.table.js';
import { diffDefinitions } from './definition-diff.js';
import type { MimicryCode, MimicryFinding } from './mimicry.js';
import type { ThreatReason as ThreatReasonData } from './poisoning.js';
import type { FeaturePinRow } from './threat.service.js';

/**
 * GraphQL for threat detection: verdicts and diffs on `ServerFeature` and `Server`, the
 * workspace's flagged features, and the two approvals.
 */

const FeatureReviewState = builder.enumType('FeatureReviewState', {
  description: 'Tool-poisoning verdict of a feature definition.',
  values: {
    CLEAR: { value: 'clear', description: 'Scanned and nothing suspicious found (or not scanned yet: see `threatScannedHash`).' },
    FLAGGED: { value: 'flagged', description: 'Looks poisoned: withheld on every gateway (FLAGGED) until an admin approves it.' },
    APPROVED: { value: 'approved', description: 'Was flagged; an admin approved this definition. A changed definition is judged again.' },
  } as const,
});

const ThreatReasonCode = builder.enumType('ThreatReasonCode', {
  values: {
    HIDDEN_INSTRUCTIONS: { description: 'Instructions aimed at the model: fake <IMPORTANT>/<system> tags, role markers, "ignore previous instructions", asking to hide things from the user.' },
    INVISIBLE_CHARACTERS: { description: 'Zero-width characters, Unicode tag characters (hidden ASCII) or bidi controls.' },
    EXFILTRATION: { description: 'Sending data to a URL or address, request-capture hosts, data in URL query strings.' },
    SECRET_ACCESS: { description: 'Reading secret files (~/.ssh, .env, credentials) or handing over keys.' },
    ENCODED_PAYLOAD: { description: 'Base64 blobs, especially ones that decode to instructions.' },
    CROSS_SERVER_SHADOWING: { description: "Names or redirects the use of another server's tool." },
    CONFUSABLE_NAME: { description: "The server's name differs from another's only in look-alike characters or separators." },
    SIMILAR_NAME: { description: "The server's name is a small edit away from another's." },
    HOMOGLYPH_HOST: { description: "The server's host differs from another's only in look-alike characters." },
    SWAPPED_TLD: { description: "The server's host registers another's name under a different public suffix." },
    LOOKALIKE_HOST: { description: "The server's registered domain is a small edit from another's, or extends it with hyphens." },
    EMBEDDED_DOMAIN: { description: "The server's host carries another's domain inside a different domain (github-com.evil.io)." },
  } as const,
});

/** A poisoning reason or a mimicry finding, as one shape for clients. */
interface ReasonView {
  readonly code: ThreatReasonData['code'] | MimicryCode;
  readonly rule: string;
  readonly field: string;
  readonly message: string;
  readonly excerpt: string | null;
  readonly weight: number | null;
  readonly relatedServerId: string | null;
  readonly relatedTool: string | null;
}

const fromPoisoning = (r: ThreatReasonData): ReasonView => ({
  code: r.code,
  rule: r.rule,
  field: r.field,
  message: r.message,
  excerpt: r.excerpt,
  weight: r.weight,
  relatedServerId: r.relatedServerId ?? null,
  relatedTool: r.relatedTool ?? null,
});

const fromMimicry = (f: MimicryFinding): ReasonView => ({
  code: f.code,
  rule: f.code.toLowerCase().replace(/_/g, '-'),
  field: f.code.endsWith('NAME') ? 'name' : 'url',
  message: f.message,
  excerpt: null,
  weight: null,
  relatedServerId: f.serverId,
  relatedTool: null,
});

const ThreatReason = builder.objectRef<ReasonView>('ThreatReason').implement({
  description: 'One detector rule that fired: why a feature was flagged or a server held for review.',
  fields: (t) => ({
    code: t.field({ type: ThreatReasonCode, resolve: (r) => r.code }),
    rule: t.exposeString('rule', { description: 'Stable id of the rule, e.g. `instruction-tag`, `zero-width`, `swapped-tld`.' }),
    field: t.exposeString('field', { description: 'Where it fired: `description`, `inputSchema.properties.note.description`, `name`, `url`.' }),
    message: t.exposeString('message'),
    excerpt: t.exposeString('excerpt', { nullable: true, description: 'The text around the match; invisible characters shown as `\\u{200B}`.' }),
    weight: t.exposeFloat('weight', { nullable: true, description: 'What the rule adds to the score (poisoning rules only).' }),
    relatedServer: t.field({
      type: ServerRef,
      nullable: true,
      description: 'The server resembled (mimicry) or whose tool is named (shadowing).',
      resolve: (r, _a, ctx) => (r.relatedServerId ? ctx.loaders.server.load(r.relatedServerId) : null),
    }),
    relatedTool: t.exposeString('relatedTool', { nullable: true, description: 'For shadowing: the other server’s tool.' }),
  }),
});

const DefinitionChangeOp = builder.enumType('DefinitionChangeOp', {
  values: { ADD: { value: 'add' }, REMOVE: { value: 'remove' }, REPLACE: { value: 'replace' } } as const,
});

type Change = JsonDiff['changes'][number];

const DefinitionChange = builder.objectRef<Change>('DefinitionChange').implement({
  description: 'One difference between two definitions, at a JSON Pointer into the pinned fields.',
  fields: (t) => ({
    path: t.exposeString('path', { description: 'JSON Pointer, e.g. `/description`, `/inputSchema/properties/id/description`.' }),
    op: t.field({ type: DefinitionChangeOp, resolve: (c) => c.op }),
    oldValue: t.string({ nullable: true, description: 'The earlier value as JSON (long values cut); null for ADD.', resolve: (c) => (c.op === 'add' ? null : JSON.stringify(c.old ?? null)) }),
    newValue: t.string({ nullable: true, description: 'The later value as JSON (long values cut); null for REMOVE.', resolve: (c) => (c.op === 'remove' ? null : JSON.stringify(c.new ?? null)) }),
  }),
});

const DefinitionDiff = builder.objectRef<JsonDiff>('DefinitionDiff').implement({
  description: 'What changed in the fields a pin covers (name, title, description, schemas, tool annotations).',
  fields: (t) => ({
    changes: t.field({ type: [DefinitionChange], resolve: (d) => [...d.changes] }),
    truncated: t.exposeBoolean('truncated', { description: 'More changes existed than are listed.' }),
  }),
});

interface PinDiffView {
  readonly pin: FeaturePinRow;
  readonly currentHash: string;
  readonly diff: JsonDiff;
}

const FeaturePinDiff = builder.objectRef<PinDiffView>('FeaturePinDiff').implement({
  description: 'A pin whose approved definition differs from the live one (a rug pull): the feature is withheld there as PIN_MISMATCH.',
  fields: (t) => ({
    assignment: t.field({ type: AssignmentRef, nullable: true, resolve: (p, _a, ctx) => ctx.loaders.assignment.load(p.pin.assignment_id) }),
    gatewaySlug: t.string({ resolve: (p) => p.pin.gateway_slug }),
    pinnedHash: t.string({ resolve: (p) => p.pin.pinned_hash }),
    currentHash: t.exposeString('currentHash'),
    pinnedAt: t.field({ type: 'DateTime', resolve: (p) => p.pin.pinned_at }),
    pinnedBy: t.string({ resolve: (p) => p.pin.pinned_by }),
    diff: t.field({ type: DefinitionDiff, description: 'From the approved definition to the live one.', resolve: (p) => p.diff }),
  }),
});

interface LastChangeView {
  readonly previousHash: string;
  readonly changedAt: Date | string;
  readonly diff: JsonDiff;
}

const FeatureLastChange = builder.objectRef<LastChangeView>('FeatureLastChange').implement({
  description: 'The last time discovery saw this feature’s definition change, and how.',
  fields: (t) => ({
    previousHash: t.exposeString('previousHash'),
    changedAt: t.field({ type: 'DateTime', resolve: (c) => c.changedAt }),
    diff: t.field({ type: DefinitionDiff, description: 'From the previous definition to the current one.', resolve: (c) => c.diff }),
  }),
});

/** Pins of each server's features, one statement per request level (a loader per request context). */
const pinLoaders = new WeakMap<Context, DataLoader<string, FeaturePinRow[]>>();
function pinsOf(ctx: Context, serverId: string): Promise<FeaturePinRow[]> {
  let loader = pinLoaders.get(ctx);
  if (!loader) {
    loader = new DataLoader(async (ids) => {
      const map = await ctx.services.threats.pinsByServerIds(ctx.viewer.workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    });
    pinLoaders.set(ctx, loader);
  }
  return loader.load(serverId);
}

builder.objectFields(ServerFeatureRef, (t) => ({
  reviewState: t.field({ type: FeatureReviewState, description: 'Tool-poisoning verdict; FLAGGED features are withheld on every gateway.', resolve: (f) => f.threat_state }),
  threatScore: t.exposeFloat('threat_score', { description: '0..1; FLAGGED at 0.5 or more.' }),
  threatReasons: t.field({
    type: [ThreatReason],
    description: 'Every rule that fired, strongest first (also those below the threshold).',
    resolve: (f) => f.threat_reasons.map(fromPoisoning),
  }),
  threatScannedHash: t.exposeString('threat_hash', { nullable: true, description: 'The definition hash the verdict is about; null until the next discovery scans it.' }),
  reviewedBy: t.exposeString('threat_reviewed_by', { nullable: true, description: 'Who approved the flagged definition.' }),
  reviewedAt: t.field({ type: 'DateTime', nullable: true, resolve: (f) => f.threat_reviewed_at }),
  lastChange: t.field({
    type: FeatureLastChange,
    nullable: true,
    description: 'The previous definition against this one, since the last hash change; null if it never changed.',
    resolve: (f): LastChangeView | null =>
      f.previous_hash && f.previous_definition
        ? { previousHash: f.previous_hash, changedAt: f.changed_at, diff: diffDefinitions(f.kind, f.previous_definition, f.definition) }
        : null,
  }),
  pinDiffs: t.field({
    type: [FeaturePinDiff],
    description: 'Pins of this feature whose approved definition differs from the live one (rug pulls), with the diff; empty when every pin matches.',
    resolve: async (f, _a, ctx) =>
      (await pinsOf(ctx, f.server_id))
        .filter((p) => p.kind === f.kind && p.name === f.name && p.pinned_hash !== f.hash)
        .map((pin) => ({ pin, currentHash: f.hash, diff: diffDefinitions(f.kind, pin.pinned_definition, f.definition) })),
  }),
}));

builder.objectFields(ServerRef, (t) => ({
  threatReasons: t.field({
    type: [ThreatReason],
    description: 'Why the server was held for review (anti-mimicry), kept after approval as history.',
    resolve: (s) => s.threat_reasons.map(fromMimicry),
  }),
  resembles: t.field({
    type: ServerRef,
    nullable: true,
    description: 'The server whose name or URL this one passes for, when anti-mimicry held it for review.',
    resolve: (s, _a, ctx) => (s.resembles_server_id ? ctx.loaders.server.load(s.resembles_server_id) : null),
  }),
  reviewedBy: t.exposeString('reviewed_by', { nullable: true, description: 'Who approved the server after review.' }),
  reviewedAt: t.field({ type: 'DateTime', nullable: true, resolve: (s) => s.reviewed_at }),
}));

builder.queryFields((t) => ({
  flaggedFeatures: t.connection({
    type: ServerFeatureRef,
    description: 'Features withheld as FLAGGED (tool poisoning) across the workspace: the review queue, newest change first.',
    authScopes: { capability: 'servers.view' },
    resolve: (_r, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.threats.listFlagged(ctx.viewer, page)),
  }),
}));

const ApproveFlaggedFeatureInput = builder.inputType('ApproveFlaggedFeatureInput', {
  fields: (t) => ({
    serverId: t.id({ required: true }),
    kind: t.field({ type: ServerFeatureKind, required: true }),
    name: t.string({ required: true, description: 'The feature’s wire identity: tool or prompt name, resource URI, URI template.' }),
    hash: t.string({ description: 'The definition hash you reviewed; refused (CONFLICT) if the definition changed since.' }),
  }),
});

builder.mutationFields((t) => ({
  approveFlaggedFeature: t.field({
    type: ServerFeatureRef,
    description:
      'Clears a feature flagged as poisoned so gateways serve it again, recording who approved it. Needs servers.manage. The approval holds for this definition: a changed definition is scanned again.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'feature' } },
    args: { input: t.arg({ type: ApproveFlaggedFeatureInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.threats.approveFeature(ctx.viewer, {
        serverId: decodeIdOf('Server', String(input.serverId), 'input.serverId'),
        kind: input.kind,
        name: input.name,
        hash: input.hash ?? undefined,
      }),
  }),
  approveServer: t.field({
    type: ServerRef,
    description: 'Lets a server held for review (its name or URL resembles another server’s) into gateways, recording who approved it. Needs servers.manage.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'server' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx): Promise<ServerRow> => ctx.services.threats.approveServer(ctx.viewer, decodeIdOf('Server', String(id), 'id')),
  }),
}));
