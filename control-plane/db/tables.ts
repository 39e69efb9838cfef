import type { ApiKeyTable } from '../api-keys/api-key.table.js';
import type { RoleCapabilityTable, RoleTable, TeamMemberTable, TeamTable } from '../access/access.table.js';
import type { UserTable } from '../people/user.table.js';
import type { WorkspaceEventTable, WorkspaceTable } from '../workspaces/workspace.table.js';

/** Every table of the control plane, as Kysely sees it. Each aggregate owns its table types. */
export interface DB {
  workspaces: WorkspaceTable;
  workspace_events: WorkspaceEventTable;
  users: UserTable;
  roles: RoleTable;
  role_capabilities: RoleCapabilityTable;
  teams: TeamTable;
  team_members: TeamMemberTable;
  api_keys: ApiKeyTable;
}
