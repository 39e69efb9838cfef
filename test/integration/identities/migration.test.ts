import { randomUUID } from 'node:crypto';
import { Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database } from '../../../control-plane/db/database.js';
import { migrateToLatest } from '../../../control-plane/db/migrate.js';
import { createWorkspace } from '../../../control-plane/workspaces/workspace.service.js';
import { migrations } from '../../../migrations/index.js';

/** 0004 gives every server that already had header auth its shared identity. */

let database: Database;
let dropDatabase: () => Promise<void> = async () => undefined;

beforeAll(async () => {
  const base = process.env.DATABASE_URL;
  if (inject('databaseKind') === 'postgres' && base) {
    const name = `gatehouse_m_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(base);
    url.pathname = `/${name}`;
    database = await openDatabase({ databaseUrl: url.toString() });
    dropDatabase = async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await c.end();
    };
  } else {
    database = await openDatabase({ dataDir: 'memory://' });
  }
});
afterAll(async () => {
  await database?.close();
  await dropDatabase();
});

describe('migration 0004_identities', () => {
  it('creates a shared identity for each server with header auth, and none for the others', async () => {
    const migrator = new Migrator({
      db: database.db,
      provider: { getMigrations: async () => ({ ...migrations }) },
      migrationTableName: 'gatehouse_migrations',
      migrationLockTableName: 'gatehouse_migrations_lock',
    });
    const { error } = await migrator.migrateTo('0003_snapshot_keys');
    expect(error).toBeUndefined();

    const { workspace } = await database.db.transaction().execute((trx) => createWorkspace(trx, 'Before identities'));
    const server = (name: string, authKind: string) => sql`
      INSERT INTO servers (id, workspace_id, name, kind, transport, url, auth_kind, auth_headers)
      VALUES (${randomUUID()}, ${workspace.id}, ${name}, 'remote', 'streamable-http', 'https://mcp.example.com/mcp', ${authKind},
              ${authKind === 'headers' ? '{"Authorization":{"keyId":"k","iv":"i","ciphertext":"c","tag":"t"}}' : '{}'}::jsonb)
      RETURNING id`;
    const withHeaders = (await server('With headers', 'headers').execute(database.db)).rows[0] as { id: string };
    await server('Without auth', 'none').execute(database.db);

    await migrateToLatest(database);
    const rows = await database.db.selectFrom('identities').selectAll().execute();
    expect(rows).toEqual([
      expect.objectContaining({ workspace_id: workspace.id, server_id: withHeaders.id, kind: 'shared', user_id: null, name: 'With headers', disabled: false }),
    ]);
    expect(rows[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('allows one shared identity per server', async () => {
    const [row] = await database.db.selectFrom('identities').selectAll().execute();
    const again = database.db
      .insertInto('identities')
      .values({ id: randomUUID(), workspace_id: row!.workspace_id, server_id: row!.server_id, kind: 'shared', user_id: null, name: 'Second' })
      .execute();
    await expect(again).rejects.toThrow(/identities_shared_uq/);
  });
});
