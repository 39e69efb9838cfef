import { CompiledQuery, sql, type Kysely, type QueryResult } from 'kysely';
import type { AuditEntry } from '../../schema/audit/types.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import type { Logger } from '../logger.js';

/** Day partitions are `audit_entries_pYYYYMMDD`, holding `[day 00:00 UTC, next day 00:00 UTC)`. */
export const AUDIT_PARTITION_PREFIX = 'audit_entries_p';
const PARTITION_NAME = /^audit_entries_p(\d{4})(\d{2})(\d{2})$/;
const DAY_MS = 86_400_000;
/** Retention of a workspace without a row (none exist) and when no workspace exists. */
const DEFAULT_RETENTION_DAYS = 90;
/** One advisory lock key serializes partition DDL across control-plane processes. */
const PARTITION_LOCK = 734_912_101;
/** Rows deleted per statement by retention, so no statement holds locks for long. */
const DELETE_CHUNK = 10_000;

export interface AuditStoreOptions {
  readonly logger?: Logger;
  /** Day partitions created ahead of today. Default 2. */
  readonly daysAhead?: number;
  /** Entries of days this far back get their own partition on ingest; older ones land in the default partition. Default 31. */
  readonly daysBehind?: number;
}

export interface AuditInsertResult {
  /** Entries stored by this insert. */
  readonly accepted: number;
  /** Entries already stored (same `occurredAt` and `id`). */
  readonly duplicates: number;
  /** Ids of the entries stored, when asked for. */
  readonly insertedIds?: ReadonlySet<string>;
}

export interface AuditPartition {
  readonly name: string;
  /** Inclusive start, 00:00 UTC. */
  readonly from: Date;
  /** Exclusive end. */
  readonly to: Date;
}

export interface RetentionResult {
  /** The longest retention of any workspace, in days: partitions older than it were dropped. */
  readonly longestRetentionDays: number;
  readonly droppedPartitions: readonly string[];
  /** Rows deleted (workspaces with shorter retention, and old rows in the default partition). */
  readonly deletedRows: number;
}

/**
 * The write side of `audit_entries`: idempotent batch inserts, the day partitions, and
 * retention. Works the same on Postgres and PGlite.
 *
 * **Insert.** One statement per batch: the entries' JSON array goes to the server as one
 * parameter and `json_to_recordset` turns it into rows, `ON CONFLICT DO NOTHING` on the
 * key `(occurred_at, id)`. Measured faster than a multi-row `VALUES` (one parameter per
 * field, 37,000 per 1,000 entries, and the 65,535 parameter cap), than `unnest` over one
 * array per column (building the arrays costs the control plane more than Postgres
 * saves) and needs no COPY support in the driver. When the ingest already has the
 * request's text, the `entries` array sliced out of it is the parameter: nothing is
 * serialized again, and Postgres does not parse the whole body once more to pick out
 * `entries`. `data_plane_id` is always the authenticated data plane's.
 *
 * **Partitions.** Created ahead (today .. +`daysAhead`) by {@link ensurePartitions}, and
 * before an insert for any day within `daysBehind` that has none; a day created after the
 * default partition took rows of it moves those rows into the new partition in the same
 * transaction. DDL runs under one advisory lock, so several control planes may race.
 */
export class AuditStore {
  readonly #db: Kysely<DB>;
  readonly #logger: Logger | undefined;
  readonly #daysAhead: number;
  readonly #daysBehind: number;
  /** Days (`YYYYMMDD`) known to have a partition. */
  readonly #days = new Set<string>();
  #partitionsLoaded: Promise<void> | undefined;

  constructor(
    private readonly database: Database,
    options: AuditStoreOptions = {},
  ) {
    this.#db = database.db;
    this.#logger = options.logger;
    this.#daysAhead = options.daysAhead ?? 2;
    this.#daysBehind = options.daysBehind ?? 31;
  }

  /**
   * Stores entries of one workspace (already validated). `json`, when given, is the
   * request's text the entries were parsed from: `{ "entries": [...] }` with exactly these
   * entries; when it has the shape data planes write, its `entries` array is the statement's
   * parameter as it is (nothing serialized again, nothing for Postgres to pick out).
   */
  async insert(
    dataPlaneId: string | null,
    entries: readonly AuditEntry[],
    options: { readonly json?: string; readonly returnIds?: boolean } = {},
  ): Promise<AuditInsertResult> {
    const returnIds = options.returnIds === true;
    if (entries.length === 0) return { accepted: 0, duplicates: 0, ...(returnIds ? { insertedIds: new Set<string>() } : {}) };
    await this.ensurePartitionsFor(entries, new Date());
    // Postgres text cannot hold U+0000 or unpaired surrogates (which JSON.stringify writes as
    // escapes); a batch carrying either is rewritten rather than refused.
    const asSent = options.json === undefined || mayHoldUnstorable(options.json) ? undefined : entriesArrayText(options.json);
    let result: QueryResult<unknown> | undefined;
    if (asSent !== undefined) {
      try {
        result = await this.#db.executeQuery(insertQuery(asSent, dataPlaneId, returnIds));
      } catch (error) {
        // The text as written can say what Postgres reads otherwise than JSON.parse did
        // (`1.0` for an integer column, a repeated key): the validated entries decide.
        if (!isDataError(error)) throw error;
      }
    }
    result ??= await this.#db.executeQuery(insertQuery(serializeEntries(entries), dataPlaneId, returnIds));
    const accepted = returnIds ? result.rows.length : Number(result.numAffectedRows ?? 0n);
    return {
      accepted,
      duplicates: entries.length - accepted,
      ...(returnIds ? { insertedIds: new Set(result.rows.map((row) => (row as { id: string }).id)) } : {}),
    };
  }

  /** Creates the day partitions from today to today + `daysAhead` that are missing; returns the names created. */
  async ensurePartitions(now: Date = new Date()): Promise<string[]> {
    const days: string[] = [];
    for (let i = 0; i <= this.#daysAhead; i++) days.push(dayKey(new Date(now.getTime() + i * DAY_MS)));
    return this.#ensureDays(days);
  }

  /** Creates partitions for the days of these entries that are within the window and missing. */
  async ensurePartitionsFor(entries: readonly AuditEntry[], now: Date): Promise<string[]> {
    let wanted: Set<string> | undefined;
    let previous = '';
    for (const entry of entries) {
      const at = entry.occurredAt;
      // `…Z` timestamps (what data planes send) carry their UTC day in the text.
      const day = at.endsWith('Z') && at.length >= 10 ? `${at.slice(0, 4)}${at.slice(5, 7)}${at.slice(8, 10)}` : dayKey(new Date(at));
      if (day === previous) continue;
      previous = day;
      if (!this.#days.has(day)) (wanted ??= new Set()).add(day);
    }
    if (!wanted) return [];
    await this.#loadPartitions();
    const earliest = dayKey(new Date(now.getTime() - this.#daysBehind * DAY_MS));
    const latest = dayKey(new Date(now.getTime() + this.#daysAhead * DAY_MS));
    const missing = [...wanted].filter((day) => !this.#days.has(day) && day >= earliest && day <= latest);
    return missing.length === 0 ? [] : this.#ensureDays(missing);
  }

  /** The day partitions that exist, oldest first. */
  async listPartitions(): Promise<AuditPartition[]> {
    const rows = await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'audit_entries'::regclass`.execute(this.#db);
    const partitions: AuditPartition[] = [];
    for (const { name } of rows.rows) {
      const match = PARTITION_NAME.exec(name);
      if (!match) continue;
      const from = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
      partitions.push({ name, from, to: new Date(from.getTime() + DAY_MS) });
    }
    return partitions.sort((a, b) => a.from.getTime() - b.from.getTime());
  }

  /**
   * Applies every workspace's `audit_retention_days` at `now`: drops day partitions that
   * end before the longest retention, deletes older rows from the default partition, and
   * deletes older rows of workspaces whose retention is shorter (in chunks).
   */
  async applyRetention(now: Date = new Date()): Promise<RetentionResult> {
    const workspaces = await sql<{ id: string; days: number }>`SELECT id, audit_retention_days AS days FROM workspaces`.execute(this.#db);
    const longest = workspaces.rows.reduce((max, row) => Math.max(max, Number(row.days)), 0) || DEFAULT_RETENTION_DAYS;
    const horizon = new Date(now.getTime() - longest * DAY_MS);
    const dropped: string[] = [];
    for (const partition of await this.listPartitions()) {
      if (partition.to.getTime() > horizon.getTime()) continue;
      await this.#db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(${PARTITION_LOCK})`.execute(trx);
        await sql`DROP TABLE IF EXISTS ${sql.id(partition.name)}`.execute(trx);
      });
      this.#days.delete(partition.name.slice(AUDIT_PARTITION_PREFIX.length));
      dropped.push(partition.name);
    }
    let deletedRows = 0;
    const deleted = await sql`DELETE FROM audit_entries_default WHERE occurred_at < ${horizon}`.execute(this.#db);
    deletedRows += Number(deleted.numAffectedRows ?? 0n);
    for (const workspace of workspaces.rows) {
      const days = Number(workspace.days);
      if (days >= longest) continue;
      const cutoff = new Date(now.getTime() - days * DAY_MS);
      for (;;) {
        const chunk = await sql`
          DELETE FROM audit_entries WHERE (occurred_at, id) IN (
            SELECT occurred_at, id FROM audit_entries
            WHERE workspace_id = ${workspace.id} AND occurred_at < ${cutoff} AND occurred_at >= ${horizon}
            LIMIT ${DELETE_CHUNK})`.execute(this.#db);
        const n = Number(chunk.numAffectedRows ?? 0n);
        deletedRows += n;
        if (n < DELETE_CHUNK) break;
      }
    }
    if (dropped.length > 0 || deletedRows > 0) this.#logger?.info({ dropped, deletedRows, longestRetentionDays: longest }, 'audit retention applied');
    return { longestRetentionDays: longest, droppedPartitions: dropped, deletedRows };
  }

  #loadPartitions(): Promise<void> {
    this.#partitionsLoaded ??= this.listPartitions().then(
      (partitions) => {
        for (const partition of partitions) this.#days.add(partition.name.slice(AUDIT_PARTITION_PREFIX.length));
      },
      (error: unknown) => {
        this.#partitionsLoaded = undefined;
        throw error;
      },
    );
    return this.#partitionsLoaded;
  }

  async #ensureDays(days: readonly string[]): Promise<string[]> {
    await this.#loadPartitions();
    const created: string[] = [];
    for (const day of days) {
      if (this.#days.has(day)) continue;
      if (await this.#createDay(day)) created.push(`${AUDIT_PARTITION_PREFIX}${day}`);
      this.#days.add(day);
    }
    if (created.length > 0) this.#logger?.info({ partitions: created }, 'created audit partitions');
    return created;
  }

  /** Creates one day's partition (moving any rows of that day out of the default partition); false when it existed. */
  async #createDay(day: string): Promise<boolean> {
    const name = `${AUDIT_PARTITION_PREFIX}${day}`;
    const from = new Date(Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8))));
    const to = new Date(from.getTime() + DAY_MS);
    const bounds = sql`FOR VALUES FROM (${sql.lit(from.toISOString())}) TO (${sql.lit(to.toISOString())})`;
    return this.#db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${PARTITION_LOCK})`.execute(trx);
      const exists = await sql<{ oid: string | null }>`SELECT to_regclass(${name})::text AS oid`.execute(trx);
      if (exists.rows[0]?.oid) return false;
      const stray = await sql`SELECT 1 FROM audit_entries_default WHERE occurred_at >= ${from} AND occurred_at < ${to} LIMIT 1`.execute(trx);
      if (stray.rows.length === 0) {
        await sql`CREATE TABLE ${sql.id(name)} PARTITION OF audit_entries ${bounds}`.execute(trx);
        return true;
      }
      // Rows of this day already sit in the default partition: move them, then attach.
      await sql`CREATE TABLE ${sql.id(name)} (LIKE audit_entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`.execute(trx);
      await sql`
        WITH moved AS (DELETE FROM audit_entries_default WHERE occurred_at >= ${from} AND occurred_at < ${to} RETURNING *)
        INSERT INTO ${sql.id(name)} SELECT * FROM moved`.execute(trx);
      await sql`ALTER TABLE audit_entries ATTACH PARTITION ${sql.id(name)} ${bounds}`.execute(trx);
      return true;
    });
  }
}

/**
 * Stores entries the control plane writes itself (detector hits) in the caller's
 * transaction, so they commit or roll back with what they record. No partition DDL runs
 * here (it takes its own transaction, which on embedded PGlite would wait for this one):
 * a day without a partition lands in `audit_entries_default`, whose rows move into the
 * day's partition when {@link AuditStore.ensurePartitions} creates it. Idempotent on
 * `(occurredAt, id)` like every insert; returns the number stored.
 */
export async function insertAuditEntriesIn(trx: Kysely<DB>, entries: readonly AuditEntry[]): Promise<number> {
  if (entries.length === 0) return 0;
  const result = await trx.executeQuery(insertQuery(serializeEntries(entries), null, false));
  return Number(result.numAffectedRows ?? 0n);
}

/** `YYYYMMDD` of a time's UTC day. */
export function dayKey(at: Date): string {
  return at.toISOString().slice(0, 10).replaceAll('-', '');
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity): the batch's content, not the database's state. */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$/.test(code);
}

/** `\u0000` or a surrogate escape in JSON text (well-formed JSON.stringify output escapes only unpaired ones). */
const UNSTORABLE_ESCAPE = /\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})/;
/** U+0000 and unpaired surrogates. */
const UNSTORABLE_CHARACTER = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Whether JSON text may decode to U+0000 or an unpaired surrogate. Text decoded from UTF-8
 * holds neither raw (the decoder replaces them, JSON forbids a raw U+0000 in a string), so
 * only `\u` escapes can, and JSON.stringify writes `\u` only for control characters and
 * unpaired surrogates: the regular expression runs for rare text only.
 */
function mayHoldUnstorable(json: string): boolean {
  return json.includes('\\u') && UNSTORABLE_ESCAPE.test(json);
}

/** How a data plane writes a batch (`JSON.stringify` of an `AuditBatch`), up to the `entries` array's `[`. */
const BATCH_PREFIX = '{"formatVersion":1,"entries":[';
/** A batch's end after the `entries` array: `]}`, or `],"droppedEntries":n}` (a safe integer, at most 16 digits). */
const DROPPED_TAIL = /\],"droppedEntries":\d{1,16}\}$/;

/**
 * The `entries` array of a batch's JSON text written as data planes write it, else
 * undefined. Only for text that JSON.parse read as a valid batch (strict keys): then its
 * `entries` member starts right after the prefix and, when the slice is valid JSON, ends
 * at the slice's end, leaving no room for a repeated `entries`. A slice that is not valid
 * JSON (a crafted repeated key) fails in Postgres as a data error, and the insert falls
 * back to the validated entries.
 */
export function entriesArrayText(json: string): string | undefined {
  if (!json.startsWith(BATCH_PREFIX)) return undefined;
  const start = BATCH_PREFIX.length - 1;
  if (json.endsWith(']}')) return json.slice(start, -1);
  const tail = json.slice(-40);
  const dropped = DROPPED_TAIL.exec(tail);
  return dropped ? json.slice(start, json.length - tail.length + dropped.index + 1) : undefined;
}

/** Entries as the insert's parameter (a JSON array), with U+0000 and unpaired surrogates (which Postgres text cannot hold) replaced by U+FFFD. */
function serializeEntries(entries: readonly AuditEntry[]): string {
  return JSON.stringify(entries, (_key, value: unknown) => (typeof value === 'string' ? value.replace(UNSTORABLE_CHARACTER, '\uFFFD') : value));
}

/** The statement that stores a batch; the column list is the contract (`schema/audit/types.ts`). `$1` is a JSON array of entries, `$2` the data plane. */
const INSERT_SQL = `
    INSERT INTO audit_entries (
      id, occurred_at, workspace_id, correlation_id, leg, status, duration_ms, gateway_ms, upstream_ms,
      gateway_id, server_id, assignment_id, host_id, connection_id, token_id, user_id,
      client_name, client_version, session_ref, method, feature_name, json_rpc_id,
      error_code, error_message, policy_actions, body, body_truncated, headers,
      input_tokens, output_tokens, bytes_in, bytes_out, origin_ip, user_agent,
      data_plane_id, data_plane_instance, snapshot_version)
    SELECT
      r."id", r."occurredAt", r."workspaceId", r."correlationId", r."leg", r."status", r."durationMs", r."gatewayMs", r."upstreamMs",
      r."gatewayId", r."serverId", r."assignmentId", r."hostId", r."connectionId", r."tokenId", r."userId",
      r."clientName", r."clientVersion", r."sessionRef", r."method", r."featureName", r."jsonRpcId",
      r."errorCode", r."errorMessage", COALESCE(r."policyActions", '[]'::jsonb), r."body", COALESCE(r."bodyTruncated", false), r."headers",
      r."inputTokens", r."outputTokens", r."bytesIn", r."bytesOut", r."originIp", r."userAgent",
      $2::uuid, r."dataPlaneInstance", r."snapshotVersion"
    FROM json_to_recordset($1::json) AS r(
      "id" uuid, "occurredAt" timestamptz, "workspaceId" uuid, "correlationId" uuid, "leg" text, "status" text,
      "durationMs" double precision, "gatewayMs" double precision, "upstreamMs" double precision,
      "gatewayId" uuid, "serverId" uuid, "assignmentId" uuid, "hostId" uuid, "connectionId" uuid, "tokenId" uuid, "userId" uuid,
      "clientName" text, "clientVersion" text, "sessionRef" text, "method" text, "featureName" text, "jsonRpcId" text,
      "errorCode" integer, "errorMessage" text, "policyActions" jsonb, "body" text, "bodyTruncated" boolean, "headers" jsonb,
      "inputTokens" integer, "outputTokens" integer, "bytesIn" integer, "bytesOut" integer, "originIp" text, "userAgent" text,
      "dataPlaneInstance" text, "snapshotVersion" bigint)
    ON CONFLICT DO NOTHING`;
const INSERT_RETURNING_SQL = `${INSERT_SQL}
    RETURNING id`;

/** The insert, compiled ahead: two parameters whatever the batch's size. */
function insertQuery(entriesJson: string, dataPlaneId: string | null, returnIds: boolean): CompiledQuery {
  return CompiledQuery.raw(returnIds ? INSERT_RETURNING_SQL : INSERT_SQL, [entriesJson, dataPlaneId]);
}
