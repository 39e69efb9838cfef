import { createHash, randomUUID } from 'node:crypto';
import { Repeater } from 'graphql-yoga';
import { sql, type Kysely } from 'kysely';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import { recordWorkspaceEvent, type WorkspaceEvent } from '../events/workspace-events.js';
import type { Logger } from '../logger.js';
import { ALERT_SEVERITIES, ALERT_TYPES, SEVERITY_RANK, type AlertRow, type AlertSeverity, type AlertType } from './alert.table.js';

/** What `AlertService.raise` takes. */
export interface RaiseAlertInput {
  readonly workspaceId: string;
  readonly type: AlertType;
  readonly severity: AlertSeverity;
  /** One line a person reads in a list; trimmed, cut at 500 characters. */
  readonly subject: string;
  /** Anything that helps act on it; JSON, at most 16 KiB serialized (larger is replaced by a preview). */
  readonly details?: Record<string, unknown>;
  /**
   * Occurrences with the same type and fold key fold into one alert while it is unresolved
   * and the last occurrence is within the fold window. Default: `subjectRef` as
   * `<type>:<id>` when given, else the subject.
   */
  readonly foldKey?: string;
  /** The one object the alert is about, when there is one (`{ type: 'Server', id }`, a database id). */
  readonly subjectRef?: { readonly type: string; readonly id: string };
  /** Occurrences this call reports at once (a batch of rule hits). Default 1. */
  readonly occurrences?: number;
  /** Recorded as the actor of the `alert.raised`/`alert.updated` workspace event. Default `system`. */
  readonly actor?: string;
}

/** How a subscriber sees an alert change. */
export type AlertChange = 'raised' | 'updated' | 'acknowledged' | 'resolved';

export type AlertStreamItem =
  | { readonly change: AlertChange; readonly alert: AlertRow }
  /** The subscriber lost the right to watch (key revoked, capability removed): the stream ends after it. */
  | { readonly revoked: string };

export interface AlertFilter {
  readonly severities?: readonly AlertSeverity[] | null;
  readonly severityAtLeast?: AlertSeverity | null;
  readonly types?: readonly AlertType[] | null;
  /** OPEN: neither acknowledged nor resolved; ACKNOWLEDGED: acknowledged, unresolved; RESOLVED. */
  readonly states?: readonly ('OPEN' | 'ACKNOWLEDGED' | 'RESOLVED')[] | null;
  /** Alerts active at or after this time (last occurrence ≥ from). */
  readonly from?: Date | null;
  /** Alerts active at or before this time (first occurrence ≤ to). */
  readonly to?: Date | null;
}

export interface AlertSubscriptionFilter {
  readonly severityAtLeast?: AlertSeverity | null;
  readonly types?: readonly AlertType[] | null;
}

export interface AlertServiceOptions {
  /** Identical occurrences this close to the last one fold into it, in ms. Default 600000 (10 minutes). */
  readonly foldWindowMs?: number;
  readonly logger?: Logger;
}

/** Workspace event types the service records; subscribers of every process receive them. */
export const ALERT_EVENT_PREFIX = 'alert.';
const MAX_SUBJECT = 500;
const MAX_FOLD_KEY = 500;
const MAX_DETAILS_BYTES = 16 * 1024;
const TYPES = new Set<string>(ALERT_TYPES);
const SEVERITIES = new Set<string>(ALERT_SEVERITIES);

/**
 * Alerts: raised by the control plane's own sources (discovery, provisioning, data-plane
 * snapshot rejections, access requests) and by audit ingest, folded when identical, stored,
 * and pushed to subscribers of every control-plane process as workspace events
 * (`alert.raised`, `alert.updated`, `alert.acknowledged`, `alert.resolved`), which travel
 * by NOTIFY when their transaction commits.
 */
export class AlertService {
  private readonly foldWindowMs: number;
  private subscribers = 0;

  constructor(
    private readonly database: Database,
    private readonly events: EventBus,
    private readonly options: AlertServiceOptions = {},
  ) {
    const window = options.foldWindowMs ?? 600_000;
    if (!Number.isFinite(window) || window < 0) throw new RangeError('options.foldWindowMs must be a non-negative number of milliseconds');
    this.foldWindowMs = window;
  }

  /**
   * Records one occurrence (or `occurrences`) of an alert and returns the stored alert: a
   * new one, or the open one of the same type and fold key with its count and last-seen
   * time moved. Pass `trx` to raise inside the caller's transaction (the alert then exists,
   * and is pushed, only if that transaction commits). Throws {@link ValidationError} on a bad
   * type, severity, subject or count.
   */
  async raise(input: RaiseAlertInput, trx?: Kysely<DB>): Promise<AlertRow> {
    const normalized = normalize(input);
    if (trx) return this.raiseIn(trx, normalized);
    return this.database.db.transaction().execute((t) => this.raiseIn(t, normalized));
  }

  /**
   * Resolves the open alerts of one type and fold key (the condition they report has ended:
   * an access request was decided, a server answers again). Returns how many it resolved.
   */
  async resolveByFoldKey(trx: Kysely<DB>, workspaceId: string, type: AlertType, foldKey: string, actor: string): Promise<number> {
    const rows = await trx
      .updateTable('alerts')
      .set({ resolved_at: sql`now()`, resolved_by: actor, fold_open: false })
      .where('workspace_id', '=', workspaceId)
      .where('type', '=', type)
      .where('fold_key', '=', foldKeyOf(foldKey))
      .where('resolved_at', 'is', null)
      .returningAll()
      .execute();
    for (const row of rows) await this.publish(trx, row, 'resolved', actor);
    return rows.length;
  }

  /** Alerts of the viewer's workspace, newest first, after the `afterSeq` cursor. */
  async list(viewer: Viewer, filter: AlertFilter, page: { limit: number; afterSeq?: string | undefined }): Promise<AlertRow[]> {
    requireCapability(viewer, 'alerting.view');
    if (filter.from && filter.to && filter.from > filter.to) throw new ValidationError('filter.to', 'filter.to: must not be before filter.from');
    let q = this.database.db.selectFrom('alerts').selectAll().where('workspace_id', '=', viewer.workspaceId);
    if (page.afterSeq !== undefined) q = q.where('seq', '<', page.afterSeq);
    if (filter.severities?.length) q = q.where('severity', 'in', filter.severities);
    if (filter.severityAtLeast) {
      const min = SEVERITY_RANK[filter.severityAtLeast];
      q = q.where('severity', 'in', ALERT_SEVERITIES.filter((s) => SEVERITY_RANK[s] >= min));
    }
    if (filter.types?.length) q = q.where('type', 'in', filter.types);
    if (filter.states?.length) {
      const states = new Set(filter.states);
      q = q.where((eb) =>
        eb.or([
          ...(states.has('OPEN') ? [eb.and([eb('resolved_at', 'is', null), eb('acknowledged_at', 'is', null)])] : []),
          ...(states.has('ACKNOWLEDGED') ? [eb.and([eb('resolved_at', 'is', null), eb('acknowledged_at', 'is not', null)])] : []),
          ...(states.has('RESOLVED') ? [eb('resolved_at', 'is not', null)] : []),
        ]),
      );
    }
    if (filter.from) q = q.where('last_seen_at', '>=', filter.from);
    if (filter.to) q = q.where('first_seen_at', '<=', filter.to);
    return q.orderBy('seq', 'desc').limit(page.limit).execute();
  }

  async get(viewer: Viewer, id: string): Promise<AlertRow> {
    requireCapability(viewer, 'alerting.view');
    const [row] = await this.byIds(viewer.workspaceId, [id]);
    if (!row) throw new NotFoundError('Alert', id);
    return row;
  }

  async byIds(workspaceId: string, ids: readonly string[]): Promise<AlertRow[]> {
    if (ids.length === 0) return [];
    return this.database.db.selectFrom('alerts').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', ids).execute();
  }

  /** Marks an open alert as seen by someone who is on it. It keeps folding until resolved. */
  async acknowledge(viewer: Viewer, id: string): Promise<AlertRow> {
    requireCapability(viewer, 'alerting.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('alerts')
        .set({ acknowledged_at: sql`now()`, acknowledged_by: viewer.actor })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .where('acknowledged_at', 'is', null)
        .where('resolved_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw await this.whyUnchanged(trx, viewer, id, 'acknowledge');
      await this.publish(trx, row, 'acknowledged', viewer.actor);
      return row;
    });
  }

  /** Closes an alert; a later identical occurrence raises a new one. */
  async resolve(viewer: Viewer, id: string): Promise<AlertRow> {
    requireCapability(viewer, 'alerting.manage');
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('alerts')
        .set({ resolved_at: sql`now()`, resolved_by: viewer.actor, fold_open: false })
        .where('workspace_id', '=', viewer.workspaceId)
        .where('id', '=', id)
        .where('resolved_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw await this.whyUnchanged(trx, viewer, id, 'resolve');
      await this.publish(trx, row, 'resolved', viewer.actor);
      return row;
    });
  }

  /**
   * Alert changes of the viewer's workspace from now on, from every control-plane process,
   * filtered by severity and type. The stream ends (after a `revoked` item) when the
   * viewer's API key is revoked or its role loses `alerting.view`; it ends quietly when the
   * consumer stops iterating, releasing its event-bus subscription at once.
   */
  subscribe(viewer: Viewer, filter: AlertSubscriptionFilter = {}): AsyncIterable<AlertStreamItem> {
    requireCapability(viewer, 'alerting.view');
    const minRank = filter.severityAtLeast ? SEVERITY_RANK[filter.severityAtLeast] : 0;
    const types = filter.types?.length ? new Set<string>(filter.types) : undefined;
    const source = this.events.subscribe(viewer.workspaceId);
    return new Repeater<AlertStreamItem>(async (push, stop) => {
      const events = source[Symbol.asyncIterator]();
      this.subscribers++;
      void stop.then(() => events.return?.());
      try {
        let next: IteratorResult<WorkspaceEvent>;
        while (!(next = await events.next()).done) {
          const event = next.value;
          if (event.type.startsWith(ALERT_EVENT_PREFIX)) {
            const alert = alertFromEvent(event.details);
            if (!alert || SEVERITY_RANK[alert.severity] < minRank || (types && !types.has(alert.type))) continue;
            await push({ change: event.type.slice(ALERT_EVENT_PREFIX.length) as AlertChange, alert });
          } else if (event.type === 'api_key.revoked' && event.subjectId === viewer.apiKeyId) {
            await push({ revoked: 'the API key of this subscription was revoked' });
            break;
          } else if (event.type.startsWith('role.') && event.subjectId === viewer.roleId && !(await this.roleCanView(viewer))) {
            await push({ revoked: 'the role of this API key no longer has alerting.view' });
            break;
          }
        }
      } finally {
        this.subscribers--;
        await events.return?.();
      }
      stop();
    });
  }

  /** Alert streams open in this process (a gauge for metrics and leak checks). */
  get subscriberCount(): number {
    return this.subscribers;
  }

  // Internals ----------------------------------------------------------------------------

  private async raiseIn(trx: Kysely<DB>, input: NormalizedInput): Promise<AlertRow> {
    const withinWindow = sql<boolean>`alerts.last_seen_at >= now() - make_interval(secs => ${this.foldWindowMs / 1000})`;
    const upsert = () =>
      trx
        .insertInto('alerts')
        .values({
          id: randomUUID(),
          workspace_id: input.workspaceId,
          severity: input.severity,
          type: input.type,
          subject: input.subject,
          subject_type: input.subjectRef?.type ?? null,
          subject_id: input.subjectRef?.id ?? null,
          details: input.details,
          fold_key: input.foldKey,
          count: input.occurrences,
          first_seen_at: sql`now()`,
          last_seen_at: sql`now()`,
          created_at: sql`now()`,
        })
        .onConflict((oc) =>
          oc
            .columns(['workspace_id', 'type', 'fold_key'])
            .where('fold_open', '=', true)
            .doUpdateSet((eb) => ({
              count: sql<number>`alerts.count + excluded.count`,
              last_seen_at: eb.ref('excluded.last_seen_at'),
              severity: eb.ref('excluded.severity'),
              subject: eb.ref('excluded.subject'),
              details: eb.ref('excluded.details'),
            }))
            .where(withinWindow),
        )
        .returningAll()
        .returning(sql<boolean>`xmax = 0`.as('inserted'))
        .executeTakeFirst();
    // One statement in the common cases (new, or folding). No row back means the open alert
    // of this key is older than the window: it stops folding, and this occurrence starts a new one.
    let row = await upsert();
    if (!row) {
      await trx
        .updateTable('alerts')
        .set({ fold_open: false })
        .where('workspace_id', '=', input.workspaceId)
        .where('type', '=', input.type)
        .where('fold_key', '=', input.foldKey)
        .where('fold_open', '=', true)
        .where(sql<boolean>`last_seen_at < now() - make_interval(secs => ${this.foldWindowMs / 1000})`)
        .execute();
      row = await upsert();
      if (!row) throw new Error(`alert ${input.type}/${input.foldKey} could neither fold nor be inserted`);
    }
    const { inserted, ...alert } = row;
    await this.publish(trx, alert, inserted ? 'raised' : 'updated', input.actor);
    return alert;
  }

  private async publish(trx: Kysely<DB>, alert: AlertRow, change: AlertChange, actor: string): Promise<void> {
    await recordWorkspaceEvent(trx, alert.workspace_id, actor, {
      type: `${ALERT_EVENT_PREFIX}${change}`,
      subjectType: 'Alert',
      subjectId: alert.id,
      details: { alert: alertToJson(alert) },
    });
  }

  private async whyUnchanged(trx: Kysely<DB>, viewer: Viewer, id: string, action: 'acknowledge' | 'resolve'): Promise<Error> {
    const row = await trx
      .selectFrom('alerts')
      .select(['acknowledged_at', 'resolved_at'])
      .where('workspace_id', '=', viewer.workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return new NotFoundError('Alert', id);
    if (row.resolved_at) return new ConflictError(`the alert is already resolved; it cannot be ${action}d again`);
    return new ConflictError('the alert is already acknowledged');
  }

  private async roleCanView(viewer: Viewer): Promise<boolean> {
    const row = await this.database.db
      .selectFrom('role_capabilities')
      .select('capability')
      .where('workspace_id', '=', viewer.workspaceId)
      .where('role_id', '=', viewer.roleId)
      .where('capability', '=', 'alerting.view')
      .executeTakeFirst()
      .catch((err) => {
        this.options.logger?.warn({ err }, 'could not re-check an alert subscriber; ending its stream');
        return undefined;
      });
    return row !== undefined;
  }
}

interface NormalizedInput {
  readonly workspaceId: string;
  readonly type: AlertType;
  readonly severity: AlertSeverity;
  readonly subject: string;
  readonly details: string;
  readonly foldKey: string;
  readonly subjectRef: { readonly type: string; readonly id: string } | undefined;
  readonly occurrences: number;
  readonly actor: string;
}

function normalize(input: RaiseAlertInput): NormalizedInput {
  if (!TYPES.has(input.type)) throw new ValidationError('type', `type: "${String(input.type).slice(0, 60)}" is not an alert type; one of ${ALERT_TYPES.join(', ')}`);
  if (!SEVERITIES.has(input.severity)) throw new ValidationError('severity', `severity: expected one of ${ALERT_SEVERITIES.join(', ')}`);
  const subject = String(input.subject ?? '').replace(/\s+/g, ' ').trim();
  if (subject === '') throw new ValidationError('subject', 'subject: must not be empty');
  const occurrences = input.occurrences ?? 1;
  if (!Number.isSafeInteger(occurrences) || occurrences < 1 || occurrences > 1_000_000) {
    throw new ValidationError('occurrences', 'occurrences: must be an integer from 1 to 1000000');
  }
  const foldKey = input.foldKey ?? (input.subjectRef ? `${input.subjectRef.type}:${input.subjectRef.id}` : subject);
  return {
    workspaceId: input.workspaceId,
    type: input.type,
    severity: input.severity,
    subject: subject.length > MAX_SUBJECT ? `${subject.slice(0, MAX_SUBJECT - 1)}…` : subject,
    details: boundedDetails(input.details ?? {}),
    foldKey: foldKeyOf(foldKey),
    subjectRef: input.subjectRef,
    occurrences,
    actor: input.actor ?? 'system',
  };
}

/** Long fold keys are stored as their SHA-256, so any key folds and the index stays small. */
function foldKeyOf(key: string): string {
  return key.length > MAX_FOLD_KEY ? `sha256:${createHash('sha256').update(key).digest('hex')}` : key;
}

function boundedDetails(details: Record<string, unknown>): string {
  const json = JSON.stringify(details);
  if (Buffer.byteLength(json) <= MAX_DETAILS_BYTES) return json;
  return JSON.stringify({ truncated: true, bytes: Buffer.byteLength(json), preview: json.slice(0, 4000) });
}

/** The alert as it travels in a workspace event (dates as ISO strings). */
function alertToJson(alert: AlertRow): Record<string, unknown> {
  const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
  return {
    ...alert,
    seq: String(alert.seq),
    first_seen_at: iso(alert.first_seen_at),
    last_seen_at: iso(alert.last_seen_at),
    acknowledged_at: iso(alert.acknowledged_at),
    resolved_at: iso(alert.resolved_at),
    created_at: iso(alert.created_at),
  };
}

function alertFromEvent(details: Record<string, unknown>): AlertRow | undefined {
  const raw = details.alert as Record<string, unknown> | undefined;
  if (!raw || typeof raw.id !== 'string') return undefined;
  const date = (v: unknown) => (typeof v === 'string' ? new Date(v) : null);
  return {
    ...(raw as unknown as AlertRow),
    first_seen_at: date(raw.first_seen_at)!,
    last_seen_at: date(raw.last_seen_at)!,
    acknowledged_at: date(raw.acknowledged_at),
    resolved_at: date(raw.resolved_at),
    created_at: date(raw.created_at)!,
  };
}
