import { GatewayAccessRequestService } from './access-requests/access-request.service.js';
import { RoleService } from './access/role.service.js';
import { AlertService } from './alerts/alert.service.js';
import { wireAuditAlerts } from './alerts/audit-alerts.js';
import { TeamService } from './access/team.service.js';
import { ApiKeyService } from './api-keys/api-key.service.js';
import { AuditExportService } from './audit/audit-export.service.js';
import { AuditIngestService } from './audit/audit-ingest.service.js';
import { AuditStore } from './audit/audit-store.js';
import { AuditLogService } from './audit/audit-log.service.js';
import { AuditReportService } from './audit/audit-report.service.js';
import { LogExporterService } from './audit/otlp-exporter.service.js';
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
import { ThreatService } from './servers/threats/threat.service.js';
import { RuleEngineService } from './rules/rule-engine.service.js';
import { RuleService } from './rules/rule.service.js';
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
  /** Tool poisoning and anti-mimicry verdicts, and their approvals. */
  readonly threats: ThreatService;
  readonly gateways: GatewayService;
  readonly assignments: AssignmentService;
  /** Compiles and publishes snapshots; `start()` it once the process is up. */
  readonly snapshots: SnapshotPublisher;
  readonly dataPlanes: DataPlaneService;
  /** [audit] Writes of `audit_entries`: idempotent inserts, day partitions, retention. */
  readonly auditStore: AuditStore;
  /** [audit] Validates and stores data planes' batches (`POST /ingest/audit`); `onPolicyAlert` for alerts. */
  readonly auditIngest: AuditIngestService;
  /** The audit trail's read side: logs, reports, CSV/JSON export, OTLP exporters (`start()` the exporters once up). */
  readonly auditLogs: AuditLogService;
  readonly auditReports: AuditReportService;
  readonly auditExport: AuditExportService;
  readonly logExporters: LogExporterService;
  /** Raises, folds, stores and pushes alerts; other services raise through it. */
  readonly alerts: AlertService;
  readonly accessRequests: GatewayAccessRequestService;
  /** Gateway content rules and gateway audit settings. */
  readonly rules: RuleService;
  /** Custom rule engines. */
  readonly ruleEngines: RuleEngineService;
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
  /** Identical alerts this close together fold into one, in ms. Default 600000. */
  readonly alertFoldWindowMs?: number;
}

export function createServices(database: Database, events: EventBus, vault: Vault, options: ServiceOptions = {}): Services {
  const alerts = new AlertService(database, events, {
    ...(options.alertFoldWindowMs !== undefined && { foldWindowMs: options.alertFoldWindowMs }),
    ...(options.logger && { logger: options.logger }),
  });
  const roles = new RoleService(database);
  const threats = new ThreatService(database, { alerts });
  const servers = new ServerService(database, vault, threats);
  const auditStore = new AuditStore(database, { ...(options.logger && { logger: options.logger }) });
  const auditIngest = new AuditIngestService(auditStore, options.logger);
  wireAuditAlerts(auditIngest, alerts, options.logger);
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
      alerts,
      threats,
    }),
    threats,
    gateways: new GatewayService(database),
    assignments: new AssignmentService(database, { alerts }),
    snapshots,
    dataPlanes: new DataPlaneService(database, vault, snapshots, { alerts }),
    auditStore,
    auditIngest,
    auditLogs: new AuditLogService(database),
    auditReports: new AuditReportService(database),
    auditExport: new AuditExportService(database, vault),
    logExporters: new LogExporterService(database, vault, { ...(options.logger && { logger: options.logger }) }),
    alerts,
    accessRequests: new GatewayAccessRequestService(database, alerts),
    rules: new RuleService(database, vault),
    ruleEngines: new RuleEngineService(database, vault),
    dataPlanePublicUrl: options.dataPlanePublicUrl ?? 'http://localhost:4001',
  };
}
