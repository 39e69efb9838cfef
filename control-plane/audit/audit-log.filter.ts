import { sql, type ExpressionBuilder, type SelectQueryBuilder, type Expression, type SqlBool } from 'kysely';
import { AUDIT_LEGS, AUDIT_STATUSES, type AuditLeg, type AuditStatus } from '../../schema/audit/types.js';
import { ValidationError } from '../errors.js';
import { decodeIdOf } from '../graphql/global-id.js';
import type { AuditReadDB } from './audit-log.table.js';

/** The longest window a report (and a free-text search) may span. */
export const MAX_WINDOW_DAYS = 31;
const DAY_MS = 86_400_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What a caller may narrow audit entries by, as it arrives from GraphQL or from the
 * export URL's query string: entity references are global IDs, times are Dates or
 * ISO-8601 strings.
 */
export interface RawAuditLogFilter {
  readonly from?: Date | string | null;
  readonly to?: Date | string | null;
  readonly gatewayId?: string | null;
  readonly serverId?: string | null;
  readonly connectionId?: string | null;
  readonly hostId?: string | null;
  readonly userId?: string | null;
  readonly teamId?: string | null;
  readonly feature?: string | null;
  readonly method?: string | null;
  readonly status?: readonly string[] | null;
  readonly leg?: readonly string[] | null;
  readonly correlationId?: string | null;
  readonly search?: string | null;
}

/** A validated filter: database ids, Dates, enum values. Plain data, so it can travel inside an export token. */
export interface AuditLogFilter {
  readonly from?: Date;
  readonly to?: Date;
  readonly gatewayId?: string;
  readonly serverId?: string;
  readonly connectionId?: string;
  readonly hostId?: string;
  readonly userId?: string;
  readonly teamId?: string;
  readonly feature?: string;
  readonly method?: string;
  readonly status?: readonly AuditStatus[];
  readonly leg?: readonly AuditLeg[];
  readonly correlationId?: string;
  /** Case-insensitive substring of method, feature, error message and (for viewers who may see them) bodies. */
  readonly search?: string;
}

const present = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined && (v as unknown) !== '';

function parseTime(value: Date | string, field: string): Date {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime()) || (typeof value === 'string' && !/^\d{4}-\d{2}-\d{2}/.test(value))) {
    throw new ValidationError(field, `${field}: "${String(value).slice(0, 60)}" is not an ISO-8601 time`);
  }
  return d;
}

function text(value: string, field: string, max: number): string {
  const v = value.trim();
  if (v.length === 0) throw new ValidationError(field, `${field}: must not be empty`);
  if (v.length > max) throw new ValidationError(field, `${field}: must be at most ${max} characters`);
  if (/[\u0000]/.test(v)) throw new ValidationError(field, `${field}: must not contain NUL characters`);
  return v;
}

function oneOf<T extends string>(values: readonly string[], allowed: readonly T[], field: string): T[] {
  if (values.length > allowed.length) throw new ValidationError(field, `${field}: at most ${allowed.length} values`);
  return values.map((v, i) => {
    const lower = v.toLowerCase() as T;
    if (!allowed.includes(lower)) throw new ValidationError(`${field}.${i}`, `${field}.${i}: "${v.slice(0, 40)}" is not one of ${allowed.join(', ')}`);
    return lower;
  });
}

/**
 * Validates a filter at the edge. Errors name the field under `prefix` (`filter.to`).
 * A range must run forwards; free text must be bounded in time (it defaults to the
 * {@link MAX_WINDOW_DAYS} days before `to`), since it cannot use an index.
 */
export function parseAuditLogFilter(raw: RawAuditLogFilter | null | undefined, prefix = 'filter', now = new Date()): AuditLogFilter {
  if (!raw) return {};
  const f = (name: string) => (prefix ? `${prefix}.${name}` : name);
  const out: { -readonly [K in keyof AuditLogFilter]: AuditLogFilter[K] } = {};
  if (present(raw.from)) out.from = parseTime(raw.from, f('from'));
  if (present(raw.to)) out.to = parseTime(raw.to, f('to'));
  if (out.from && out.to && out.from.getTime() >= out.to.getTime()) {
    throw new ValidationError(f('to'), `${f('to')}: must be after ${f('from')}`);
  }
  const ids = [
    ['gatewayId', 'Gateway'],
    ['serverId', 'Server'],
    ['connectionId', 'Connection'],
    ['hostId', 'Host'],
    ['userId', 'User'],
    ['teamId', 'Team'],
  ] as const;
  for (const [key, typename] of ids) {
    const value = raw[key];
    if (present(value)) out[key] = decodeIdOf(typename, String(value), f(key));
  }
  if (present(raw.feature)) out.feature = text(raw.feature, f('feature'), 500);
  if (present(raw.method)) out.method = text(raw.method, f('method'), 200);
  if (raw.status && raw.status.length > 0) out.status = oneOf(raw.status, AUDIT_STATUSES, f('status'));
  if (raw.leg && raw.leg.length > 0) out.leg = oneOf(raw.leg, AUDIT_LEGS, f('leg'));
  if (present(raw.correlationId)) {
    const id = raw.correlationId.trim();
    if (!UUID.test(id)) throw new ValidationError(f('correlationId'), `${f('correlationId')}: must be a UUID`);
    out.correlationId = id.toLowerCase();
  }
  if (present(raw.search)) {
    out.search = text(raw.search, f('search'), 200);
    const to = out.to ?? now;
    out.from ??= new Date(to.getTime() - MAX_WINDOW_DAYS * DAY_MS);
    if (to.getTime() - out.from.getTime() > MAX_WINDOW_DAYS * DAY_MS) {
      throw new ValidationError(f('search'), `${f('search')}: free-text search spans at most ${MAX_WINDOW_DAYS} days; narrow ${f('from')} and ${f('to')}`);
    }
  }
  return out;
}

/** Escapes LIKE metacharacters so a search matches its text literally. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The WHERE conditions of a filter inside one workspace, for any query over
 * `audit_entries`. Bodies are searched only when the viewer may see them, so a search
 * cannot be used to probe what a body contains.
 */
export function auditFilterConditions(
  eb: ExpressionBuilder<AuditReadDB, 'audit_entries'>,
  workspaceId: string,
  filter: AuditLogFilter,
  options: { readonly searchBodies: boolean },
): Expression<SqlBool> {
  const c: Expression<SqlBool>[] = [eb('audit_entries.workspace_id', '=', workspaceId)];
  if (filter.from) c.push(eb('audit_entries.occurred_at', '>=', filter.from));
  if (filter.to) c.push(eb('audit_entries.occurred_at', '<', filter.to));
  if (filter.gatewayId) c.push(eb('audit_entries.gateway_id', '=', filter.gatewayId));
  if (filter.serverId) c.push(eb('audit_entries.server_id', '=', filter.serverId));
  if (filter.connectionId) c.push(eb('audit_entries.connection_id', '=', filter.connectionId));
  if (filter.hostId) c.push(eb('audit_entries.host_id', '=', filter.hostId));
  if (filter.userId) c.push(eb('audit_entries.user_id', '=', filter.userId));
  if (filter.teamId) {
    c.push(
      eb(
        'audit_entries.user_id',
        'in',
        eb.selectFrom('team_members').select('team_members.user_id').where('team_members.workspace_id', '=', workspaceId).where('team_members.team_id', '=', filter.teamId),
      ),
    );
  }
  if (filter.feature) c.push(eb('audit_entries.feature_name', '=', filter.feature));
  if (filter.method) c.push(eb('audit_entries.method', '=', filter.method));
  if (filter.status) c.push(eb('audit_entries.status', 'in', [...filter.status]));
  if (filter.leg) c.push(eb('audit_entries.leg', 'in', [...filter.leg]));
  if (filter.correlationId) c.push(eb('audit_entries.correlation_id', '=', filter.correlationId));
  if (filter.search) {
    const pattern = likePattern(filter.search);
    const columns = ['audit_entries.method', 'audit_entries.feature_name', 'audit_entries.error_message'] as const;
    const ors: Expression<SqlBool>[] = columns.map((col) => eb(col, 'ilike', pattern));
    if (options.searchBodies) ors.push(eb('audit_entries.body', 'ilike', pattern));
    c.push(eb.or(ors));
  }
  return eb.and(c);
}

/** Applies {@link auditFilterConditions} to a query. */
export function whereAuditFilter<O>(
  qb: SelectQueryBuilder<AuditReadDB, 'audit_entries', O>,
  workspaceId: string,
  filter: AuditLogFilter,
  options: { readonly searchBodies: boolean },
): SelectQueryBuilder<AuditReadDB, 'audit_entries', O> {
  return qb.where((eb) => auditFilterConditions(eb, workspaceId, filter, options));
}

/** A filter as JSON-safe data (for export tokens), and back. */
export function serializeFilter(filter: AuditLogFilter): Record<string, unknown> {
  return Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]));
}

export function deserializeFilter(data: Record<string, unknown>): AuditLogFilter {
  const out: Record<string, unknown> = { ...data };
  for (const key of ['from', 'to'] as const) if (typeof out[key] === 'string') out[key] = new Date(out[key] as string);
  return out as AuditLogFilter;
}

/** Microsecond-exact UTC text of `occurred_at`, for cursors that must not lose precision. */
export const occurredAtText = sql<string>`to_char(audit_entries.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
