import { RoleService } from './access/role.service.js';
import { TeamService } from './access/team.service.js';
import { ApiKeyService } from './api-keys/api-key.service.js';
import type { Database } from './db/database.js';
import type { EventBus } from './events/event-bus.js';
import type { Vault } from './identities/vault.js';
import { UserService } from './people/user.service.js';
import { ServerService } from './servers/server.service.js';
import { WorkspaceService } from './workspaces/workspace.service.js';

/** The domain services of one control-plane process, built once over one database. */
export interface Services {
  readonly database: Database;
  readonly events: EventBus;
  readonly workspaces: WorkspaceService;
  readonly roles: RoleService;
  readonly teams: TeamService;
  readonly users: UserService;
  readonly apiKeys: ApiKeyService;
  readonly vault: Vault;
  readonly servers: ServerService;
}

export function createServices(database: Database, events: EventBus, vault: Vault): Services {
  const roles = new RoleService(database);
  return {
    database,
    events,
    workspaces: new WorkspaceService(database),
    roles,
    teams: new TeamService(database),
    users: new UserService(database, roles),
    apiKeys: new ApiKeyService(database, roles),
    vault,
    servers: new ServerService(database, vault),
  };
}
