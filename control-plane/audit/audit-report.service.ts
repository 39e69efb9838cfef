import { sql, type Kysely, type RawBuilder } from 'kysely';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ValidationError } from '../errors.js';
import { decodeIdOf } from '../graphql/global-id.js';
import { MAX_WINDOW_DAYS } from './audit-log.filter.js';

export type ReportBucket = 'hour' | 'day';

/** The raw report input, as GraphQL hands it over (IDs global, times Dates). */
export interface RawReportInput {
  readonly from?: Date | null;
  readonly to?: Date | null;
  readonly bucket?: ReportBucket | null;
  readonly timeZone?: string | null;
  readonly gatewayId?: string | null;
  readonly serverId?: string | null;
}

/** A validated report window inside one workspace. */
export interface ReportWindow {
  readonly workspaceId: string;
  readonly from: Date;
  readonly to: Date;
  readonly bucket: ReportBucket;
  readonly timeZone: string;
  readonly gatewayId?: string;
  readonly serverId?: string;
}

export interface CallsBucket {
  readonly bucket: Date;
  readonly calls: number;
  readonly errors: number;
  readonly blocked: number;
}
export interface TokensBucket {
  readonly bucket: Date;
  readonly inputTokens: number;
  readonly outputTokens: number;
}
export interface FeatureCalls {
  readonly featureName: string;
  readonly calls: number;
  readonly errors: number;
  readonly blocked: number;
}
export interface FeatureLatency {
  readonly featureName: string;
  readonly calls: number;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly avgMs: number | null;
  readonly maxMs: number | null;
}
export interface ServerPopularity {
  readonly serverId: string;
  readonly calls: number;
  readonly distinctUsers: number;
  /** This server's part of all calls to servers in the window, 0–1. */
  readonly share: number;
}
export interface Usage {
  /** The user, team or server; null for calls with no user (machine identities) or no server (gateway-answered calls). */
  readonly subjectId: string | null;
  readonly calls: number;
  readonly errors: number;
  readonly blocked: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
}
export interface ErrorRate {
  readonly calls: number;
  readonly errors: number;
  readonly blocked: number;
  /** errors / calls (0 when there were no calls). */
  readonly errorRate: number;
  readonly blockedRate: number;
  readonly buckets: readonly CallsBucket[];
}

const DAY_MS = 86_400_000;
const DEFAULT_WINDOW_DAYS = 7;
export const MAX_TOP = 100;

/** Counts come back from Postgres as strings (bigint) or numbers; sums of nothing as null. */
const n = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const nn = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz.length <= 64;
  } catch {
    return false;
  }
}

/**
 * The reports behind the usual dashboards, each one SQL statement over a window of at most
 * {@link MAX_WINDOW_DAYS} days. A call is counted once, on its `client_response` leg;
 * tokens are the client legs' estimates (`client_request` + `client_response`), so an
 * upstream leg never counts twice. Buckets are continuous (empty ones are zero) and start
 * at midnight or the hour in the requested time zone. They read the partial covering
 * indexes of migration 0010 (index-only scans).
 */
export class AuditReportService {
  private readonly db: Kysely<DB>;

  constructor(database: Database) {
    this.db = database.db;
  }

  /** Checks the viewer and the input once; every report of the request reuses the window. */
  window(viewer: Viewer, raw: RawReportInput, now = new Date()): ReportWindow {
    requireCapability(viewer, 'reporting.view');
    const to = raw.to ?? now;
    const from = raw.from ?? new Date(to.getTime() - DEFAULT_WINDOW_DAYS * DAY_MS);
    if (from.getTime() >= to.getTime()) throw new ValidationError('input.to', 'input.to: must be after input.from');
    if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * DAY_MS) {
      throw new ValidationError('input.from', `input.from: a report window spans at most ${MAX_WINDOW_DAYS} days`);
    }
    const timeZone = raw.timeZone?.trim() || 'UTC';
    if (!validTimeZone(timeZone)) throw new ValidationError('input.timeZone', `input.timeZone: "${timeZone.slice(0, 64)}" is not an IANA time zone`);
    return {
      workspaceId: viewer.workspaceId,
      from,
      to,
      bucket: raw.bucket ?? 'day',
      timeZone,
      ...(raw.gatewayId ? { gatewayId: decodeIdOf('Gateway', raw.gatewayId, 'input.gatewayId') } : {}),
      ...(raw.serverId ? { serverId: decodeIdOf('Server', raw.serverId, 'input.serverId') } : {}),
    };
  }

  async callsOverTime(w: ReportWindow): Promise<CallsBucket[]> {
    const rows = await this.run<{ bucket: Date; calls: unknown; errors: unknown; blocked: unknown }>(
      w,
      sql`
      WITH h AS (
        SELECT ${this.hourOf(w)} AS hour, count(*) AS calls,
               count(*) FILTER (WHERE status = 'error') AS errors, count(*) FILTER (WHERE status = 'blocked') AS blocked
        FROM audit_entries WHERE ${this.where(w, 'client_response')} GROUP BY 1
      ), c AS (
        SELECT ${this.bucketOfHour(w)} AS bucket, sum(calls) AS calls, sum(errors) AS errors, sum(blocked) AS blocked FROM h GROUP BY 1
      )
      SELECT b.bucket, c.calls, c.errors, c.blocked FROM (${this.buckets(w)}) b LEFT JOIN c ON c.bucket = b.bucket ORDER BY b.bucket`,
    );
    return rows.map((r) => ({ bucket: new Date(r.bucket), calls: n(r.calls), errors: n(r.errors), blocked: n(r.blocked) }));
  }

  async tokensOverTime(w: ReportWindow): Promise<TokensBucket[]> {
    const rows = await this.run<{ bucket: Date; input: unknown; output: unknown }>(
      w,
      sql`
      WITH h AS (
        SELECT ${this.hourOf(w)} AS hour, sum(input_tokens) AS i, sum(output_tokens) AS o FROM audit_entries WHERE ${this.where(w, 'client_request')} GROUP BY 1
        UNION ALL
        SELECT ${this.hourOf(w)}, sum(input_tokens), sum(output_tokens) FROM audit_entries WHERE ${this.where(w, 'client_response')} GROUP BY 1
      ), t AS (
        SELECT ${this.bucketOfHour(w)} AS bucket, sum(i) AS input, sum(o) AS output FROM h GROUP BY 1
      )
      SELECT b.bucket, t.input, t.output FROM (${this.buckets(w)}) b LEFT JOIN t ON t.bucket = b.bucket ORDER BY b.bucket`,
    );
    return rows.map((r) => ({ bucket: new Date(r.bucket), inputTokens: n(r.input), outputTokens: n(r.output) }));
  }

  async featureCalls(w: ReportWindow, top: number): Promise<FeatureCalls[]> {
    const rows = await this.run<{ feature_name: string; calls: unknown; errors: unknown; blocked: unknown }>(
      w,
      sql`
      SELECT feature_name, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors, count(*) FILTER (WHERE status = 'blocked') AS blocked
      FROM audit_entries WHERE ${this.where(w, 'client_response')} AND feature_name IS NOT NULL
      GROUP BY feature_name ORDER BY calls DESC, feature_name LIMIT ${top}`,
    );
    return rows.map((r) => ({ featureName: r.feature_name, calls: n(r.calls), errors: n(r.errors), blocked: n(r.blocked) }));
  }

  /**
   * Exact p50/p95 (`percentile_cont`) of the top features. One scan collects each
   * feature's durations into an array while counting; only the top N arrays are sorted.
   * (Counting first and joining back for the durations scans the window twice and sorts
   * every row by feature: about 1.6× slower on the benchmark.)
   */
  async latencyByFeature(w: ReportWindow, top: number): Promise<FeatureLatency[]> {
    const rows = await this.run<{ feature_name: string; calls: unknown; p: number[] | null; avg: unknown; max: unknown }>(
      w,
      sql`
      WITH f AS (
        SELECT feature_name, count(*) AS calls, avg(duration_ms) AS avg, max(duration_ms) AS max, array_agg(duration_ms) AS d
        FROM audit_entries WHERE ${this.where(w, 'client_response')} AND feature_name IS NOT NULL
        GROUP BY feature_name ORDER BY calls DESC, feature_name LIMIT ${top}
      )
      SELECT feature_name, calls, avg, max,
             (SELECT percentile_cont(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY x) FROM unnest(f.d) AS x) AS p
      FROM f ORDER BY calls DESC, feature_name`,
    );
    return rows.map((r) => ({
      featureName: r.feature_name,
      calls: n(r.calls),
      p50Ms: nn(r.p?.[0]),
      p95Ms: nn(r.p?.[1]),
      avgMs: nn(r.avg),
      maxMs: nn(r.max),
    }));
  }

  async serverPopularity(w: ReportWindow, top: number): Promise<ServerPopularity[]> {
    const rows = await this.run<{ server_id: string; calls: unknown; users: unknown; total: unknown }>(
      w,
      sql`
      WITH su AS (
        SELECT server_id, user_id, count(*) AS calls FROM audit_entries WHERE ${this.where(w, 'client_response')} AND server_id IS NOT NULL GROUP BY 1, 2
      )
      SELECT server_id, sum(calls) AS calls, count(user_id) AS users, sum(sum(calls)) OVER () AS total
      FROM su GROUP BY server_id ORDER BY calls DESC, server_id LIMIT ${top}`,
    );
    return rows.map((r) => ({ serverId: r.server_id, calls: n(r.calls), distinctUsers: n(r.users), share: n(r.total) > 0 ? n(r.calls) / n(r.total) : 0 }));
  }

  async errorRate(w: ReportWindow): Promise<ErrorRate> {
    const buckets = await this.callsOverTime(w);
    const calls = buckets.reduce((s, b) => s + b.calls, 0);
    const errors = buckets.reduce((s, b) => s + b.errors, 0);
    const blocked = buckets.reduce((s, b) => s + b.blocked, 0);
    return { calls, errors, blocked, errorRate: calls ? errors / calls : 0, blockedRate: calls ? blocked / calls : 0, buckets };
  }

  usageByUser(w: ReportWindow, top: number): Promise<Usage[]> {
    return this.usage(w, top, sql`user_id`, sql`SELECT * FROM per_key`);
  }

  usageByServer(w: ReportWindow, top: number): Promise<Usage[]> {
    return this.usage(w, top, sql`server_id`, sql`SELECT * FROM per_key`);
  }

  /** Calls of the users who are members of each team now; a user in two teams counts in both, users in none in no team. */
  usageByTeam(w: ReportWindow, top: number): Promise<Usage[]> {
    return this.usage(
      w,
      top,
      sql`user_id`,
      sql`SELECT tm.team_id AS subject, sum(calls) AS calls, sum(errors) AS errors, sum(blocked) AS blocked, sum(input) AS input, sum(output) AS output
          FROM per_key JOIN team_members tm ON tm.workspace_id = ${w.workspaceId} AND tm.user_id = per_key.subject GROUP BY 1`,
    );
  }

  /**
   * Usage per subject. Each client leg is first reduced to one row per `key` (a user or a
   * server: a few hundred rows), and only those are joined and grouped.
   */
  private async usage(w: ReportWindow, top: number, key: RawBuilder<unknown>, outer: RawBuilder<unknown>): Promise<Usage[]> {
    const rows = await this.run<{ subject: string | null; calls: unknown; errors: unknown; blocked: unknown; input: unknown; output: unknown }>(
      w,
      sql`
      WITH legs AS (
        SELECT ${key} AS subject, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
               count(*) FILTER (WHERE status = 'blocked') AS blocked, sum(input_tokens) AS input, sum(output_tokens) AS output
        FROM audit_entries WHERE ${this.where(w, 'client_response')} GROUP BY 1
        UNION ALL
        SELECT ${key}, 0, 0, 0, sum(input_tokens), sum(output_tokens)
        FROM audit_entries WHERE ${this.where(w, 'client_request')} GROUP BY 1
      ), per_key AS (
        SELECT subject, sum(calls) AS calls, sum(errors) AS errors, sum(blocked) AS blocked, sum(input) AS input, sum(output) AS output
        FROM legs GROUP BY 1
      )
      SELECT * FROM (${outer}) s ORDER BY calls DESC, subject NULLS LAST LIMIT ${top}`,
    );
    return rows.map((r) => ({ subjectId: r.subject, calls: n(r.calls), errors: n(r.errors), blocked: n(r.blocked), inputTokens: n(r.input), outputTokens: n(r.output) }));
  }

  /** The window's rows of one client leg. The leg is a literal so the planner matches the partial index. */
  private where(w: ReportWindow, leg: 'client_request' | 'client_response'): RawBuilder<unknown> {
    const parts = [
      sql`workspace_id = ${w.workspaceId}`,
      sql`leg = ${sql.lit(leg)}`,
      sql`occurred_at >= ${w.from}`,
      sql`occurred_at < ${w.to}`,
    ];
    if (w.gatewayId) parts.push(sql`gateway_id = ${w.gatewayId}`);
    if (w.serverId) parts.push(sql`server_id = ${w.serverId}`);
    return sql.join(parts, sql` AND `);
  }

  /**
   * The local hour a row falls in, by plain arithmetic (`date_bin` from local midnight of
   * the window's first day): a time-zone conversion per row costs more than the rest of a
   * report. Hours are then grouped into buckets with the real calendar ({@link bucketOfHour}).
   */
  private hourOf(w: ReportWindow): RawBuilder<Date> {
    return sql<Date>`date_bin('1 hour'::interval, occurred_at, (date_trunc('day', ${w.from}::timestamptz AT TIME ZONE ${w.timeZone}) AT TIME ZONE ${w.timeZone}))`;
  }

  /** The bucket of an hour from {@link hourOf}, in the requested time zone. */
  private bucketOfHour(w: ReportWindow): RawBuilder<Date> {
    return sql<Date>`(date_trunc(${sql.lit(w.bucket)}, hour AT TIME ZONE ${w.timeZone}) AT TIME ZONE ${w.timeZone})`;
  }

  /** Every bucket start of the window, as local wall-clock steps converted back to instants. */
  private buckets(w: ReportWindow): RawBuilder<{ bucket: Date }> {
    const step = w.bucket === 'hour' ? sql.lit('1 hour') : sql.lit('1 day');
    return sql`
      SELECT (g AT TIME ZONE ${w.timeZone}) AS bucket
      FROM generate_series(
        date_trunc(${sql.lit(w.bucket)}, ${w.from}::timestamptz AT TIME ZONE ${w.timeZone}),
        (${w.to}::timestamptz - interval '1 microsecond') AT TIME ZONE ${w.timeZone},
        ${step}::interval) g`;
  }

  /** Runs a report; a time zone Postgres does not know becomes a validation error. */
  private async run<R>(w: ReportWindow, query: RawBuilder<unknown>): Promise<R[]> {
    try {
      return (await (query as RawBuilder<R>).execute(this.db)).rows;
    } catch (err) {
      if ((err as { code?: string }).code === '22023' && /time zone/i.test(String((err as Error).message))) {
        throw new ValidationError('input.timeZone', `input.timeZone: "${w.timeZone}" is not a time zone the database knows`);
      }
      throw err;
    }
  }
}
