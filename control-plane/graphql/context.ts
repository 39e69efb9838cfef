import DataLoader from 'dataloader';
import type { RoleRow, TeamRow } from '../access/access.table.js';
import type { Viewer } from '../access/viewer.js';
import type { PinView } from '../gateways/assignment.service.js';
import type { AssignmentRow, GatewayRow } from '../gateways/gateway.table.js';
import type { AccessTokenRow, ConnectionRow, HostRow } from '../hosts/host.table.js';
import type { IdentityRow } from '../identities/identity.table.js';
import type { Logger } from '../logger.js';
import type { UserRow } from '../people/user.table.js';
import type { RuleEngineRow, RuleRow } from '../rules/rule.table.js';
import type { ServerContainerRow, ServerFeatureRow, ServerRow } from '../servers/server.table.js';
import type { Services } from '../services.js';

/** Per-request loaders: every relation resolves in one statement per level, whatever the row count. */
export interface Loaders {
  readonly role: DataLoader<string, RoleRow | null>;
  readonly gateway: DataLoader<string, GatewayRow | null>;
  readonly gatewayTeamIds: DataLoader<string, string[]>;
  readonly gatewayAssignments: DataLoader<string, AssignmentRow[]>;
  readonly assignment: DataLoader<string, AssignmentRow | null>;
  readonly assignmentPins: DataLoader<string, PinView[]>;
  readonly user: DataLoader<string, UserRow | null>;
  readonly team: DataLoader<string, TeamRow | null>;
  readonly roleCapabilities: DataLoader<string, string[]>;
  readonly roleUserCount: DataLoader<string, number>;
  readonly userTeams: DataLoader<string, TeamRow[]>;
  readonly teamMembers: DataLoader<string, UserRow[]>;
  readonly server: DataLoader<string, ServerRow | null>;
  readonly serverContainer: DataLoader<string, ServerContainerRow | null>;
  /** Every stored feature of a server, ordered by kind then name. */
  readonly serverFeatures: DataLoader<string, ServerFeatureRow[]>;
  readonly serverContainers: DataLoader<string, ServerContainerRow[]>;
  readonly containerServers: DataLoader<string, ServerRow[]>;
  readonly host: DataLoader<string, HostRow | null>;
  readonly connection: DataLoader<string, ConnectionRow | null>;
  readonly accessToken: DataLoader<string, AccessTokenRow | null>;
  readonly hostConnections: DataLoader<string, ConnectionRow[]>;
  /** Every token of a connection, revoked ones included. */
  readonly connectionAccessTokens: DataLoader<string, AccessTokenRow[]>;
  readonly identity: DataLoader<string, IdentityRow | null>;
  /** Keyed by server id: the server's shared identity, or null when it has no header auth. */
  readonly sharedIdentity: DataLoader<string, IdentityRow | null>;
  readonly rule: DataLoader<string, RuleRow | null>;
  /** A gateway's rules in evaluation order. */
  readonly gatewayRules: DataLoader<string, RuleRow[]>;
  readonly ruleEngine: DataLoader<string, RuleEngineRow | null>;
}

export interface Context {
  readonly viewer: Viewer;
  readonly services: Services;
  readonly loaders: Loaders;
  readonly requestId: string;
  readonly logger: Logger;
}

const byId = <T extends { id: string }>(ids: readonly string[], rows: readonly T[]): (T | null)[] => {
  const map = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => map.get(id) ?? null);
};

export function createLoaders(services: Services, workspaceId: string): Loaders {
  return {
    role: new DataLoader(async (ids) => byId(ids, await services.roles.byIds(workspaceId, ids))),
    gateway: new DataLoader(async (ids) => byId(ids, await services.gateways.byIds(workspaceId, ids))),
    gatewayTeamIds: new DataLoader(async (ids) => {
      const map = await services.gateways.teamIdsByGatewayIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    gatewayAssignments: new DataLoader(async (ids) => {
      const map = await services.assignments.byGatewayIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    assignment: new DataLoader(async (ids) => byId(ids, await services.assignments.byIds(workspaceId, ids))),
    assignmentPins: new DataLoader(async (ids) => {
      const map = await services.assignments.pinsOf(services.database.db, workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    user: new DataLoader(async (ids) => byId(ids, await services.users.byIds(workspaceId, ids))),
    team: new DataLoader(async (ids) => byId(ids, await services.teams.byIds(workspaceId, ids))),
    roleCapabilities: new DataLoader(async (ids) => {
      const map = await services.roles.capabilitiesByRoleIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    roleUserCount: new DataLoader(async (ids) => {
      const map = await services.users.countByRoleIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? 0);
    }),
    userTeams: new DataLoader(async (ids) => {
      const map = await services.teams.teamsByUserIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    teamMembers: new DataLoader(async (ids) => {
      const map = await services.teams.membersByTeamIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    server: new DataLoader(async (ids) => byId(ids, await services.servers.byIds(workspaceId, ids))),
    serverContainer: new DataLoader(async (ids) => byId(ids, await services.servers.containersByIds(workspaceId, ids))),
    serverFeatures: new DataLoader(async (ids) => {
      const map = await services.discovery.featuresByServerIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    serverContainers: new DataLoader(async (ids) => {
      const map = await services.servers.containersByServerIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    containerServers: new DataLoader(async (ids) => {
      const map = await services.servers.serversByContainerIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    host: new DataLoader(async (ids) => byId(ids, await services.hosts.byIds(workspaceId, ids))),
    connection: new DataLoader(async (ids) => byId(ids, await services.hosts.connectionsByIds(workspaceId, ids))),
    accessToken: new DataLoader(async (ids) => byId(ids, await services.hosts.accessTokensByIds(workspaceId, ids))),
    hostConnections: new DataLoader(async (ids) => {
      const map = await services.hosts.connectionsByHostIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    connectionAccessTokens: new DataLoader(async (ids) => {
      const map = await services.hosts.accessTokensByConnectionIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    identity: new DataLoader(async (ids) => byId(ids, await services.identities.byIds(workspaceId, ids))),
    sharedIdentity: new DataLoader(async (ids) => {
      const map = await services.identities.sharedByServerIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? null);
    }),
    rule: new DataLoader(async (ids) => byId(ids, await services.rules.byIds(workspaceId, ids))),
    gatewayRules: new DataLoader(async (ids) => {
      const map = await services.rules.byGatewayIds(workspaceId, ids);
      return ids.map((id) => map.get(id) ?? []);
    }),
    ruleEngine: new DataLoader(async (ids) => byId(ids, await services.ruleEngines.byIds(workspaceId, ids))),
  };
}
