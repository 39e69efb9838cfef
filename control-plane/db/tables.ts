import type { GatewayAccessRequestTable } from '../access-requests/access-request.table.js';
import type { AlertTable } from '../alerts/alert.table.js';
import type { ApiKeyTable } from '../api-keys/api-key.table.js';
import type { RoleCapabilityTable, RoleTable, TeamMemberTable, TeamTable } from '../access/access.table.js';
import type { DataPlaneTable } from '../data-planes/data-plane.table.js';
import type { AssignmentPinTable, AssignmentTable, GatewayTable, GatewayTeamTable } from '../gateways/gateway.table.js';
import type { AccessTokenTable, ConnectionTable, HostTable } from '../hosts/host.table.js';
import type { IdentityTable } from '../identities/identity.table.js';
import type { UserTable } from '../people/user.table.js';
import type {
  DiscoveryRunTable,
  ServerContainerMemberTable,
  ServerContainerTable,
  ServerFeatureTable,
  ServerTable,
} from '../servers/server.table.js';
import type { RuleEngineTable, RuleTable } from '../rules/rule.table.js';
import type { SnapshotTable } from '../snapshot/snapshot.table.js';
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
  servers: ServerTable;
  server_containers: ServerContainerTable;
  server_container_members: ServerContainerMemberTable;
  server_features: ServerFeatureTable;
  discovery_runs: DiscoveryRunTable;
  identities: IdentityTable;
  gateways: GatewayTable;
  gateway_teams: GatewayTeamTable;
  assignments: AssignmentTable;
  assignment_pins: AssignmentPinTable;
  hosts: HostTable;
  connections: ConnectionTable;
  access_tokens: AccessTokenTable;
  data_planes: DataPlaneTable;
  snapshots: SnapshotTable;
  alerts: AlertTable;
  gateway_access_requests: GatewayAccessRequestTable;
  rules: RuleTable;
  rule_engines: RuleEngineTable;
}
