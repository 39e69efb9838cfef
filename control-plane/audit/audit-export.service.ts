import { sql, type Kysely } from 'kysely';
import { can, requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import { ForbiddenError, UnauthenticatedError } from '../errors.js';
import type { Vault } from '../identities/vault.js';
import type { SealedSecret } from '../servers/server.table.js';
import { auditFilterConditions, deserializeFilter, occurredAtText, serializeFilter, type AuditLogFilter } from './audit-log.filter.js';
import { entryColumns, type AuditEntryView } from './audit-log.service.js';
import { auditDb, type AuditReadDB } from './audit-log.table.js';

export const AUDIT_EXPORT_PATH = '/export/audit';
export const EXPORT_FORMATS = ['csv', 'json', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** How long a link from `auditExportUrl` can start a download. A download that has started runs to its end. */
export const EXPORT_LINK_TTL_MS = 10 * 60_000;
/** Rows per keyset batch: one query, one write to the socket. */
export const EXPORT_BATCH_ROWS = 1000;

const TOKEN_CONTEXT = 'audit-export-link:v1';

export interface ExportRequest {
  readonly viewer: Viewer;
  readonly filter: AuditLogFilter;
  readonly format: ExportFormat;
  readonly includeBodies: boolean;
}

interface LinkPayload {
  readonly v: 1;
  readonly ws: string;
  readonly key: string;
  readonly f: Record<string, unknown>;
  readonly fmt: ExportFormat;
  readonly b: boolean;
  readonly exp: number;
}

export interface ExportLink {
  readonly url: string;
  readonly expiresAt: Date;
  readonly format: ExportFormat;
}

/**
 * Streams audit entries out as CSV, a JSON array or NDJSON. A download is authorised
 * either by an admin API key in the Authorization header or by a link token from
 * `auditExportUrl`: the filter, format and issuing key sealed with the vault (AES-GCM, so
 * any control-plane process with the keyring can check it and nobody can alter it). The
 * issuing key's role is read again when the download starts, so a revoked key or a
 * removed capability stops its links at once.
 */
export class AuditExportService {
  private readonly db: Kysely<AuditReadDB>;
  private baseUrl = 'http://localhost:4000';

  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
  ) {
    this.db = auditDb(database.db);
  }

  /** The base URL links point at (the public URL, or the listening address). */
  useBaseUrl(url: string): void {
    this.baseUrl = url.replace(/\/+$/, '');
  }

  authorize(viewer: Viewer, includeBodies: boolean): void {
    requireCapability(viewer, 'logging.export');
    if (includeBodies) requireCapability(viewer, 'logging.view_bodies');
  }

  createLink(viewer: Viewer, filter: AuditLogFilter, format: ExportFormat, includeBodies: boolean, now = Date.now()): ExportLink {
    this.authorize(viewer, includeBodies);
    if (!viewer.apiKeyId) throw new ForbiddenError('logging.export', 'export links are issued to admin API keys only');
    const exp = now + EXPORT_LINK_TTL_MS;
    const payload: LinkPayload = { v: 1, ws: viewer.workspaceId, key: viewer.apiKeyId, f: serializeFilter(filter), fmt: format, b: includeBodies, exp };
    const sealed = this.vault.seal(JSON.stringify(payload), TOKEN_CONTEXT);
    const token = Buffer.from(JSON.stringify([sealed.keyId, sealed.iv, sealed.tag, sealed.ciphertext])).toString('base64url');
    return { url: `${this.baseUrl}${AUDIT_EXPORT_PATH}?token=${token}`, expiresAt: new Date(exp), format };
  }

  /** Opens a link token; throws {@link UnauthenticatedError} for a forged, altered or expired one or a revoked key. */
  async redeemLink(token: string, now = Date.now()): Promise<ExportRequest> {
    let payload: LinkPayload;
    try {
      if (token.length > 16_000) throw new Error('too long');
      const [keyId, iv, tag, ciphertext] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as string[];
      const sealed: SealedSecret = { keyId: String(keyId), iv: String(iv), tag: String(tag), ciphertext: String(ciphertext) };
      payload = JSON.parse(this.vault.open(sealed, TOKEN_CONTEXT)) as LinkPayload;
    } catch {
      throw new UnauthenticatedError('the export link is not valid');
    }
    if (payload.v !== 1 || typeof payload.exp !== 'number') throw new UnauthenticatedError('the export link is not valid');
    if (payload.exp < now) throw new UnauthenticatedError('the export link has expired; ask for a new one with auditExportUrl');
    const viewer = await this.viewerOfKey(payload.ws, payload.key);
    if (!viewer) throw new UnauthenticatedError('the API key that issued this export link is revoked');
    return { viewer, filter: deserializeFilter(payload.f), format: payload.fmt, includeBodies: payload.b };
  }

  /** The viewer of an admin key by id, with its role's capabilities as they are now; null when revoked or unknown. */
  private async viewerOfKey(workspaceId: string, apiKeyId: string): Promise<Viewer | null> {
    const rows = await this.database.db
      .selectFrom('api_keys as k')
      .leftJoin('role_capabilities as c', (j) => j.onRef('c.role_id', '=', 'k.role_id').onRef('c.workspace_id', '=', 'k.workspace_id'))
      .select(['k.id', 'k.role_id', 'k.revoked_at', 'c.capability'])
      .where('k.workspace_id', '=', workspaceId)
      .where('k.id', '=', apiKeyId)
      .execute();
    const key = rows[0];
    if (!key || key.revoked_at !== null) return null;
    return {
      workspaceId,
      actor: `api_key:${key.id}`,
      apiKeyId: key.id,
      roleId: key.role_id,
      capabilities: new Set(rows.flatMap((r) => (r.capability ? [r.capability] : []))),
    };
  }

  /**
   * The filter's entries oldest first, in keyset batches of {@link EXPORT_BATCH_ROWS}: one
   * batch in memory at a time, whatever the total. The export ends at the time it started
   * (or the filter's `to`), so entries arriving meanwhile do not make it run forever.
   */
  async *batches(request: ExportRequest, batchRows = EXPORT_BATCH_ROWS): AsyncGenerator<AuditEntryView[]> {
    const { viewer, filter, includeBodies } = request;
    this.authorize(viewer, includeBodies);
    const now = new Date();
    const bounded: AuditLogFilter = { ...filter, to: filter.to && filter.to < now ? filter.to : now };
    const searchBodies = can(viewer, 'logging.view_bodies');
    let cursor: { at: string; id: string } | undefined;
    for (;;) {
      let q = this.db
        .selectFrom('audit_entries')
        .select(entryColumns(includeBodies))
        .select(occurredAtText.as('occurred_at_us'))
        .where((eb) => auditFilterConditions(eb, viewer.workspaceId, bounded, { searchBodies }));
      if (cursor) q = q.where(sql<boolean>`(audit_entries.occurred_at, audit_entries.id) > (${cursor.at}::timestamptz, ${cursor.id}::uuid)`);
      const rows = (await q.orderBy('audit_entries.occurred_at').orderBy('audit_entries.id').limit(batchRows).execute()) as AuditEntryView[];
      if (rows.length === 0) return;
      yield rows;
      if (rows.length < batchRows) return;
      const last = rows.at(-1)!;
      cursor = { at: last.occurred_at_us, id: last.id };
    }
  }
}
