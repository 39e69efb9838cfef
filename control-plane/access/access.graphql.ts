import { resolveArrayConnection, resolveOffsetConnection } from '@pothos/plugin-relay';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, decodeIds, stripNulls } from '../graphql/global-id.js';
import { RoleRef, TeamRef, UserRef } from '../graphql/refs.js';
import { CAPABILITY_AREAS, CAPABILITY_CATALOG, findCapability, type CapabilityDefinition } from './capabilities.js';
import { RoleInUseError } from './role.service.js';

const CapabilityArea = builder.enumType('CapabilityArea', { values: CAPABILITY_AREAS });

export const Capability = builder.objectRef<CapabilityDefinition>('Capability').implement({
  description: 'A fine-grained permission. Roles are sets of capabilities.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Stable machine name, e.g. `people.manage`.' }),
    area: t.field({ type: CapabilityArea, resolve: (c) => c.area }),
    description: t.exposeString('description'),
    readOnly: t.exposeBoolean('readOnly', { description: 'True when the capability only reads.' }),
  }),
});

const BuiltinRole = builder.enumType('BuiltinRole', { values: ['OWNER', 'ADMIN', 'MEMBER', 'AUDITOR'] as const });

export const Role = builder.node(RoleRef, {
  description: 'A named set of capabilities. Each user and admin API key acts with exactly one role.',
  authScopes: { capability: 'people.view' },
  id: { resolve: (r) => r.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.role.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    builtin: t.field({
      type: BuiltinRole,
      nullable: true,
      description: 'Which built-in role this is; null for custom roles. Built-in roles cannot be edited or deleted.',
      resolve: (r) => (r.builtin ? (r.builtin.toUpperCase() as 'OWNER') : null),
    }),
    capabilities: t.field({
      type: [Capability],
      resolve: async (r, _a, ctx) =>
        (await ctx.loaders.roleCapabilities.load(r.id)).flatMap((name) => findCapability(name) ?? []),
    }),
    userCount: t.int({ resolve: (r, _a, ctx) => ctx.loaders.roleUserCount.load(r.id) }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (r) => r.updated_at }),
  }),
});

export const Team = builder.node(TeamRef, {
  description: 'A group of users. Gateways are provisioned to teams.',
  authScopes: { capability: 'people.view' },
  id: { resolve: (t) => t.id },
  loadMany: (ids, ctx) => ids.map((id) => ctx.loaders.team.load(id)),
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    disabled: t.exposeBoolean('disabled', { description: 'A disabled team grants nothing but keeps its members.' }),
    members: t.connection({
      type: UserRef,
      resolve: async (team, args, ctx) => resolveArrayConnection({ args }, await ctx.loaders.teamMembers.load(team.id)),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (r) => r.updated_at }),
  }),
});

builder.queryFields((t) => ({
  capabilities: t.field({
    type: [Capability],
    description: 'The fixed catalog of capabilities, optionally of one area.',
    args: { area: t.arg({ type: CapabilityArea, required: false }) },
    resolve: (_r, { area }) => CAPABILITY_CATALOG.filter((c) => !area || c.area === area),
  }),
  roles: t.connection({
    type: Role,
    authScopes: { capability: 'people.view' },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.roles.list(ctx.viewer, page)),
  }),
  role: t.field({
    type: Role,
    nullable: true,
    authScopes: { capability: 'people.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.roles.get(ctx.viewer, decodeIdOf('Role', String(id), 'id')),
  }),
  teams: t.connection({
    type: Team,
    authScopes: { capability: 'people.view' },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.teams.list(ctx.viewer, page)),
  }),
  team: t.field({
    type: Team,
    nullable: true,
    authScopes: { capability: 'people.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.teams.get(ctx.viewer, decodeIdOf('Team', String(id), 'id')),
  }),
}));

const CreateRoleInput = builder.inputType('CreateRoleInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    capabilities: t.stringList({ required: true, description: 'Capability machine names.' }),
  }),
});
const UpdateRoleInput = builder.inputType('UpdateRoleInput', {
  fields: (t) => ({
    name: t.string(),
    description: t.string(),
    capabilities: t.stringList({ description: 'Replaces the whole set when given.' }),
  }),
});
const DuplicateRoleInput = builder.inputType('DuplicateRoleInput', {
  fields: (t) => ({ name: t.string({ description: 'Defaults to "<name> (copy)".' }) }),
});
const CreateTeamInput = builder.inputType('CreateTeamInput', {
  fields: (t) => ({ name: t.string({ required: true }), description: t.string() }),
});
const UpdateTeamInput = builder.inputType('UpdateTeamInput', {
  fields: (t) => ({ name: t.string(), description: t.string() }),
});


builder.mutationFields((t) => ({
  createRole: t.field({
    type: Role,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'role' } },
    args: { input: t.arg({ type: CreateRoleInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.roles.create(ctx.viewer, stripNulls(input)),
  }),
  duplicateRole: t.field({
    type: Role,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'role' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: DuplicateRoleInput }) },
    resolve: (_r, { id, input }, ctx) =>
      ctx.services.roles.duplicate(ctx.viewer, decodeIdOf('Role', String(id), 'id'), stripNulls(input ?? {})),
  }),
  updateRole: t.field({
    type: Role,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'role' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateRoleInput, required: true }) },
    resolve: (_r, { id, input }, ctx) =>
      ctx.services.roles.update(ctx.viewer, decodeIdOf('Role', String(id), 'id'), stripNulls(input)),
  }),
  deleteRole: t.field({
    type: 'ID',
    description: 'Deletes a custom role. Fails with RoleInUseError while users or API keys hold it.',
    errors: { types: [RoleInUseError, ...COMMON_ERRORS], dataField: { name: 'deletedRoleId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.roles.delete(ctx.viewer, decodeIdOf('Role', String(id), 'id'));
      return String(id);
    },
  }),
  createTeam: t.field({
    type: Team,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'team' } },
    args: { input: t.arg({ type: CreateTeamInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.teams.create(ctx.viewer, stripNulls(input)),
  }),
  updateTeam: t.field({
    type: Team,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'team' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateTeamInput, required: true }) },
    resolve: (_r, { id, input }, ctx) =>
      ctx.services.teams.update(ctx.viewer, decodeIdOf('Team', String(id), 'id'), stripNulls(input)),
  }),
  setTeamDisabled: t.field({
    type: Team,
    description: 'Disables (kill switch) or re-enables a team.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'team' } },
    args: { id: t.arg.id({ required: true }), disabled: t.arg.boolean({ required: true }) },
    resolve: (_r, { id, disabled }, ctx) =>
      ctx.services.teams.setDisabled(ctx.viewer, decodeIdOf('Team', String(id), 'id'), disabled),
  }),
  deleteTeam: t.field({
    type: 'ID',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'deletedTeamId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.teams.delete(ctx.viewer, decodeIdOf('Team', String(id), 'id'));
      return String(id);
    },
  }),
  addTeamMembers: t.field({
    type: Team,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'team' } },
    args: { teamId: t.arg.id({ required: true }), userIds: t.arg.idList({ required: true }) },
    resolve: (_r, { teamId, userIds }, ctx) =>
      ctx.services.teams.addMembers(ctx.viewer, decodeIdOf('Team', String(teamId), 'teamId'), decodeIds('User', userIds, 'userIds')),
  }),
  removeTeamMembers: t.field({
    type: Team,
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'team' } },
    args: { teamId: t.arg.id({ required: true }), userIds: t.arg.idList({ required: true }) },
    resolve: (_r, { teamId, userIds }, ctx) =>
      ctx.services.teams.removeMembers(ctx.viewer, decodeIdOf('Team', String(teamId), 'teamId'), decodeIds('User', userIds, 'userIds')),
  }),
}));
