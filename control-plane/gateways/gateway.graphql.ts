import { resolveArrayConnection, resolveOffsetConnection } from '@pothos/plugin-relay';
import { FEATURE_TYPES, type FeatureType } from '../../schema/snapshot/index.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, decodeIds, encodeGlobalId, stripNulls } from '../graphql/global-id.js';
import { AssignmentRef, GatewayRef, ServerContainerRef, ServerRef, TeamRef } from '../graphql/refs.js';
import type { TeamRow } from '../access/access.table.js';
import type { PinView } from './assignment.service.js';
import type { FeatureProvisioning, MetadataOverride } from './gateway.table.js';

const FeatureTypeEnum = builder.enumType('FeatureType', {
  values: { TOOLS: { value: 'tools' }, PROMPTS: { value: 'prompts' }, RESOURCES: { value: 'resources' }, RESOURCE_TEMPLATES: { value: 'resourceTemplates' } } as const,
});
const ProvisioningModeEnum = builder.enumType('ProvisioningMode', {
  values: {
    ALLOW_ALL: { description: 'Every discovered feature of this type.' },
    ALLOW_SELECTED: { description: 'Only the listed features.' },
    BLOCK_ALL: { description: 'None.' },
    UNREVIEWED: { description: 'The fail-closed default of a new assignment: nothing until an admin chooses.' },
  } as const,
});
const SettableModeEnum = builder.enumType('SettableProvisioningMode', { values: ['ALLOW_ALL', 'ALLOW_SELECTED', 'BLOCK_ALL'] as const });
const IdentitySchemeEnum = builder.enumType('IdentityScheme', {
  values: {
    SHARED: { value: 'shared', description: 'One service credential for every caller.' },
    PERSONAL: { value: 'personal', description: 'Each user brings their own credential.' },
  } as const,
});
const OverrideActionEnum = builder.enumType('OverrideAction', {
  values: { KEEP: { value: 'keep' }, STRIP: { value: 'strip' }, REPLACE: { value: 'replace' } } as const,
});
const PinStatusEnum = builder.enumType('PinStatus', {
  values: {
    OK: { description: 'The live definition is the approved one.' },
    CHANGED: { description: 'Discovery saw a different definition; the feature is withheld until re-approved.' },
    MISSING: { description: 'The server no longer offers the feature.' },
  } as const,
});

const dataPlaneUrl = (base: string, slug: string) => `${base}/mcp/${slug}`;

export const Gateway = builder.node(GatewayRef, {
  description: 'One governed MCP URL: a bundle of server assignments, provisioned to teams.',
  authScopes: { capability: 'gateways.view' },
  id: { resolve: (g) => g.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.gateway.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    slug: t.exposeString('slug', { description: 'Unique in the workspace; the last segment of the MCP URL.' }),
    description: t.exposeString('description'),
    disabled: t.exposeBoolean('disabled', { description: 'Kill switch: every call is refused while set.' }),
    archived: t.boolean({ resolve: (g) => g.archived_at !== null }),
    archivedAt: t.field({ type: 'DateTime', nullable: true, resolve: (g) => g.archived_at }),
    dataPlaneUrl: t.string({
      description: 'The MCP Streamable HTTP URL clients connect to.',
      resolve: (g, _a, ctx) => dataPlaneUrl(ctx.services.dataPlanePublicUrl, g.slug),
    }),
    teams: t.connection({
      type: TeamRef,
      description: 'Teams whose members may use the gateway.',
      resolve: async (g, args, ctx) => {
        const ids = await ctx.loaders.gatewayTeamIds.load(g.id);
        const teams = (await Promise.all(ids.map((id) => ctx.loaders.team.load(id)))).filter((x): x is TeamRow => x !== null);
        return resolveArrayConnection({ args }, teams.sort((a, b) => a.name.localeCompare(b.name)));
      },
    }),
    assignments: t.connection({
      type: AssignmentRef,
      resolve: async (g, args, ctx) => resolveArrayConnection({ args }, await ctx.loaders.gatewayAssignments.load(g.id)),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (g) => g.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (g) => g.updated_at }),
  }),
});

const FeatureProvisioningType = builder.objectRef<FeatureProvisioning & { featureType: FeatureType }>('FeatureProvisioning').implement({
  fields: (t) => ({
    featureType: t.field({ type: FeatureTypeEnum, resolve: (p) => p.featureType }),
    mode: t.field({ type: ProvisioningModeEnum, resolve: (p) => p.mode }),
    selected: t.stringList({ description: 'Upstream names allowed under ALLOW_SELECTED.', resolve: (p) => [...p.selected] }),
  }),
});

type FieldOverride = { action: 'keep' | 'strip' | 'replace'; value: unknown };
const FieldOverrideType = builder.objectRef<FieldOverride>('MetadataFieldOverride').implement({
  fields: (t) => ({
    action: t.field({ type: OverrideActionEnum, resolve: (o) => o.action }),
    value: t.field({ type: 'JSONObject', nullable: true, description: 'The replacement, wrapped as `{ "value": … }`.', resolve: (o) => (o.action === 'replace' ? { value: o.value } : null) }),
  }),
});
const toFieldOverride = (value: unknown, present: boolean): FieldOverride =>
  !present ? { action: 'keep', value: null } : value === null ? { action: 'strip', value: null } : { action: 'replace', value };

const MetadataOverrideType = builder.objectRef<MetadataOverride & { key: string }>('MetadataOverride').implement({
  description: 'What clients are told about one feature instead of what the upstream says.',
  fields: (t) => ({
    featureType: t.field({ type: FeatureTypeEnum, resolve: (o) => o.key.slice(0, o.key.indexOf(':')) as FeatureType }),
    name: t.string({ resolve: (o) => o.key.slice(o.key.indexOf(':') + 1) }),
    title: t.field({ type: FieldOverrideType, resolve: (o) => toFieldOverride(o.title, 'title' in o) }),
    description: t.field({ type: FieldOverrideType, resolve: (o) => toFieldOverride(o.description, 'description' in o) }),
    annotations: t.field({ type: FieldOverrideType, resolve: (o) => toFieldOverride(o.annotations, 'annotations' in o) }),
  }),
});

const FeaturePin = builder.objectRef<PinView>('FeaturePin').implement({
  description: 'A feature pinned to an approved definition, with the live one beside it.',
  fields: (t) => ({
    featureType: t.field({ type: FeatureTypeEnum, resolve: (p) => p.featureType }),
    name: t.exposeString('name'),
    serverId: t.id({ resolve: (p) => encodeGlobalId('Server', p.server_id) }),
    status: t.field({ type: PinStatusEnum, resolve: (p) => p.status }),
    pinnedHash: t.exposeString('pinned_hash'),
    pinnedDefinition: t.field({ type: 'JSONObject', resolve: (p) => p.pinned_definition }),
    currentHash: t.string({ nullable: true, resolve: (p) => p.currentHash }),
    currentDefinition: t.field({ type: 'JSONObject', nullable: true, resolve: (p) => p.currentDefinition }),
    pinnedAt: t.field({ type: 'DateTime', resolve: (p) => p.pinned_at }),
    pinnedBy: t.exposeString('pinned_by'),
  }),
});

export const Assignment = builder.node(AssignmentRef, {
  description: 'A server (or container) placed on a gateway, with its own identity scheme, namespace and provisioning.',
  authScopes: { capability: 'gateways.view' },
  id: { resolve: (a) => a.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.assignment.load(id)),
  fields: (t) => ({
    gateway: t.field({ type: Gateway, resolve: async (a, _x, ctx) => (await ctx.loaders.gateway.load(a.gateway_id))! }),
    serverId: t.id({ nullable: true, resolve: (a) => (a.server_id ? encodeGlobalId('Server', a.server_id) : null) }),
    containerId: t.id({ nullable: true, resolve: (a) => (a.container_id ? encodeGlobalId('ServerContainer', a.container_id) : null) }),
    server: t.field({
      type: ServerRef,
      nullable: true,
      description: 'The assigned server (null when a container is assigned). Needs servers.view.',
      resolve: (a, _x, ctx) => (a.server_id ? ctx.loaders.server.load(a.server_id) : null),
    }),
    container: t.field({
      type: ServerContainerRef,
      nullable: true,
      description: 'The assigned container (null when a single server is assigned). Needs servers.view.',
      resolve: (a, _x, ctx) => (a.container_id ? ctx.loaders.serverContainer.load(a.container_id) : null),
    }),
    identityScheme: t.field({ type: IdentitySchemeEnum, resolve: (a) => a.identity_scheme }),
    namespacePrefix: t.exposeString('namespace_prefix', { description: 'Prepended to exposed names as `<prefix>__<name>` (tools, prompts) or `<prefix>+<uri>` (resources).' }),
    disabled: t.exposeBoolean('disabled'),
    provisioning: t.field({
      type: [FeatureProvisioningType],
      resolve: (a) => FEATURE_TYPES.map((featureType) => ({ featureType, ...a.provisioning[featureType] })),
    }),
    metadataOverrides: t.field({
      type: [MetadataOverrideType],
      resolve: (a) => Object.entries(a.metadata_overrides).map(([key, o]) => ({ key, ...o })),
    }),
    pins: t.field({ type: [FeaturePin], resolve: (a, _x, ctx) => ctx.loaders.assignmentPins.load(a.id) }),
    createdAt: t.field({ type: 'DateTime', resolve: (a) => a.created_at }),
  }),
});

builder.queryFields((t) => ({
  gateways: t.connection({
    type: Gateway,
    authScopes: { capability: 'gateways.view' },
    args: { includeArchived: t.arg.boolean({ defaultValue: false }) },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.gateways.list(ctx.viewer, args.includeArchived ?? false, page)),
  }),
  gateway: t.field({
    type: Gateway,
    nullable: true,
    authScopes: { capability: 'gateways.view' },
    args: { id: t.arg.id(), slug: t.arg.string() },
    description: 'A gateway by ID or by slug.',
    resolve: (_r, { id, slug }, ctx) =>
      id ? ctx.services.gateways.get(ctx.viewer, decodeIdOf('Gateway', String(id), 'id')) : ctx.services.gateways.bySlug(ctx.viewer, slug ?? ''),
  }),
}));

const CreateGatewayInput = builder.inputType('CreateGatewayInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    slug: t.string({ description: 'Defaults to the name in lowercase with hyphens.' }),
    description: t.string(),
    teamIds: t.idList({ description: 'Teams to provision the gateway to at once (needs gateways.manage_access).' }),
  }),
});
const UpdateGatewayInput = builder.inputType('UpdateGatewayInput', {
  fields: (t) => ({ name: t.string(), slug: t.string(), description: t.string() }),
});
const AssignServerInput = builder.inputType('AssignServerInput', {
  fields: (t) => ({
    gatewayId: t.id({ required: true }),
    serverId: t.id({ description: 'Give exactly one of serverId and containerId.' }),
    containerId: t.id(),
    identityScheme: t.field({ type: IdentitySchemeEnum, defaultValue: 'shared' }),
    namespacePrefix: t.string({ defaultValue: '' }),
  }),
});
const UpdateAssignmentInput = builder.inputType('UpdateAssignmentInput', {
  fields: (t) => ({ identityScheme: t.field({ type: IdentitySchemeEnum }), namespacePrefix: t.string() }),
});
const SetProvisioningInput = builder.inputType('SetProvisioningInput', {
  fields: (t) => ({
    featureType: t.field({ type: FeatureTypeEnum, required: true }),
    mode: t.field({ type: SettableModeEnum, required: true }),
    selected: t.stringList({ description: 'Upstream names (resource URIs, URI templates) for ALLOW_SELECTED.' }),
  }),
});
const FieldOverrideInput = builder.inputType('MetadataFieldOverrideInput', {
  fields: (t) => ({
    action: t.field({ type: OverrideActionEnum, required: true }),
    value: t.field({ type: 'JSONObject', description: 'For REPLACE: `{ "value": <string or object> }`.' }),
  }),
});
const SetMetadataOverrideInput = builder.inputType('SetMetadataOverrideInput', {
  fields: (t) => ({
    featureType: t.field({ type: FeatureTypeEnum, required: true }),
    name: t.string({ required: true, description: 'The upstream name of the feature.' }),
    title: t.field({ type: FieldOverrideInput }),
    description: t.field({ type: FieldOverrideInput }),
    annotations: t.field({ type: FieldOverrideInput }),
  }),
});
const PinFeatureInput = builder.inputType('PinFeatureInput', {
  fields: (t) => ({
    featureType: t.field({ type: FeatureTypeEnum, required: true }),
    name: t.string({ required: true }),
    serverId: t.id({ description: 'Needed for a container assignment whose servers share the name.' }),
  }),
});

const overrideField = (o: { action: string; value?: Record<string, unknown> | null } | null | undefined) =>
  o ? (o.action === 'replace' ? { action: 'replace', value: o.value?.value } : { action: o.action }) : undefined;

const gatewayMutation = <Name extends string>(name: Name) => ({ types: [...COMMON_ERRORS], dataField: { name } });

builder.mutationFields((t) => ({
  createGateway: t.field({
    type: Gateway,
    errors: gatewayMutation('gateway'),
    args: { input: t.arg({ type: CreateGatewayInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.gateways.create(ctx.viewer, { ...stripNulls(input), teamIds: decodeIds('Team', input.teamIds ?? [], 'input.teamIds') }),
  }),
  updateGateway: t.field({
    type: Gateway,
    errors: gatewayMutation('gateway'),
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateGatewayInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.gateways.update(ctx.viewer, decodeIdOf('Gateway', String(id), 'id'), stripNulls(input)),
  }),
  setGatewayDisabled: t.field({
    type: Gateway,
    description: 'Kill switch: a disabled gateway refuses every call in every data plane.',
    errors: gatewayMutation('gateway'),
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) => ctx.services.gateways.setDisabled(ctx.viewer, decodeIdOf('Gateway', String(id), 'id'), disabled),
  }),
  archiveGateway: t.field({
    type: Gateway,
    description: 'Soft delete: refuses calls, keeps history and logs; the slug stays reserved.',
    errors: gatewayMutation('gateway'),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.gateways.setArchived(ctx.viewer, decodeIdOf('Gateway', String(id), 'id'), true),
  }),
  restoreGateway: t.field({
    type: Gateway,
    errors: gatewayMutation('gateway'),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.gateways.setArchived(ctx.viewer, decodeIdOf('Gateway', String(id), 'id'), false),
  }),
  provisionGatewayToTeams: t.field({
    type: Gateway,
    errors: gatewayMutation('gateway'),
    args: { gatewayId: t.arg.id({ required: true }), teamIds: t.arg.idList({ required: true }) },
    resolve: (_r, { gatewayId, teamIds }, ctx) =>
      ctx.services.gateways.setTeams(ctx.viewer, decodeIdOf('Gateway', String(gatewayId), 'gatewayId'), decodeIds('Team', teamIds, 'teamIds'), true),
  }),
  unprovisionGatewayFromTeams: t.field({
    type: Gateway,
    errors: gatewayMutation('gateway'),
    args: { gatewayId: t.arg.id({ required: true }), teamIds: t.arg.idList({ required: true }) },
    resolve: (_r, { gatewayId, teamIds }, ctx) =>
      ctx.services.gateways.setTeams(ctx.viewer, decodeIdOf('Gateway', String(gatewayId), 'gatewayId'), decodeIds('Team', teamIds, 'teamIds'), false),
  }),
  assignServer: t.field({
    type: Assignment,
    description: 'Places a server or container on a gateway. It exposes nothing until provisioning is set.',
    errors: gatewayMutation('assignment'),
    args: { input: t.arg({ type: AssignServerInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.assignments.assign(ctx.viewer, {
        ...stripNulls(input),
        gatewayId: decodeIdOf('Gateway', String(input.gatewayId), 'input.gatewayId'),
        ...(input.serverId != null && { serverId: decodeIdOf('Server', String(input.serverId), 'input.serverId') }),
        ...(input.containerId != null && { containerId: decodeIdOf('ServerContainer', String(input.containerId), 'input.containerId') }),
      }),
  }),
  updateAssignment: t.field({
    type: Assignment,
    errors: gatewayMutation('assignment'),
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateAssignmentInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.assignments.update(ctx.viewer, decodeIdOf('Assignment', String(id), 'id'), stripNulls(input)),
  }),
  setAssignmentDisabled: t.field({
    type: Assignment,
    errors: gatewayMutation('assignment'),
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) => ctx.services.assignments.setDisabled(ctx.viewer, decodeIdOf('Assignment', String(id), 'id'), disabled),
  }),
  removeAssignment: t.field({
    type: 'ID',
    errors: gatewayMutation('removedAssignmentId'),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.assignments.remove(ctx.viewer, decodeIdOf('Assignment', String(id), 'id'));
      return String(id);
    },
  }),
  setProvisioning: t.field({
    type: Assignment,
    description: 'Chooses which features of one type the assignment exposes.',
    errors: gatewayMutation('assignment'),
    args: { assignmentId: t.arg.id({ required: true }), input: t.arg({ type: SetProvisioningInput, required: true }) },
    resolve: (_r, { assignmentId, input }, ctx) =>
      ctx.services.assignments.setProvisioning(ctx.viewer, decodeIdOf('Assignment', String(assignmentId), 'assignmentId'), stripNulls(input)),
  }),
  setMetadataOverride: t.field({
    type: Assignment,
    description: 'Overrides or strips a feature’s title, description or annotations as sent to clients; all KEEP clears it.',
    errors: gatewayMutation('assignment'),
    args: { assignmentId: t.arg.id({ required: true }), input: t.arg({ type: SetMetadataOverrideInput, required: true }) },
    resolve: (_r, { assignmentId, input }, ctx) =>
      ctx.services.assignments.setMetadataOverride(ctx.viewer, decodeIdOf('Assignment', String(assignmentId), 'assignmentId'), {
        featureType: input.featureType,
        name: input.name,
        ...(input.title && { title: overrideField(input.title) }),
        ...(input.description && { description: overrideField(input.description) }),
        ...(input.annotations && { annotations: overrideField(input.annotations) }),
      }),
  }),
  pinFeature: t.field({
    type: FeaturePin,
    description: 'Pins a feature to its current definition. Pinning a CHANGED feature again approves the new definition.',
    errors: gatewayMutation('pin'),
    args: { assignmentId: t.arg.id({ required: true }), input: t.arg({ type: PinFeatureInput, required: true }) },
    resolve: (_r, { assignmentId, input }, ctx) =>
      ctx.services.assignments.pin(ctx.viewer, decodeIdOf('Assignment', String(assignmentId), 'assignmentId'), {
        ...stripNulls(input),
        ...(input.serverId != null && { serverId: decodeIdOf('Server', String(input.serverId), 'input.serverId') }),
      }),
  }),
  unpinFeature: t.field({
    type: Assignment,
    errors: gatewayMutation('assignment'),
    args: { assignmentId: t.arg.id({ required: true }), input: t.arg({ type: PinFeatureInput, required: true }) },
    resolve: (_r, { assignmentId, input }, ctx) =>
      ctx.services.assignments.unpin(ctx.viewer, decodeIdOf('Assignment', String(assignmentId), 'assignmentId'), {
        ...stripNulls(input),
        ...(input.serverId != null && { serverId: decodeIdOf('Server', String(input.serverId), 'input.serverId') }),
      }),
  }),
}));
