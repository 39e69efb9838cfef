/** A database of its own on a Postgres server, for one benchmark run; dropped afterwards. */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export interface ScratchDatabase {
  readonly name: string;
  /** Its connection URL (the server's URL with this database). */
  readonly url: string;
  /** A connection to the server's own database (`base`), open until `drop()`. */
  readonly admin: pg.Client;
  /** Drops the database (closing its other connections) and the admin connection; never throws. */
  drop(): Promise<void>;
}

/** Creates `gatehouse_bench_<random>` on the server `base` points at. */
export async function createScratchDatabase(base: string): Promise<ScratchDatabase> {
  const name = `gatehouse_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    admin,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end().catch(() => undefined);
    },
  };
}
