/**
 * In-process control planes on a scratch Postgres database, for the benchmarks that
 * measure what crosses control-plane processes (kill-switch propagation, alert delivery):
 * a database created on the server `DATABASE_URL` names, migrated, N control planes each
 * with its own pool and LISTEN connection, and an owner API key; `close()` stops them and
 * drops the database.
 */
import { buildControlPlane, type ControlPlane } from '../../../control-plane/app.js';
import { insertApiKey } from '../../../control-plane/api-keys/api-key.service.js';
import { loadControlPlaneConfig } from '../../../control-plane/config.js';
import { openDatabase, type Database } from '../../../control-plane/db/database.js';
import { migrateToLatest } from '../../../control-plane/db/migrate.js';
import { createLogger } from '../../../control-plane/logger.js';
import { createScratchDatabase } from './scratch-database.js';

export interface ControlPlaneCluster {
  readonly planes: readonly ControlPlane[];
  /** The first plane's database handle. */
  readonly database: Database;
  /** The scratch database's URL. */
  readonly databaseUrl: string;
  readonly workspaceId: string;
  /** An API key of the workspace owner. */
  readonly ownerKey: string;
  /** A GraphQL request to a plane with the owner key; throws on GraphQL errors. */
  gql(plane: ControlPlane, query: string, variables?: Record<string, unknown>): Promise<any>;
  close(): Promise<void>;
}

/** The Postgres server URL from `DATABASE_URL`, or exits with a message (these benchmarks need Postgres). */
export function requirePostgres(): string {
  const base = process.env.DATABASE_URL;
  if (!base) {
    console.error('DATABASE_URL must point at a Postgres server (a scratch database is created and dropped there)');
    process.exit(2);
  }
  return base;
}

export async function startControlPlanes(base: string, count: number): Promise<ControlPlaneCluster> {
  const scratch = await createScratchDatabase(base);
  const databaseUrl = scratch.url;
  const databases: Database[] = [];
  const planes: ControlPlane[] = [];
  const close = async () => {
    for (const plane of planes) await plane.close().catch(() => undefined);
    for (const database of databases) await database.close().catch(() => undefined);
    await scratch.drop();
  };
  try {
    const first = await openDatabase({ databaseUrl });
    databases.push(first);
    await migrateToLatest(first);
    const config = loadControlPlaneConfig({
      GATEHOUSE_CONTROL_PLANE_PORT: '0',
      GATEHOUSE_LOG_LEVEL: 'silent',
      GATEHOUSE_ENCRYPTION_KEY: `bench:${Buffer.alloc(32, 9).toString('base64')}`,
      GATEHOUSE_DISCOVERY_INTERVAL_SECONDS: '0',
      DATABASE_URL: databaseUrl,
    });
    const logger = createLogger('silent');
    for (let i = 0; i < count; i++) {
      const database = i === 0 ? first : await openDatabase({ databaseUrl });
      if (i > 0) databases.push(database);
      const plane = await buildControlPlane(config, { database, logger });
      await plane.listen();
      planes.push(plane);
    }
    const ws = await first.db.selectFrom('workspaces').select('id').executeTakeFirstOrThrow();
    const owner = await first.db.selectFrom('roles').select('id').where('workspace_id', '=', ws.id).where('builtin', '=', 'owner').executeTakeFirstOrThrow();
    const ownerKey = (await first.db.transaction().execute((trx) => insertApiKey(trx, ws.id, owner.id, 'bench', 'bench'))).secret;
    return {
      planes,
      database: first,
      databaseUrl,
      workspaceId: ws.id,
      ownerKey,
      async gql(plane, query, variables = {}) {
        const res = await fetch(`${plane.url()}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerKey}` },
          body: JSON.stringify({ query, variables }),
        });
        const body = (await res.json()) as { data?: any; errors?: unknown };
        if (body.errors) throw new Error(JSON.stringify(body.errors));
        return body.data;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
