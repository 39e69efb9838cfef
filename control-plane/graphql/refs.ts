import type { RoleRow, TeamRow } from '../access/access.table.js';
import type { ApiKeyRow } from '../api-keys/api-key.table.js';
import type { UserRow } from '../people/user.table.js';
import type { WorkspaceRow } from '../workspaces/workspace.table.js';
import { builder } from './builder.js';

/**
 * Object references shared across aggregates, declared here so that domain files can
 * point at each other's types without importing each other.
 */
export const RoleRef = builder.objectRef<RoleRow>('Role');
export const TeamRef = builder.objectRef<TeamRow>('Team');
export const UserRef = builder.objectRef<UserRow>('User');
export const ApiKeyRef = builder.objectRef<ApiKeyRow>('ApiKey');
export const WorkspaceRef = builder.objectRef<WorkspaceRow>('Workspace');
