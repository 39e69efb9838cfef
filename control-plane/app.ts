import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { createAuditExportHandler } from './audit/audit-export.http.js';
import { AUDIT_EXPORT_PATH } from './audit/audit-export.service.js';
import type { ControlPlaneConfig } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { EventBus } from './events/event-bus.js';
import { Vault } from './identities/vault.js';
import { GRAPHQL_PATH, createGraphQLHandler } from './graphql/server.js';
import { AUDIT_INGEST_PATH, createAuditIngestHandler } from './audit/audit-ingest.http.js';
import { AuditMaintenance } from './audit/audit-maintenance.js';
import { createLogger, type Logger } from './logger.js';
import { DiscoveryScheduler } from './servers/discovery-scheduler.js';
import { createServices, type Services } from './services.js';
import { bootstrapIfEmpty, type BootstrapResult } from './workspaces/bootstrap.js';

export interface ControlPlaneDeps {
  readonly logger?: Logger;
  /** An already-open database (tests); otherwise one is opened from the config and owned. */
  readonly database?: Database;
}

export interface ControlPlane {
  readonly config: ControlPlaneConfig;
  readonly database: Database;
  readonly services: Services;
  readonly logger: Logger;
  readonly server: Server;
  /** Set when this start created the first workspace and its owner key. */
  readonly bootstrap: BootstrapResult | undefined;
  /** Starts listening; resolves to the base URL (`http://host:port`). */
  listen(): Promise<string>;
  /** Base URL once listening. */
  url(): string;
  close(): Promise<void>;
}

/**
 * Builds the control plane: database, migrations, bootstrap, services, GraphQL over HTTP
 * and graphql-ws, health endpoints. Nothing listens until `listen()`.
 */
export async function buildControlPlane(config: ControlPlaneConfig, deps: ControlPlaneDeps = {}): Promise<ControlPlane> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const database =
    deps.database ?? (await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.databaseUrl ? undefined : `${config.dataDir}/db`, logger }));
  const ownsDatabase = !deps.database;
  try {
    if (config.migrateOnStart) await migrateToLatest(database);
    const bootstrap = await bootstrapIfEmpty(database, {
      adminKey: config.bootstrapAdminKey,
      keyFileDir: database.kind === 'pglite' && !deps.database ? config.dataDir : undefined,
    });
    const { vault, generatedFile } = Vault.fromConfig(config.encryptionKey, config.dataDir);
    if (generatedFile) {
      logger.info({ file: generatedFile }, 'generated a vault key; back it up, secrets cannot be read without it');
      if (database.kind === 'postgres') logger.warn('GATEHOUSE_ENCRYPTION_KEY is unset on Postgres: every control-plane process needs the same key');
    }
    const events = new EventBus(database, logger);
    await events.start();
    const services = createServices(database, events, vault, {
      discoveryTimeoutMs: config.discoveryTimeoutMs,
      logger,
      dataPlanePublicUrl: config.dataPlanePublicUrl,
      alertFoldWindowMs: config.alertFoldWindowSeconds * 1000,
    });
    const discoveryScheduler =
      config.discoveryIntervalSeconds > 0
        ? new DiscoveryScheduler(services.discovery, logger, { intervalMs: config.discoveryIntervalSeconds * 1000 })
        : undefined;
    await services.snapshots.start();
    // [audit] partitions ahead + retention, and the data planes' ingest endpoint.
    const auditMaintenance = new AuditMaintenance(services.auditStore, logger);
    auditMaintenance.start();
    const ingestAudit = createAuditIngestHandler({ dataPlanes: services.dataPlanes, ingest: services.auditIngest, logger });
    const graphql = createGraphQLHandler(config, services, logger);
    const auditExport = createAuditExportHandler(services, logger);

    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const pathname = (req.url ?? '/').split('?', 1)[0];
      if (pathname === '/healthz') return json(res, 200, { status: 'ok' });
      if (pathname === '/readyz') {
        return void sql`SELECT 1`
          .execute(database.db)
          .then(() => json(res, 200, { status: 'ready', database: database.kind }))
          .catch(() => json(res, 503, { status: 'unavailable', database: database.kind }));
      }
      if (pathname === GRAPHQL_PATH) return void graphql.yoga(req, res);
      if (pathname === AUDIT_INGEST_PATH) return void ingestAudit(req, res); // [audit]
      if (pathname === AUDIT_EXPORT_PATH) return void auditExport(req, res);
      json(res, 404, { error: 'not_found', message: `no route for ${pathname}; GraphQL is at ${GRAPHQL_PATH}` });
    });
    const stopWebSockets = graphql.attachWebSockets(server);
    let baseUrl: string | undefined;

    return {
      config,
      database,
      services,
      logger,
      server,
      bootstrap,
      async listen() {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(config.port, config.host, () => {
            server.off('error', reject);
            resolve();
          });
        });
        const { port } = server.address() as AddressInfo;
        const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
        baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
        discoveryScheduler?.start();
        services.auditExport.useBaseUrl(config.publicUrl ?? baseUrl);
        services.logExporters.start();
        return baseUrl;
      },
      url() {
        if (!baseUrl) throw new Error('the control plane is not listening');
        return baseUrl;
      },
      async close() {
        await stopWebSockets();
        await discoveryScheduler?.stop();
        await services.logExporters.stop();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await auditMaintenance.stop(); // [audit]
        await services.snapshots.stop();
        await events.stop();
        if (ownsDatabase) await database.close();
      },
    };
  } catch (err) {
    if (ownsDatabase) await database.close().catch(() => undefined);
    throw err;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
