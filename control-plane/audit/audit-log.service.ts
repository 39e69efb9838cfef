import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import type { AuditLeg } from '../../schema/audit/types.js';
import { can, requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { parseInput } from '../shared/input.js';
import { auditFilterConditions, occurredAtText, type AuditLogFilter } from './audit-log.filter.js';
import { auditDb, type AuditEntryRow, type AuditReadDB } from './audit-log.table.js';

/** An entry as read: bodies and headers only when asked for, plus its exact time for cursors. */
export type AuditEntryView = Omit<AuditEntryRow, 'body' | 'headers'> & {
  readonly body?: string | null;
  readonly headers?: Record<string, string> | null;
  /** `occurred_at` in UTC with microseconds (`2024-05-01T12:00:00.123456Z`). */
  readonly occurred_at_us: string;
};

export interface AuditPageArgs {
  readonly first?: number | null;
  readonly after?: string | null;
  readonly last?: number | null;
  readonly before?: string | null;
}

export interface AuditPage {
  readonly edges: { readonly cursor: string; readonly node: AuditEntryView }[];
  readonly pageInfo: { readonly hasNextPage: boolean; readonly hasPreviousPage: boolean; readonly startCursor: string | null; readonly endCursor: string | null };
}

export interface AuditCallView {
  readonly correlationId: string;
  readonly entries: readonly AuditEntryView[];
}

export const DEFAULT_PAGE = 20;
export const MAX_PAGE = 100;
/** A call has few legs (a list fan-out two per upstream); more than this is cut. */
const MAX_CALL_LEGS = 1000;

const METADATA_COLUMNS = [
  'id',
  'occurred_at',
  'workspace_id',
  'correlation_id',
  'leg',
  'status',
  'duration_ms',
  'gateway_ms',
  'upstream_ms',
  'gateway_id',
  'server_id',
  'assignment_id',
  'host_id',
  'connection_id',
  'token_id',
  'user_id',
  'client_name',
  'client_version',
  'session_ref',
  'method',
  'feature_name',
  'json_rpc_id',
  'error_code',
  'error_message',
  'policy_actions',
  'body_truncated',
  'input_tokens',
  'output_tokens',
  'bytes_in',
  'bytes_out',
  'origin_ip',
  'user_agent',
  'data_plane_id',
  'data_plane_instance',
  'snapshot_version',
  'ingested_at',
] as const;

/** The columns a read selects; bodies and headers only for viewers who may see them. */
export function entryColumns(withBodies: boolean) {
  const cols = METADATA_COLUMNS.map((c) => `audit_entries.${c}` as const);
  return withBodies ? [...cols, 'audit_entries.body' as const, 'audit_entries.headers' as const] : cols;
}

const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([0-9a-f-]{36})$/;

export function encodeCursor(e: { occurred_at_us: string; id: string }): string {
  return Buffer.from(`${e.occurred_at_us}|${e.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, field: string): { at: string; id: string } {
  const m = CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new ValidationError(field, `${field}: not a cursor of this list`);
  return { at: m[1]!, id: m[2]! };
}

/** Legs of one call recorded in the same microsecond, in the order they happen. */
const LEG_ORDER: Record<AuditLeg, number> = {
  client_request: 0,
  upstream_request: 1,
  relayed_request: 2,
  relayed_response: 3,
  policy_action: 4,
  upstream_response: 5,
  client_response: 6,
};

const retentionInput = z.object({ retentionDays: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(3650, 'must be at most 3650 days') });

/**
 * Reads the audit trail: a keyset-paginated, newest-first list under any filter, the legs
 * of one call, and the retention setting. Every read is confined to the viewer's
 * workspace and needs `logging.view`; bodies and headers are read from the database only
 * for viewers holding `logging.view_bodies`.
 */
export class AuditLogService {
  private readonly db: Kysely<AuditReadDB>;

  constructor(private readonly database: Database) {
    this.db = auditDb(database.db);
  }

  /** Newest first on `(occurred_at, id)`. `first`/`after` page back in time, `last`/`before` forward. */
  async list(viewer: Viewer, filter: AuditLogFilter, args: AuditPageArgs): Promise<AuditPage> {
    requireCapability(viewer, 'logging.view');
    const withBodies = can(viewer, 'logging.view_bodies');
    if ((args.first != null || args.after != null) && (args.last != null || args.before != null)) {
      throw new ValidationError('last', 'last: page with first/after or with last/before, not both');
    }
    const backward = args.last != null || args.before != null;
    const size = backward ? args.last : args.first;
    if (size != null && (size < 1 || size > MAX_PAGE)) {
      throw new ValidationError(backward ? 'last' : 'first', `${backward ? 'last' : 'first'}: must be from 1 to ${MAX_PAGE}`);
    }
    const limit = size ?? DEFAULT_PAGE;
    const cursorArg = backward ? args.before : args.after;
    const cursor = cursorArg ? decodeCursor(cursorArg, backward ? 'before' : 'after') : undefined;

    let q = this.db
      .selectFrom('audit_entries')
      .select(entryColumns(withBodies))
      .select(occurredAtText.as('occurred_at_us'))
      .where((eb) => auditFilterConditions(eb, viewer.workspaceId, filter, { searchBodies: withBodies }));
    if (cursor) {
      q = backward
        ? q.where(sql<boolean>`(audit_entries.occurred_at, audit_entries.id) > (${cursor.at}::timestamptz, ${cursor.id}::uuid)`)
        : q.where(sql<boolean>`(audit_entries.occurred_at, audit_entries.id) < (${cursor.at}::timestamptz, ${cursor.id}::uuid)`);
    }
    const dir = backward ? 'asc' : 'desc';
    const rows = (await q.orderBy('audit_entries.occurred_at', dir).orderBy('audit_entries.id', dir).limit(limit + 1).execute()) as AuditEntryView[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    if (backward) page.reverse();
    const edges = page.map((node) => ({ cursor: encodeCursor(node), node }));
    return {
      edges,
      pageInfo: {
        hasNextPage: backward ? cursor !== undefined : more,
        hasPreviousPage: backward ? more : cursor !== undefined,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
    };
  }

  /** Every leg of one call, in the order they happened; null when the workspace has none. */
  async call(viewer: Viewer, correlationId: string): Promise<AuditCallView | null> {
    requireCapability(viewer, 'logging.view');
    const id = correlationId.trim().toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
      throw new ValidationError('correlationId', 'correlationId: must be a UUID');
    }
    const rows = (await this.db
      .selectFrom('audit_entries')
      .select(entryColumns(can(viewer, 'logging.view_bodies')))
      .select(occurredAtText.as('occurred_at_us'))
      .where('audit_entries.workspace_id', '=', viewer.workspaceId)
      .where('audit_entries.correlation_id', '=', id)
      .orderBy('audit_entries.occurred_at')
      .limit(MAX_CALL_LEGS)
      .execute()) as AuditEntryView[];
    if (rows.length === 0) return null;
    rows.sort((a, b) => a.occurred_at_us.localeCompare(b.occurred_at_us) || LEG_ORDER[a.leg] - LEG_ORDER[b.leg]);
    return { correlationId: id, entries: rows };
  }

  async retentionDays(workspaceId: string): Promise<number> {
    const row = await sql<{ days: number }>`SELECT audit_retention_days AS days FROM workspaces WHERE id = ${workspaceId}`.execute(this.database.db);
    if (!row.rows[0]) throw new NotFoundError('Workspace', workspaceId);
    return row.rows[0].days;
  }

  /** Sets how many days of audit entries the workspace keeps; the retention job drops older ones. */
  async updateSettings(viewer: Viewer, rawInput: unknown): Promise<{ retentionDays: number }> {
    requireCapability(viewer, 'workspace.manage_settings');
    const input = parseInput(retentionInput, rawInput);
    return this.database.db.transaction().execute(async (trx) => {
      const res = await sql<{ previous: number }>`
        UPDATE workspaces SET audit_retention_days = ${input.retentionDays}, updated_at = now()
        FROM (SELECT audit_retention_days AS previous FROM workspaces WHERE id = ${viewer.workspaceId} FOR UPDATE) p
        WHERE id = ${viewer.workspaceId}
        RETURNING p.previous`.execute(trx);
      const previous = res.rows[0]?.previous;
      if (previous === undefined) throw new NotFoundError('Workspace', viewer.workspaceId);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
        type: 'workspace.audit_settings_updated',
        subjectType: 'Workspace',
        subjectId: viewer.workspaceId,
        details: { retentionDays: input.retentionDays, previousRetentionDays: previous },
      });
      return { retentionDays: input.retentionDays };
    });
  }
}
