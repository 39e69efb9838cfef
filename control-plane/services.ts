import { RoleService } from './access/role.service.js';
import { TeamService } from './access/team.service.js';
import { ApiKeyService } from './api-keys/api-key.service.js';
import type { Database } from './db/database.js';
import type { EventBus } from './events/event-bus.js';
import { AssignmentService } from './gateways/assignment.service.js';
import { GatewayService } from './gateways/gateway.service.js';
import { HostService } from './hosts/host.service.js';
import { IdentityService } from './identities/identity.service.js';
import type { Vault } from './identities/vault.js';
import type { Logger } from './logger.js';
import { UserService } from './people/user.service.js';
import { DiscoveryService } from './servers/discovery.service.js';
import { ServerService } from './servers/server.service.js';
import { DataPlaneService } from './data-planes/data-plane.service.js';
import { SnapshotPublisher } from './snapshot/publisher.js';
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
  readonly hosts: HostService;
  readonly vault: Vault;
  readonly identities: IdentityService;
  readonly servers: ServerService;
  readonly discovery: DiscoveryService;
  readonly gateways: GatewayService;
  readonly assignments: AssignmentService;
  /** Compiles and publishes snapshots; `start()` it once the process is up. */
  readonly snapshots: SnapshotPublisher;
  readonly dataPlanes: DataPlaneService;
  /** Base URL of data planes, for the gateway URLs shown to users. */
  readonly dataPlanePublicUrl: string;
}

/** Settings services take from the control-plane config. */
export interface ServiceOptions {
  /** Deadline of one feature discovery in ms. Default 15000. */
  readonly discoveryTimeoutMs?: number;
  readonly logger?: Logger;
  /** Base URL MCP clients reach data planes at. Default `http://localhost:4001`. */
  readonly dataPlanePublicUrl?: string;
}

export function createServices(database: Database, events: EventBus, vault: Vault, options: ServiceOptions = {}): Services {
  const roles = new RoleService(database);
  const servers = new ServerService(database, vault);
  const snapshots = new SnapshotPublisher(database, vault, { ...(options.logger && { logger: options.logger }) });
  return {
    database,
    events,
    workspaces: new WorkspaceService(database),
    roles,
    teams: new TeamService(database),
    users: new UserService(database, roles),
    apiKeys: new ApiKeyService(database, roles),
    hosts: new HostService(database),
    vault,
    identities: new IdentityService(database),
    servers,
    discovery: new DiscoveryService(database, servers, {
      ...(options.discoveryTimeoutMs !== undefined && { timeoutMs: options.discoveryTimeoutMs }),
      ...(options.logger && { logger: options.logger }),
    }),
    gateways: new GatewayService(database),
    assignments: new AssignmentService(database),
    snapshots,
    dataPlanes: new DataPlaneService(database, vault, snapshots),
    dataPlanePublicUrl: options.dataPlanePublicUrl ?? 'http://localhost:4001',
  };
}
