import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../control-plane/db/database.js';
import { migrateToLatest } from '../../control-plane/db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Postgres: name of a migrated template database. PGlite: path of a migrated data dir. */
    databaseTemplate: string;
    databaseKind: 'postgres' | 'pglite';
  }
}

export const TMP_ROOT = path.resolve('test/.tmp');

/**
 * Migrates one template database per test run; each test file then gets its own copy
 * (CREATE DATABASE … TEMPLATE on Postgres, a copied data dir on PGlite), so files run in
 * parallel without sharing state and without paying for migrations or initdb each time.
 */
export default async function setup(project: TestProject) {
  const url = process.env.DATABASE_URL;
  if (url) {
    const name = `gatehouse_tpl_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const target = new URL(url);
    target.pathname = `/${name}`;
    const database = await openDatabase({ databaseUrl: target.toString() });
    await migrateToLatest(database);
    await database.close();
    project.provide('databaseTemplate', name);
    project.provide('databaseKind', 'postgres');
    return async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    };
  }
  mkdirSync(TMP_ROOT, { recursive: true });
  const dir = path.join(TMP_ROOT, `template-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const database = await openDatabase({ dataDir: dir });
  await migrateToLatest(database);
  await database.close();
  project.provide('databaseTemplate', dir);
  project.provide('databaseKind', 'pglite');
  return () => rmSync(dir, { recursive: true, force: true });
}
