import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { requireCapability } from '../access/viewer.js';
import type { WorkspaceEvent } from '../events/workspace-events.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { stripNulls } from '../graphql/global-id.js';
import { WorkspaceRef } from '../graphql/refs.js';
import { DATE_FORMATS, TIME_FORMATS } from './workspace.service.js';

const DateFormat = builder.enumType('DateFormat', { values: DATE_FORMATS });
const TimeFormat = builder.enumType('TimeFormat', { values: TIME_FORMATS });

export const Workspace = builder.node(WorkspaceRef, {
  description: 'The tenant. Everything else belongs to exactly one workspace.',
  id: { resolve: (w) => w.id },
  loadOne: (id, ctx) => (id === ctx.viewer.workspaceId ? ctx.services.workspaces.get(ctx.viewer) : null),
  fields: (t) => ({
    name: t.exposeString('name'),
    dateFormat: t.field({ type: DateFormat, resolve: (w) => w.date_format as (typeof DATE_FORMATS)[number] }),
    timeFormat: t.field({ type: TimeFormat, resolve: (w) => w.time_format as (typeof TIME_FORMATS)[number] }),
    disabled: t.exposeBoolean('disabled', { description: 'Kill switch: every data plane refuses every call of a disabled workspace.' }),
    createdAt: t.field({ type: 'DateTime', resolve: (w) => w.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (w) => w.updated_at }),
  }),
});

export const WorkspaceEventType = builder.objectRef<WorkspaceEvent>('WorkspaceEvent').implement({
  description: 'One committed change in the workspace: what, to which object, by whom.',
  fields: (t) => ({
    id: t.exposeID('id'),
    sequence: t.exposeString('seq', { description: 'Increases with every event; use it to resume.' }),
    type: t.exposeString('type', { description: 'E.g. `user.invited`, `role.updated`, `team.members_added`.' }),
    subjectType: t.exposeString('subjectType'),
    subjectId: t.exposeString('subjectId', { description: 'Database id of the subject.' }),
    actor: t.exposeString('actor', { description: '`api_key:<id>` or `system`.' }),
    details: t.field({ type: 'JSONObject', resolve: (e) => e.details }),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.createdAt }),
  }),
});

const Viewer = builder
  .objectRef<{ workspaceId: string; actor: string; capabilities: ReadonlySet<string> }>('Viewer')
  .implement({
    description: 'The caller, as the API sees it.',
    fields: (t) => ({
      actor: t.exposeString('actor'),
      capabilities: t.stringList({
        description: 'Capabilities of the caller’s role.',
        resolve: (v) => [...v.capabilities].sort(),
      }),
      workspace: t.field({ type: Workspace, resolve: (_v, _a, ctx) => ctx.services.workspaces.get(ctx.viewer) }),
    }),
  });

builder.queryFields((t) => ({
  viewer: t.field({ type: Viewer, resolve: (_r, _a, ctx) => ctx.viewer }),
  workspace: t.field({
    type: Workspace,
    resolve: (_r, _a, ctx) => ctx.services.workspaces.get(ctx.viewer),
  }),
  workspaceEvents: t.connection({
    type: WorkspaceEventType,
    description: 'The change log, newest first.',
    authScopes: { capability: 'logging.view' },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.workspaces.events(ctx.viewer, page)),
  }),
}));

const UpdateWorkspaceSettingsInput = builder.inputType('UpdateWorkspaceSettingsInput', {
  fields: (t) => ({
    name: t.string(),
    dateFormat: t.field({ type: DateFormat }),
    timeFormat: t.field({ type: TimeFormat }),
  }),
});

builder.mutationFields((t) => ({
  updateWorkspaceSettings: t.field({
    type: Workspace,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'workspace' } },
    args: { input: t.arg({ type: UpdateWorkspaceSettingsInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.workspaces.updateSettings(ctx.viewer, stripNulls(input)),
  }),
  setWorkspaceDisabled: t.field({
    type: Workspace,
    description: 'Disables (kill switch) or re-enables the whole workspace in every data plane.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'workspace' } },
    args: { disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { disabled }, ctx) => ctx.services.workspaces.setDisabled(ctx.viewer, disabled),
  }),
}));

builder.subscriptionFields((t) => ({
  workspaceEvents: t.field({
    type: WorkspaceEventType,
    description: 'Every change committed in the workspace from now on, from any control-plane process.',
    authScopes: { capability: 'logging.view' },
    subscribe: (_r, _a, ctx) => {
      requireCapability(ctx.viewer, 'logging.view');
      return ctx.services.events.subscribe(ctx.viewer.workspaceId);
    },
    resolve: (event) => event,
  }),
}));
