import { resolveArrayConnection, resolveOffsetConnection } from '@pothos/plugin-relay';
import { NotFoundError } from '../errors.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, decodeIds, encodeGlobalId } from '../graphql/global-id.js';
import { ServerContainerRef, ServerFeatureRef, ServerRef } from '../graphql/refs.js';
import type { DiscoveryRunRow, FeatureChange } from './server.table.js';

const ServerKind = builder.enumType('ServerKind', {
  values: {
    REMOTE: { value: 'remote', description: 'An MCP server reached over the network.' },
    MANAGED: { value: 'managed', description: 'A command Gatehouse runs (stdio, or HTTP on a local URL).' },
    WORKSTATION: { value: 'workstation', description: "Runs on a user's machine; reachable once the tunnel lands." },
  } as const,
});

const ServerTransport = builder.enumType('ServerTransport', {
  values: {
    STREAMABLE_HTTP: { value: 'streamable-http' },
    SSE: { value: 'sse', description: 'The legacy HTTP+SSE transport (protocol 2024-11-05).' },
    STDIO: { value: 'stdio' },
    HTTP: { value: 'http', description: 'A managed command serving Streamable HTTP at `url`.' },
    TUNNEL: { value: 'tunnel', description: 'Through the workstation tunnel.' },
  } as const,
});

const RemoteServerTransport = builder.enumType('RemoteServerTransport', {
  values: { STREAMABLE_HTTP: { value: 'streamable-http' }, SSE: { value: 'sse' } } as const,
});

const ManagedServerLaunch = builder.enumType('ManagedServerLaunch', {
  values: {
    STDIO: { value: 'stdio', description: 'Speak MCP over the command’s stdin and stdout.' },
    HTTP: { value: 'http', description: 'The command listens on `url` (Streamable HTTP).' },
  } as const,
});

const ServerAuthKind = builder.enumType('ServerAuthKind', {
  values: {
    NONE: { value: 'none' },
    HEADERS: { value: 'headers', description: 'Custom headers (an API key, a bearer token) stored encrypted.' },
    OAUTH: { value: 'oauth', description: 'Reserved for OAuth to upstreams.' },
  } as const,
});

const ServerAuthInputKind = builder.enumType('ServerAuthInputKind', {
  values: { NONE: { value: 'none' }, HEADERS: { value: 'headers' } } as const,
});

const ServerReviewState = builder.enumType('ServerReviewState', {
  values: { APPROVED: { value: 'approved' }, PENDING_REVIEW: { value: 'pending_review' }, REJECTED: { value: 'rejected' } } as const,
});

export const ServerFeatureKind = builder.enumType('ServerFeatureKind', {
  values: {
    TOOL: { value: 'tool' },
    PROMPT: { value: 'prompt' },
    RESOURCE: { value: 'resource' },
    RESOURCE_TEMPLATE: { value: 'resourceTemplate' },
  } as const,
});

const DiscoveryRunStatus = builder.enumType('DiscoveryRunStatus', {
  values: { OK: { value: 'ok' }, FAILED: { value: 'failed' } } as const,
});

const EnvVar = builder.objectRef<{ name: string; value: string }>('EnvVar').implement({
  description: 'A plain (non-secret) environment variable of a managed server.',
  fields: (t) => ({ name: t.exposeString('name'), value: t.exposeString('value') }),
});

export const ServerFeatureChange = builder.objectRef<FeatureChange>('ServerFeatureChange').implement({
  description: 'A feature added, changed or removed by a discovery, with its definition hash before and after.',
  fields: (t) => ({
    kind: t.field({ type: ServerFeatureKind, resolve: (c) => c.kind }),
    name: t.exposeString('name'),
    oldHash: t.string({ nullable: true, description: 'Null for an added feature.', resolve: (c) => c.oldHash ?? null }),
    newHash: t.string({ nullable: true, description: 'Null for a removed feature.', resolve: (c) => c.newHash ?? null }),
  }),
});

export const ServerFeature = ServerFeatureRef.implement({
  description:
    'A tool, prompt, resource or resource template a server advertised at its last successful discovery. `name` is its wire identity: the tool or prompt name, the resource URI, the template URI template.',
  fields: (t) => ({
    kind: t.field({ type: ServerFeatureKind, resolve: (f) => f.kind }),
    name: t.exposeString('name'),
    title: t.exposeString('title', { nullable: true }),
    description: t.exposeString('description', { nullable: true }),
    definition: t.field({ type: 'JSONObject', description: 'The definition exactly as the server listed it.', resolve: (f) => f.definition }),
    hash: t.exposeString('hash', { description: 'SHA-256 of the pinned fields (name, title, description, schemas): what pins approve.' }),
    server: t.field({
      type: ServerRef,
      resolve: async (f, _a, ctx) => (await ctx.loaders.server.load(f.server_id)) ?? Promise.reject(new NotFoundError('Server', f.server_id)),
    }),
    firstSeenAt: t.field({ type: 'DateTime', resolve: (f) => f.first_seen_at }),
    changedAt: t.field({ type: 'DateTime', description: 'When the hash last changed.', resolve: (f) => f.changed_at }),
  }),
});

export const DiscoveryRun = builder.objectRef<DiscoveryRunRow>('DiscoveryRun').implement({
  description: 'One feature discovery of a server: what it found, or why it failed.',
  fields: (t) => ({
    id: t.id({ resolve: (r) => encodeGlobalId('DiscoveryRun', r.id) }),
    server: t.field({
      type: ServerRef,
      resolve: async (r, _a, ctx) => (await ctx.loaders.server.load(r.server_id)) ?? Promise.reject(new NotFoundError('Server', r.server_id)),
    }),
    status: t.field({ type: DiscoveryRunStatus, resolve: (r) => r.status }),
    errorCode: t.exposeString('error_code', {
      nullable: true,
      description:
        'Why it failed: TIMEOUT, SPAWN_FAILED, CONNECT_FAILED, PROTOCOL_ERROR, SERVER_CRASHED, HTTP_ERROR, NOT_REACHABLE, SECRET_UNAVAILABLE or INTERNAL.',
    }),
    errorMessage: t.exposeString('error_message', { nullable: true }),
    startedAt: t.field({ type: 'DateTime', resolve: (r) => r.started_at }),
    finishedAt: t.field({ type: 'DateTime', resolve: (r) => r.finished_at }),
    featureCount: t.exposeInt('feature_count'),
    serverInfo: t.field({
      type: 'JSONObject',
      nullable: true,
      description: 'The server’s `serverInfo`, protocol version, capabilities and instructions, as it announced them.',
      resolve: (r) => r.server_info,
    }),
    added: t.field({ type: [ServerFeatureChange], resolve: (r) => r.added }),
    changed: t.field({ type: [ServerFeatureChange], resolve: (r) => r.changed }),
    removed: t.field({ type: [ServerFeatureChange], resolve: (r) => r.removed }),
  }),
});

export const Server = builder.node(ServerRef, {
  description: 'An upstream MCP server definition. Secret values (auth headers, secret env) are write-only.',
  authScopes: { capability: 'servers.view' },
  id: { resolve: (s) => s.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.server.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    kind: t.field({ type: ServerKind, resolve: (s) => s.kind }),
    transport: t.field({ type: ServerTransport, resolve: (s) => s.transport }),
    url: t.exposeString('url', { nullable: true }),
    allowInsecure: t.exposeBoolean('allow_insecure', { description: 'Plain http to a non-loopback host was explicitly allowed.' }),
    command: t.exposeString('command', { nullable: true }),
    args: t.exposeStringList('args'),
    env: t.field({
      type: [EnvVar],
      description: 'Plain environment variables. Secret ones are listed by name only, in `secretEnvNames`.',
      resolve: (s) => Object.entries(s.env).map(([name, value]) => ({ name, value })),
    }),
    secretEnvNames: t.stringList({ resolve: (s) => Object.keys(s.secret_env).sort() }),
    cwd: t.exposeString('cwd', { nullable: true }),
    authKind: t.field({ type: ServerAuthKind, resolve: (s) => s.auth_kind }),
    authHeaderNames: t.stringList({ description: 'Names of the encrypted auth headers; values are never shown.', resolve: (s) => Object.keys(s.auth_headers).sort() }),
    disabled: t.exposeBoolean('disabled', { description: 'Kill switch: a disabled server is withheld from every gateway.' }),
    reviewState: t.field({ type: ServerReviewState, resolve: (s) => s.review_state }),
    reviewReason: t.exposeString('review_reason', { nullable: true }),
    lastDiscoveryAt: t.field({ type: 'DateTime', nullable: true, resolve: (s) => s.last_discovery_at }),
    lastDiscoveryStatus: t.field({ type: DiscoveryRunStatus, nullable: true, resolve: (s) => s.last_discovery_status }),
    lastDiscoveryError: t.exposeString('last_discovery_error', { nullable: true }),
    features: t.connection({
      type: ServerFeature,
      description: 'What the last successful discovery found, ordered by kind then name.',
      args: { kind: t.arg({ type: ServerFeatureKind }) },
      resolve: async (s, args, ctx) => {
        const all = await ctx.loaders.serverFeatures.load(s.id);
        return resolveArrayConnection({ args }, args.kind ? all.filter((f) => f.kind === args.kind) : all);
      },
    }),
    discoveryRuns: t.connection({
      type: DiscoveryRun,
      description: 'Discovery history, newest first.',
      resolve: (s, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.discovery.listRuns(ctx.viewer, s.id, page)),
    }),
    containers: t.connection({
      type: ServerContainerRef,
      resolve: async (s, args, ctx) => resolveArrayConnection({ args }, await ctx.loaders.serverContainers.load(s.id)),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (s) => s.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (s) => s.updated_at }),
  }),
});

export const ServerContainer = builder.node(ServerContainerRef, {
  description: 'Several servers grouped into one unit that is assigned and disabled together.',
  authScopes: { capability: 'servers.view' },
  id: { resolve: (c) => c.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.serverContainer.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    disabled: t.exposeBoolean('disabled', { description: 'Kill switch for every server in the container, on every gateway.' }),
    servers: t.connection({
      type: Server,
      resolve: async (c, args, ctx) => resolveArrayConnection({ args }, await ctx.loaders.containerServers.load(c.id)),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (c) => c.updated_at }),
  }),
});

builder.queryFields((t) => ({
  servers: t.connection({
    type: Server,
    authScopes: { capability: 'servers.view' },
    resolve: (_r, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.servers.list(ctx.viewer, page)),
  }),
  server: t.field({
    type: Server,
    nullable: true,
    authScopes: { capability: 'servers.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.servers.get(ctx.viewer, decodeIdOf('Server', String(id), 'id')),
  }),
  serverContainers: t.connection({
    type: ServerContainer,
    authScopes: { capability: 'servers.view' },
    resolve: (_r, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.servers.listContainers(ctx.viewer, page)),
  }),
  serverContainer: t.field({
    type: ServerContainer,
    nullable: true,
    authScopes: { capability: 'servers.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.servers.getContainer(ctx.viewer, decodeIdOf('ServerContainer', String(id), 'id')),
  }),
}));

const EnvVarInput = builder.inputType('EnvVarInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    value: t.string({ required: true }),
    secret: t.boolean({ defaultValue: false, description: 'Stored encrypted and never shown again. Required for anything that looks like a credential.' }),
  }),
});
const ServerHeaderInput = builder.inputType('ServerHeaderInput', {
  fields: (t) => ({ name: t.string({ required: true }), value: t.string({ required: true, description: 'Stored encrypted; never shown again.' }) }),
});
const ServerAuthInput = builder.inputType('ServerAuthInput', {
  description: 'How Gatehouse authenticates to the upstream. Replaces the whole auth configuration when given.',
  fields: (t) => ({
    kind: t.field({ type: ServerAuthInputKind, required: true }),
    headers: t.field({ type: [ServerHeaderInput], description: 'For HEADERS: at least one.' }),
  }),
});
const RemoteServerInput = builder.inputType('RemoteServerInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: 'https://, or http:// on loopback (or anywhere with allowInsecure).' }),
    transport: t.field({ type: RemoteServerTransport, defaultValue: 'streamable-http' }),
    allowInsecure: t.boolean({ defaultValue: false, description: 'Allow plain http to a non-loopback host.' }),
  }),
});
const ManagedServerInput = builder.inputType('ManagedServerInput', {
  description: 'A command Gatehouse runs. Replaces the whole launch configuration (secret env values included) when given.',
  fields: (t) => ({
    launch: t.field({ type: ManagedServerLaunch, required: true }),
    command: t.string({ required: true, description: 'An executable: absolute, relative to cwd, or on PATH.' }),
    args: t.stringList(),
    env: t.field({ type: [EnvVarInput] }),
    cwd: t.string(),
    url: t.string({ description: 'For HTTP: the URL the command listens on.' }),
  }),
});
const CreateServerInput = builder.inputType('CreateServerInput', {
  description: 'Give exactly one of remote, managed or workstation.',
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    remote: t.field({ type: RemoteServerInput }),
    managed: t.field({ type: ManagedServerInput }),
    workstation: t.boolean({ description: 'True for a workstation server (modelled now; reachable once the tunnel lands).' }),
    auth: t.field({ type: ServerAuthInput }),
  }),
});
const UpdateServerInput = builder.inputType('UpdateServerInput', {
  description: 'Only the fields given change. remote and managed must match the server’s kind.',
  fields: (t) => ({
    name: t.string(),
    description: t.string(),
    remote: t.field({ type: RemoteServerInput }),
    managed: t.field({ type: ManagedServerInput }),
    auth: t.field({ type: ServerAuthInput }),
  }),
});
const CreateServerContainerInput = builder.inputType('CreateServerContainerInput', {
  fields: (t) => ({ name: t.string({ required: true }), description: t.string() }),
});
const UpdateServerContainerInput = builder.inputType('UpdateServerContainerInput', {
  fields: (t) => ({ name: t.string(), description: t.string() }),
});

/** GraphQL passes omitted optional fields as null at every depth; the zod schemas expect them absent. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

const serverId = (id: string | number, field = 'id') => decodeIdOf('Server', String(id), field);
const containerId = (id: string | number, field = 'id') => decodeIdOf('ServerContainer', String(id), field);

builder.mutationFields((t) => ({
  createServer: t.field({
    type: Server,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'server' } },
    args: { input: t.arg({ type: CreateServerInput, required: true }) },
    resolve: (_r, { input }, ctx) => {
      const { workstation, ...rest } = withoutNulls(input) as Record<string, unknown>;
      return ctx.services.servers.create(ctx.viewer, { ...rest, ...(workstation === true && { workstation: {} }) });
    },
  }),
  updateServer: t.field({
    type: Server,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'server' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateServerInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.servers.update(ctx.viewer, serverId(id), withoutNulls(input)),
  }),
  setServerDisabled: t.field({
    type: Server,
    description: 'Disables (kill switch) or re-enables a server on every gateway it is assigned to.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'server' } },
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) => ctx.services.servers.setDisabled(ctx.viewer, serverId(id), disabled),
  }),
  deleteServer: t.field({
    type: 'ID',
    description: 'Deletes a server with its features and discovery history. Refused while it is assigned.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'deletedServerId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.servers.delete(ctx.viewer, serverId(id));
      return String(id);
    },
  }),
  discoverServer: t.field({
    type: DiscoveryRun,
    description:
      'Connects to the server now and records what it advertises. A server that cannot be discovered is not an error of this mutation: the run comes back with status FAILED and an errorCode.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'run' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.discovery.discover(ctx.viewer, serverId(id)),
  }),
  createServerContainer: t.field({
    type: ServerContainer,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'container' } },
    args: { input: t.arg({ type: CreateServerContainerInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.servers.createContainer(ctx.viewer, withoutNulls(input)),
  }),
  updateServerContainer: t.field({
    type: ServerContainer,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'container' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateServerContainerInput, required: true }) },
    resolve: (_r, { id, input }, ctx) => ctx.services.servers.updateContainer(ctx.viewer, containerId(id), withoutNulls(input)),
  }),
  setServerContainerDisabled: t.field({
    type: ServerContainer,
    description: 'Disables (kill switch) or re-enables every server of a container, wherever the container is assigned.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'container' } },
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) => ctx.services.servers.setContainerDisabled(ctx.viewer, containerId(id), disabled),
  }),
  addServersToContainer: t.field({
    type: ServerContainer,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'container' } },
    args: { containerId: t.arg.id({ required: true }), serverIds: t.arg.idList({ required: true }) },
    resolve: (_r, args, ctx) =>
      ctx.services.servers.setContainerMembers(
        ctx.viewer,
        containerId(args.containerId, 'containerId'),
        decodeIds('Server', args.serverIds, 'serverIds'),
        true,
      ),
  }),
  removeServersFromContainer: t.field({
    type: ServerContainer,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'container' } },
    args: { containerId: t.arg.id({ required: true }), serverIds: t.arg.idList({ required: true }) },
    resolve: (_r, args, ctx) =>
      ctx.services.servers.setContainerMembers(
        ctx.viewer,
        containerId(args.containerId, 'containerId'),
        decodeIds('Server', args.serverIds, 'serverIds'),
        false,
      ),
  }),
  deleteServerContainer: t.field({
    type: 'ID',
    description: 'Deletes a container (its servers stay). Refused while it is assigned.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'deletedServerContainerId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.servers.deleteContainer(ctx.viewer, containerId(id));
      return String(id);
    },
  }),
  resealSecrets: t.field({
    type: 'Int',
    description:
      'Re-encrypts every server secret of the workspace under the active vault key (the first in GATEHOUSE_ENCRYPTION_KEY). Returns how many secrets were re-sealed; afterwards older keys can be dropped.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'resealedCount' } },
    resolve: (_r, _a, ctx) => ctx.services.servers.resealSecrets(ctx.viewer),
  }),
}));
