import DataLoader from 'dataloader';
import type { RoleRow, TeamRow } from '../access/access.table.js';
import type { Viewer } from '../access/viewer.js';
import type { Logger } from '../logger.js';
import type { UserRow } from '../people/user.table.js';
import type { Services } from '../services.js';

/** Per-request loaders: every relation resolves in one statement per level, whatever the row count. */
export interface Loaders {
  readonly role: DataLoader<string, RoleRow | null>;
  readonly user: DataLoader<string, UserRow | null>;
  readonly team: DataLoader<string, TeamRow | null>;
  readonly roleCapabilities: DataLoader<string, string[]>;
  readonly roleUserCount: DataLoader<string, number>;
  readonly userTeams: DataLoader<string, TeamRow[]>;
  readonly teamMembers: DataLoader<string, UserRow[]>;
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
  };
}
