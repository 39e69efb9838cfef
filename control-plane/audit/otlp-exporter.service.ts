import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { can, requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, isUniqueViolation } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import type { Vault } from '../identities/vault.js';
import type { Logger } from '../logger.js';
import type { SealedSecret } from '../servers/server.table.js';
import { displayName, parseInput } from '../shared/input.js';
import { entryColumns, type AuditEntryView } from './audit-log.service.js';
import { occurredAtText } from './audit-log.filter.js';
import { auditDb, type AuditReadDB, type LogExporterPreset, type LogExporterRow } from './audit-log.table.js';
import { CONTENT_TYPES, encodeLogs } from './otlp-encode.js';
import { OTLP_PRESET_NAMES, completeEndpoint, presetOf } from './otlp-presets.js';

export interface LogExporterOptions {
  readonly logger?: Logger;
  /** How often the background loop looks for due exporters, ms. Default 1000. */
  readonly intervalMs?: number;
  /** First retry delay, doubled per consecutive failure, ms. Default 1000. */
  readonly backoffBaseMs?: number;
  /** Longest retry delay, ms. Default 300000 (5 minutes). */
  readonly backoffMaxMs?: number;
  /** Deadline of one POST to a collector, ms. Default 10000. */
  readonly requestTimeoutMs?: number;
  /** Batches one exporter sends per turn before yielding to the others. Default 20. */
  readonly maxBatchesPerTurn?: number;
  /**
   * Poll interval while no exporter is enabled, ms. Default 15000. Changes made through this
   * process wake the loop at once; one made on another control plane starts within this.
   */
  readonly idleIntervalMs?: number;
}

/** Result of one POST, as the delivery loop and `testLogExporter` see it. */
export interface DeliveryResult {
  readonly ok: boolean;
  /** The collector's HTTP status; null when it could not be reached. */
  readonly httpStatus: number | null;
  readonly retryable: boolean;
  readonly error: string | null;
  /** From a 429/503's Retry-After, ms. */
  readonly retryAfterMs?: number;
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const LEASE_SECONDS = 60;
/** An open transaction older than this no longer holds back the export horizon (see {@link LogExporterService.horizon}). */
const MAX_HORIZON_LAG_SECONDS = 60;
const MAX_HEADERS = 20;
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'content-type', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'expect']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const HEADER_CONTEXT = (exporterId: string, name: string) => `log_exporter:${exporterId}:header:${name}`;

const headerInput = z.object({
  name: z
    .string()
    .trim()
    .regex(HEADER_NAME, 'must be an HTTP header name')
    .transform((s) => s.toLowerCase())
    .refine((s) => !FORBIDDEN_HEADERS.has(s) && !s.startsWith('proxy-'), 'is set by Gatehouse and cannot be configured'),
  value: z
    .string()
    .max(4096, 'must be at most 4096 characters')
    .refine((s) => !/[\r\n\u0000]/.test(s), 'must not contain line breaks')
    .nullish(),
});

const endpointInput = z
  .string()
  .trim()
  .max(2000, 'must be at most 2000 characters')
  .refine((s) => URL.canParse(s), 'must be an absolute URL')
  .refine((s) => /^https?:$/.test(new URL(s).protocol), 'must be http or https')
  .refine((s) => !new URL(s).username && !new URL(s).password, 'must not carry credentials; put them in a header')
  .refine((s) => !new URL(s).hash, 'must not have a fragment');

const createInput = z.object({
  name: displayName(),
  preset: z.enum(OTLP_PRESET_NAMES as [LogExporterPreset, ...LogExporterPreset[]]).default('collector'),
  endpoint: endpointInput.optional(),
  encoding: z.enum(['json', 'protobuf']).optional(),
  headers: z.array(headerInput).max(MAX_HEADERS, `at most ${MAX_HEADERS} headers`).default([]),
  includeBodies: z.boolean().default(false),
  enabled: z.boolean().default(true),
  batchSize: z.number().int().min(1, 'must be at least 1').max(5000, 'must be at most 5000').default(500),
  startFrom: z.date().optional(),
});

const updateInput = z.object({
  name: displayName().optional(),
  endpoint: endpointInput.optional(),
  encoding: z.enum(['json', 'protobuf']).optional(),
  headers: z.array(headerInput).max(MAX_HEADERS, `at most ${MAX_HEADERS} headers`).optional(),
  includeBodies: z.boolean().optional(),
  enabled: z.boolean().optional(),
  batchSize: z.number().int().min(1, 'must be at least 1').max(5000, 'must be at most 5000').optional(),
});

type EntryWithIngest = AuditEntryView & { ingested_at_us: string };

const clean = (text: string, max = 500) => text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, max);

function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * OTLP/HTTP log export per workspace: the exporters' configuration (custom header values
 * sealed in the vault and never returned) and the background delivery that tails newly
 * ingested audit entries.
 *
 * Delivery reads each exporter's entries by `(ingested_at, id)` after its persisted
 * cursor, sends them in batches as one `ExportLogsServiceRequest`, and moves the cursor
 * only after a 2xx, so a retry resends the same batch and nothing is lost or skipped.
 * 429, 5xx, timeouts and refused connections are retried with exponential backoff
 * (honouring Retry-After); any other 4xx stops the exporter as `failed` with the
 * collector's answer until an admin updates or retries it. Several control-plane
 * processes share the work through a lease on each exporter row.
 */
export class LogExporterService {
  private readonly db: Kysely<AuditReadDB>;
  private readonly owner = `cp:${randomUUID()}`;
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly intervalMs: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxBatchesPerTurn: number;
  private readonly idleIntervalMs: number;
  /** The last turn found no enabled exporter: poll slowly until one is configured. */
  private idle = false;

  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
    private readonly options: LogExporterOptions = {},
  ) {
    this.db = auditDb(database.db);
    this.intervalMs = options.intervalMs ?? 1000;
    this.backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.backoffMaxMs = options.backoffMaxMs ?? 300_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxBatchesPerTurn = options.maxBatchesPerTurn ?? 20;
    this.idleIntervalMs = options.idleIntervalMs ?? 15_000;
  }

  // ---------------------------------------------------------------- configuration

  list(viewer: Viewer, { limit, offset }: { limit: number; offset: number }): Promise<LogExporterRow[]> {
    requireCapability(viewer, 'integrations.view');
    return this.db.selectFrom('log_exporters').selectAll().where('workspace_id', '=', viewer.workspaceId).orderBy('name').orderBy('id').limit(limit).offset(offset).execute();
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<LogExporterRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom('log_exporters').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  async get(viewer: Viewer, id: string): Promise<LogExporterRow> {
    requireCapability(viewer, 'integrations.view');
    const row = await this.db.selectFrom('log_exporters').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('LogExporter', id);
    return row;
  }

  async create(viewer: Viewer, rawInput: unknown): Promise<LogExporterRow> {
    requireCapability(viewer, 'integrations.manage');
    const input = parseInput(createInput, rawInput);
    const preset = presetOf(input.preset);
    if (input.includeBodies && !can(viewer, 'logging.view_bodies')) {
      throw new ForbiddenError('logging.view_bodies', 'exporting bodies needs the logging.view_bodies capability, which your role does not have');
    }
    const rawEndpoint = input.endpoint ?? preset.defaultEndpoint;
    if (!rawEndpoint) throw new ValidationError('input.endpoint', `input.endpoint: ${preset.label} needs your account’s endpoint (${preset.help})`);
    const endpoint = completeEndpoint(preset, rawEndpoint);
    const encoding = input.encoding ?? preset.defaultEncoding;
    if (!preset.encodings.includes(encoding)) throw new ValidationError('input.encoding', `input.encoding: ${preset.label} accepts ${preset.encodings.join(' or ')}`);
    const id = randomUUID();
    const headers = this.sealHeaders(id, input.headers, {}, 'input.headers');
    this.requireHeaders(input.preset, Object.keys(headers));
    try {
      const saved = await this.database.db.transaction().execute(async (trx) => {
        const row = await auditDb(trx)
          .insertInto('log_exporters')
          .values({
            id,
            workspace_id: viewer.workspaceId,
            name: input.name,
            preset: input.preset,
            endpoint,
            encoding,
            headers: JSON.stringify(headers),
            include_bodies: input.includeBodies,
            enabled: input.enabled,
            batch_size: input.batchSize,
            cursor_ingested_at: input.startFrom ?? sql<Date>`now()`,
            cursor_id: NIL_UUID,
            created_by: viewer.actor,
          } as never)
          .returningAll()
          .executeTakeFirstOrThrow();
        await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
          type: 'log_exporter.created',
          subjectType: 'LogExporter',
          subjectId: id,
          details: { name: input.name, preset: input.preset, endpoint, encoding, headerNames: Object.keys(headers), includeBodies: input.includeBodies },
        });
        return row;
      });
      this.kick(); // a new or changed exporter starts now, not at the next idle poll
      return saved;
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a log exporter named "${input.name}" already exists`, 'input.name');
      throw err;
    }
  }

  /** Changes settings. Any update also resumes a failed exporter: the admin has acted on the error. */
  async update(viewer: Viewer, id: string, rawInput: unknown): Promise<LogExporterRow> {
    requireCapability(viewer, 'integrations.manage');
    const input = parseInput(updateInput, rawInput);
    if (input.includeBodies && !can(viewer, 'logging.view_bodies')) {
      throw new ForbiddenError('logging.view_bodies', 'exporting bodies needs the logging.view_bodies capability, which your role does not have');
    }
    try {
      const saved = await this.database.db.transaction().execute(async (trx) => {
        const db = auditDb(trx);
        const current = await db.selectFrom('log_exporters').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).forUpdate().executeTakeFirst();
        if (!current) throw new NotFoundError('LogExporter', id);
        const preset = presetOf(current.preset);
        const endpoint = input.endpoint !== undefined ? completeEndpoint(preset, input.endpoint) : current.endpoint;
        const encoding = input.encoding ?? current.encoding;
        if (!preset.encodings.includes(encoding)) throw new ValidationError('input.encoding', `input.encoding: ${preset.label} accepts ${preset.encodings.join(' or ')}`);
        const headers = input.headers !== undefined ? this.sealHeaders(id, input.headers, current.headers, 'input.headers') : current.headers;
        this.requireHeaders(current.preset, Object.keys(headers));
        const row = await db
          .updateTable('log_exporters')
          .set({
            ...(input.name !== undefined && { name: input.name }),
            endpoint,
            encoding,
            headers: JSON.stringify(headers),
            ...(input.includeBodies !== undefined && { include_bodies: input.includeBodies }),
            ...(input.enabled !== undefined && { enabled: input.enabled }),
            ...(input.batchSize !== undefined && { batch_size: input.batchSize }),
            ...(current.status === 'failed' || current.status === 'retrying' ? { status: 'retrying' as const, next_attempt_at: null } : {}),
            updated_at: new Date(),
          } as never)
          .where('id', '=', id)
          .where('workspace_id', '=', viewer.workspaceId)
          .returningAll()
          .executeTakeFirstOrThrow();
        await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
          type: 'log_exporter.updated',
          subjectType: 'LogExporter',
          subjectId: id,
          details: {
            ...(input.name !== undefined && { name: input.name }),
            ...(input.endpoint !== undefined && { endpoint }),
            ...(input.encoding !== undefined && { encoding }),
            ...(input.headers !== undefined && { headerNames: Object.keys(headers) }),
            ...(input.includeBodies !== undefined && { includeBodies: input.includeBodies }),
            ...(input.enabled !== undefined && { enabled: input.enabled }),
            ...(input.batchSize !== undefined && { batchSize: input.batchSize }),
          },
        });
        return row;
      });
      this.kick(); // a new or changed exporter starts now, not at the next idle poll
      return saved;
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a log exporter named "${input.name}" already exists`, 'input.name');
      throw err;
    }
  }

  async delete(viewer: Viewer, id: string): Promise<void> {
    requireCapability(viewer, 'integrations.manage');
    await this.database.db.transaction().execute(async (trx) => {
      const row = await auditDb(trx).deleteFrom('log_exporters').where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).returning(['name']).executeTakeFirst();
      if (!row) throw new NotFoundError('LogExporter', id);
      await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, { type: 'log_exporter.deleted', subjectType: 'LogExporter', subjectId: id, details: { name: row.name } });
    });
  }

  /** Resumes a failed or backing-off exporter at once, from the batch that failed. */
  async retry(viewer: Viewer, id: string): Promise<LogExporterRow> {
    requireCapability(viewer, 'integrations.manage');
    const row = await this.db
      .updateTable('log_exporters')
      .set({ status: sql`CASE WHEN status IN ('failed', 'retrying') THEN 'retrying' ELSE status END`, next_attempt_at: null, updated_at: new Date() } as never)
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new NotFoundError('LogExporter', id);
    this.kick();
    return row;
  }

  /** Sends one synthetic record to the collector now, without touching the cursor or the status. */
  async test(viewer: Viewer, id: string): Promise<DeliveryResult> {
    requireCapability(viewer, 'integrations.manage');
    const row = await this.db.selectFrom('log_exporters').selectAll().where('workspace_id', '=', viewer.workspaceId).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError('LogExporter', id);
    const now = new Date();
    const probe = {
      id: randomUUID(),
      correlation_id: randomUUID(),
      leg: 'client_response',
      status: 'ok',
      occurred_at: now,
      occurred_at_us: now.toISOString(),
      ingested_at: now,
      ingested_at_us: now.toISOString(),
      method: 'gatehouse/test',
      feature_name: null,
      duration_ms: 0,
      policy_actions: [],
      body_truncated: false,
      data_plane_instance: 'control-plane',
      workspace_id: viewer.workspaceId,
    } as unknown as EntryWithIngest;
    return this.post(row, [probe], await this.workspaceName(viewer.workspaceId));
  }

  private sealHeaders(
    exporterId: string,
    headers: readonly { name: string; value?: string | null | undefined }[],
    existing: Record<string, SealedSecret>,
    field: string,
  ): Record<string, SealedSecret> {
    const out: Record<string, SealedSecret> = {};
    headers.forEach((h, i) => {
      if (out[h.name]) throw new ValidationError(`${field}.${i}.name`, `${field}.${i}.name: "${h.name}" is given twice`);
      if (h.value === null || h.value === undefined) {
        const kept = existing[h.name];
        if (!kept) throw new ValidationError(`${field}.${i}.value`, `${field}.${i}.value: required for a new header`);
        out[h.name] = kept;
      } else {
        out[h.name] = this.vault.seal(h.value, HEADER_CONTEXT(exporterId, h.name));
      }
    });
    return out;
  }

  private requireHeaders(preset: LogExporterPreset, names: readonly string[]): void {
    const missing = presetOf(preset).requiredHeaders.filter((h) => !names.includes(h));
    if (missing.length) throw new ValidationError('input.headers', `input.headers: ${presetOf(preset).label} needs the header ${missing.join(', ')}`);
  }

  private async workspaceName(workspaceId: string): Promise<string> {
    const row = await this.db.selectFrom('workspaces').select('name').where('id', '=', workspaceId).executeTakeFirst();
    return row?.name ?? '';
  }

  // ---------------------------------------------------------------- delivery

  /** Starts the background loop (idempotent). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(this.intervalMs);
  }

  /** Stops the loop and waits for a turn in progress; leases are released so another process can continue. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Runs a turn soon (after a retry request), unless stopped. */
  private kick(): void {
    if (!this.stopped) this.schedule(0);
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.running = this.deliverDue()
        .catch((err) => this.options.logger?.warn({ err }, 'log export turn failed'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule(this.idle ? this.idleIntervalMs : this.intervalMs);
        });
    }, delay);
    this.timer.unref();
  }

  /** One turn: every enabled exporter that is due, a few at a time. Resolves when the turn is done. */
  async deliverDue(): Promise<void> {
    const active = await this.db
      .selectFrom('log_exporters')
      .select([
        'id',
        sql<boolean>`(next_attempt_at IS NULL OR next_attempt_at <= now()) AND (lease_until IS NULL OR lease_until < now() OR lease_owner = ${this.owner})`.as('due'),
      ])
      .where('enabled', '=', true)
      .where('status', '<>', 'failed')
      .orderBy('next_attempt_at')
      .limit(100)
      .execute();
    this.idle = active.length === 0;
    const queue = active.filter((d) => d.due && !this.inFlight.has(d.id));
    const workers = Array.from({ length: Math.min(4, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await this.deliverOne(next.id).catch((err) => this.options.logger?.warn({ err, exporterId: next.id }, 'log exporter turn failed'));
      }
    });
    await Promise.all(workers);
  }

  /**
   * The newest `ingested_at` every entry at or before which is committed. `ingested_at` is
   * the inserting transaction's start time, so an entry still being inserted carries a time
   * no later than its transaction's start: reading only below the oldest transaction still
   * open means a later commit can never land behind the cursor. A transaction open longer
   * than a minute stops holding the horizon back. PGlite has one connection: nothing else
   * is ever open.
   */
  private async horizon(): Promise<string> {
    if (this.database.kind === 'pglite') {
      return (await sql<{ h: string }>`SELECT now()::text AS h`.execute(this.database.db)).rows[0]!.h;
    }
    const res = await sql<{ h: string }>`
      SELECT GREATEST(now() - make_interval(secs => ${MAX_HORIZON_LAG_SECONDS}), LEAST(now(), coalesce(min(xact_start), now())))::text AS h
      FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`.execute(this.database.db);
    return res.rows[0]!.h;
  }

  private async deliverOne(id: string): Promise<void> {
    this.inFlight.add(id);
    try {
      const claimed = await this.db
        .updateTable('log_exporters')
        .set({ lease_owner: this.owner, lease_until: sql<Date>`now() + make_interval(secs => ${LEASE_SECONDS})` } as never)
        .where('id', '=', id)
        .where('enabled', '=', true)
        .where('status', '<>', 'failed')
        .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', sql<Date>`now()`)]))
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', sql<Date>`now()`), eb('lease_owner', '=', this.owner)]))
        .returningAll()
        .executeTakeFirst();
      if (!claimed) return;
      let exporter = claimed;
      const workspaceName = await this.workspaceName(exporter.workspace_id);
      try {
        for (let turn = 0; turn < this.maxBatchesPerTurn; turn++) {
          const batch = await this.nextBatch(exporter);
          if (batch.length === 0) return;
          const result = await this.post(exporter, batch, workspaceName);
          const next = await this.record(exporter, batch, result);
          if (!next || !result.ok || batch.length < exporter.batch_size) return;
          exporter = next;
        }
      } finally {
        await this.db
          .updateTable('log_exporters')
          .set({ lease_owner: null, lease_until: null } as never)
          .where('id', '=', id)
          .where('lease_owner', '=', this.owner)
          .execute();
      }
    } finally {
      this.inFlight.delete(id);
    }
  }

  private async nextBatch(exporter: LogExporterRow): Promise<EntryWithIngest[]> {
    const horizon = await this.horizon();
    // The cursor as exact text: a JS Date would cut it to milliseconds and resend the rest of its millisecond.
    const cursor = await sql<{ at: string; id: string | null }>`
      SELECT to_char(cursor_ingested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, cursor_id::text AS id
      FROM log_exporters WHERE id = ${exporter.id}`.execute(this.database.db);
    const at = cursor.rows[0];
    if (!at) return [];
    return (await this.db
      .selectFrom('audit_entries')
      .select(entryColumns(exporter.include_bodies))
      .select(occurredAtText.as('occurred_at_us'))
      .select(sql<string>`to_char(audit_entries.ingested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('ingested_at_us'))
      .where('audit_entries.workspace_id', '=', exporter.workspace_id)
      .where(sql<boolean>`(audit_entries.ingested_at, audit_entries.id) > (${at.at}::timestamptz, ${at.id ?? NIL_UUID}::uuid)`)
      .where(sql<boolean>`audit_entries.ingested_at < ${horizon}::timestamptz`)
      .orderBy('audit_entries.ingested_at')
      .orderBy('audit_entries.id')
      .limit(exporter.batch_size)
      .execute()) as EntryWithIngest[];
  }

  /** Stores the outcome of one POST under the lease; returns the updated row, or null when the lease was lost. */
  private async record(exporter: LogExporterRow, batch: readonly EntryWithIngest[], result: DeliveryResult): Promise<LogExporterRow | null> {
    const base = this.db.updateTable('log_exporters').where('id', '=', exporter.id).where('lease_owner', '=', this.owner);
    if (result.ok) {
      const last = batch.at(-1)!;
      const row = await base
        .set({
          cursor_ingested_at: sql<Date>`${last.ingested_at_us}::timestamptz`,
          cursor_id: last.id,
          delivered_count: sql<string>`delivered_count + ${batch.length}`,
          status: 'ok',
          consecutive_failures: 0,
          next_attempt_at: null,
          last_attempt_at: sql<Date>`now()`,
          last_success_at: sql<Date>`now()`,
          lease_until: sql<Date>`now() + make_interval(secs => ${LEASE_SECONDS})`, // a long turn keeps its lease
          ...(result.error ? { last_error: result.error, last_error_at: sql<Date>`now()` } : {}),
        } as never)
        .returningAll()
        .executeTakeFirst();
      return row ?? null;
    }
    const failures = exporter.consecutive_failures + 1;
    if (!result.retryable) {
      this.options.logger?.warn({ exporterId: exporter.id, httpStatus: result.httpStatus }, 'log exporter failed: the collector refused the batch');
      await base
        .set({ status: 'failed', consecutive_failures: failures, next_attempt_at: null, last_attempt_at: sql<Date>`now()`, last_error: result.error, last_error_at: sql<Date>`now()` } as never)
        .execute();
      return null;
    }
    const backoff = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(failures - 1, 20));
    const jittered = Math.round(backoff * (0.8 + Math.random() * 0.4));
    const delay = Math.min(this.backoffMaxMs, Math.max(jittered, result.retryAfterMs ?? 0));
    await base
      .set({
        status: 'retrying',
        consecutive_failures: failures,
        next_attempt_at: sql<Date>`now() + make_interval(secs => ${delay / 1000})`,
        last_attempt_at: sql<Date>`now()`,
        last_error: result.error,
        last_error_at: sql<Date>`now()`,
      } as never)
      .execute();
    return null;
  }

  /** POSTs one ExportLogsServiceRequest and classifies the answer. Never throws. */
  private async post(exporter: LogExporterRow, batch: readonly EntryWithIngest[], workspaceName: string): Promise<DeliveryResult> {
    let body: Uint8Array;
    const headers: Record<string, string> = { ...presetOf(exporter.preset).fixedHeaders, 'content-type': CONTENT_TYPES[exporter.encoding], 'user-agent': 'gatehouse-audit-export' };
    try {
      body = encodeLogs(batch, { workspaceId: exporter.workspace_id, workspaceName }, exporter.encoding, exporter.include_bodies);
      for (const [name, sealed] of Object.entries(exporter.headers)) headers[name] = this.vault.open(sealed, HEADER_CONTEXT(exporter.id, name));
    } catch (err) {
      return { ok: false, httpStatus: null, retryable: false, error: clean(`could not build the request: ${(err as Error).message}`) };
    }
    let res: Response;
    try {
      res = await fetch(exporter.endpoint, { method: 'POST', headers, body: body as Uint8Array<ArrayBuffer>, signal: AbortSignal.timeout(this.requestTimeoutMs), redirect: 'error' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${this.requestTimeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
      return { ok: false, httpStatus: null, retryable: true, error: clean(`could not reach the collector: ${reason}`) };
    }
    const text = await readSome(res, 4096);
    const contentType = res.headers.get('content-type') ?? '';
    const detail = /json|text/.test(contentType) ? clean(text) : text ? `${text.length} bytes of ${contentType || 'data'}` : '';
    if (res.ok) {
      // A partial success still moves on: the OTLP spec says rejected records must not be resent.
      const rejected = /json/.test(contentType) ? partialRejection(text) : null;
      return { ok: true, httpStatus: res.status, retryable: false, error: rejected };
    }
    const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
    return {
      ok: false,
      httpStatus: res.status,
      retryable,
      error: clean(`HTTP ${res.status}${detail ? `: ${detail}` : ''}`),
      ...(retryable && { retryAfterMs: retryAfterMs(res.headers.get('retry-after')) }),
    };
  }
}

/** Reads at most `max` characters of a response body and drops the rest. */
async function readSome(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < max) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // a body cut short is still a status
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return text.slice(0, max);
}

function partialRejection(text: string): string | null {
  try {
    const p = (JSON.parse(text) as { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } }).partialSuccess;
    const n = Number(p?.rejectedLogRecords ?? 0);
    return n > 0 ? clean(`the collector rejected ${n} records: ${p?.errorMessage ?? ''}`) : null;
  } catch {
    return null;
  }
}
