import type { RoleRow, TeamRow } from '../access/access.table.js';
import type { ApiKeyRow } from '../api-keys/api-key.table.js';
import type { AssignmentRow, GatewayRow } from '../gateways/gateway.table.js';
import type { AccessTokenRow, ConnectionRow, HostRow } from '../hosts/host.table.js';
import type { IdentityRow } from '../identities/identity.table.js';
import type { UserRow } from '../people/user.table.js';
import type { ServerContainerRow, ServerFeatureRow, ServerRow } from '../servers/server.table.js';
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
export const ServerRef = builder.objectRef<ServerRow>('Server');
export const ServerContainerRef = builder.objectRef<ServerContainerRow>('ServerContainer');
export const ServerFeatureRef = builder.objectRef<ServerFeatureRow>('ServerFeature');
export const GatewayRef = builder.objectRef<GatewayRow>('Gateway');
export const AssignmentRef = builder.objectRef<AssignmentRow>('Assignment');
export const HostRef = builder.objectRef<HostRow>('Host');
export const ConnectionRef = builder.objectRef<ConnectionRow>('Connection');
export const AccessTokenRef = builder.objectRef<AccessTokenRow>('AccessToken');
export const IdentityRef = builder.objectRef<IdentityRow>('Identity');
