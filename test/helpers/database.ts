import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../control-plane/db/database.js';

export interface TestDatabase {
  readonly database: Database;
  /** For Postgres: a URL other processes can open. Undefined for PGlite. */
  readonly url: string | undefined;
  /** Opens a second, independent handle on the same database (Postgres only). */
  openAnother(): Promise<Database>;
  drop(): Promise<void>;
}

/** A fresh, migrated database of the kind this run uses, private to the caller. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = inject('databaseTemplate');
  const base = process.env.DATABASE_URL;
  if (inject('databaseKind') === 'postgres' && base) {
    const name = `gatehouse_t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    } finally {
      await admin.end();
    }
    const target = new URL(base);
    target.pathname = `/${name}`;
    const url = target.toString();
    const database = await openDatabase({ databaseUrl: url });
    return {
      database,
      url,
      openAnother: () => openDatabase({ databaseUrl: url }),
      async drop() {
        await database.close();
        const c = new pg.Client({ connectionString: base });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
        await c.end();
      },
    };
  }
  const dir = path.join(path.dirname(template), `db-${randomUUID()}`);
  cpSync(template, dir, { recursive: true });
  const database = await openDatabase({ dataDir: dir });
  return {
    database,
    url: undefined,
    openAnother: () => Promise.reject(new Error('PGlite is single-process; share the handle instead')),
    async drop() {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
