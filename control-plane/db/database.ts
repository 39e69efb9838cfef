import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, type Dialect, type LogEvent } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { DB } from './tables.js';

export type DatabaseKind = 'postgres' | 'pglite';
export type NotificationHandler = (payload: string) => void;

/**
 * The control plane's one handle on its store: a Kysely instance over real Postgres or
 * embedded PGlite, plus LISTEN/NOTIFY, which both support (PGlite in-process).
 */
export interface Database {
  readonly db: Kysely<DB>;
  readonly kind: DatabaseKind;
  /** Statements executed so far; tests use it to prove batching. */
  readonly stats: { statements: number };
  /** Subscribes to a NOTIFY channel; resolves to an unsubscribe function. */
  listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  readonly databaseUrl?: string | undefined;
  /** Directory of the embedded database; `memory://` keeps it in memory. */
  readonly dataDir?: string | undefined;
  /** Use an already-open PGlite (tests share a cloned instance). */
  readonly pglite?: PGlite | undefined;
  readonly logger?: Logger | undefined;
  /** Pool size for Postgres. Default 10. */
  readonly poolSize?: number | undefined;
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const stats = { statements: 0 };
  const log = (event: LogEvent) => {
    stats.statements++;
    if (event.level === 'error') {
      options.logger?.debug({ err: event.error, sql: event.query.sql }, 'query failed');
    }
  };

  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 });
    pool.on('error', (err) => options.logger?.warn({ err }, 'idle postgres client failed'));
    // A client checked out when the server goes away (a restart mid-transaction) emits
    // 'error' with no pool listener attached; without one of its own that is an uncaught
    // exception. Its query already rejects, so logging is all that is left to do.
    pool.on('connect', (client) => client.on('error', (err) => options.logger?.warn({ err }, 'postgres connection lost during a query')));
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), log });
    const listener = createPgListener(options.databaseUrl, options.logger);
    return {
      db,
      kind: 'postgres',
      stats,
      listen: listener.listen,
      async close() {
        await listener.close();
        await db.destroy();
      },
    };
  }

  let pglite = options.pglite;
  const owned = !pglite;
  if (!pglite) {
    const dir = options.dataDir ?? 'memory://';
    if (!dir.startsWith('memory://')) mkdirSync(dir, { recursive: true });
    pglite = await PGlite.create(dir.startsWith('memory://') ? undefined : dir);
  }
  const instance = pglite;
  const dialect: Dialect = new PGliteDialect(instance);
  const db = new Kysely<DB>({ dialect, log });
  return {
    db,
    kind: 'pglite',
    stats,
    async listen(channel, handler) {
      assertChannel(channel);
      const unsubscribe = await instance.listen(channel, handler);
      return async () => unsubscribe();
    },
    async close() {
      // Kysely's destroy would close PGlite too; only close what we opened.
      if (owned) await db.destroy();
    },
  };
}

function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new Error(`invalid NOTIFY channel name: ${channel}`);
}

/**
 * One dedicated Postgres connection for LISTEN, re-established with backoff when it drops,
 * re-subscribing every channel in use.
 */
function createPgListener(connectionString: string, logger: Logger | undefined) {
  const handlers = new Map<string, Set<NotificationHandler>>();
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let closed = false;
  let retry = 0;

  const connect = (): Promise<pg.Client> => {
    if (client) return Promise.resolve(client);
    connecting ??= (async () => {
      const c = new pg.Client({ connectionString });
      c.on('notification', (msg) => {
        for (const h of handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
      });
      c.on('error', (err) => {
        logger?.warn({ err }, 'postgres LISTEN connection lost; reconnecting');
        if (client === c) client = undefined;
        void c.end().catch(() => undefined);
        scheduleReconnect();
      });
      await c.connect();
      for (const channel of handlers.keys()) await c.query(`LISTEN ${channel}`);
      client = c;
      retry = 0;
      return c;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  };

  const scheduleReconnect = () => {
    if (closed || handlers.size === 0) return;
    const delay = Math.min(5000, 100 * 2 ** retry++);
    setTimeout(() => {
      if (!closed) connect().catch(() => scheduleReconnect());
    }, delay).unref();
  };

  return {
    async listen(channel: string, handler: NotificationHandler) {
      assertChannel(channel);
      let set = handlers.get(channel);
      const fresh = !set;
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(handler);
      const c = await connect();
      if (fresh) await c.query(`LISTEN ${channel}`);
      return async () => {
        set.delete(handler);
        if (set.size === 0) {
          handlers.delete(channel);
          await client?.query(`UNLISTEN ${channel}`).catch(() => undefined);
        }
      };
    },
    async close() {
      closed = true;
      const c = client ?? (connecting ? await connecting.catch(() => undefined) : undefined);
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
