import type { AuditBatchReceipt, AuditEntry, AuditPolicyAction } from '../../schema/audit/types.js';
import { validateAuditBatch } from '../../schema/audit/validate.js';
import type { Logger } from '../logger.js';
import { isDataError, type AuditStore } from './audit-store.js';

export { isDataError };

/** Who sent a batch: the data plane its token authenticated as. */
export interface IngestPrincipal {
  readonly workspaceId: string;
  readonly dataPlaneId: string;
}

export type AuditIngestErrorCode = 'INVALID_BATCH' | 'WORKSPACE_MISMATCH';

/** A batch refused whole; `field` names the first bad field (`entries[3].occurredAt`). */
export class AuditIngestError extends Error {
  override readonly name = 'AuditIngestError';
  constructor(
    readonly code: AuditIngestErrorCode,
    /** HTTP status the endpoint answers with. */
    readonly status: 400 | 403,
    message: string,
    readonly field: string | undefined,
    readonly index: number | undefined,
  ) {
    super(message);
  }
}

/** Called for each stored `policy_action` entry whose action asks for an alert. */
export type PolicyAlertListener = (workspaceId: string, entry: AuditEntry, action: AuditPolicyAction) => void | Promise<void>;
/** Called when a batch reports entries the data plane had to drop. */
export type DroppedEntriesListener = (workspaceId: string, dataPlaneId: string, count: number) => void | Promise<void>;

/**
 * Audit ingest: validates a data plane's batch (strict shape, every entry of the data
 * plane's workspace), stores it idempotently and tells listeners what needs a person's
 * attention. A batch is stored whole or refused whole.
 */
export class AuditIngestService {
  readonly #policyAlerts = new Set<PolicyAlertListener>();
  readonly #dropped = new Set<DroppedEntriesListener>();

  constructor(
    private readonly store: AuditStore,
    private readonly logger?: Logger,
  ) {}

  /**
   * Registers `listener` for stored policy actions with `alert: true` (one call per action
   * of a `policy_action` entry, only when the entry is new, so a retried batch alerts
   * once). Returns the removal.
   */
  onPolicyAlert(listener: PolicyAlertListener): () => void {
    this.#policyAlerts.add(listener);
    return () => this.#policyAlerts.delete(listener);
  }

  /** Registers `listener` for batches reporting `droppedEntries` > 0. Returns the removal. */
  onDroppedEntries(listener: DroppedEntriesListener): () => void {
    this.#dropped.add(listener);
    return () => this.#dropped.delete(listener);
  }

  /**
   * Ingests one parsed batch. `text` is the request body the batch was parsed from, if
   * any (stored without serializing again). Throws {@link AuditIngestError} for a bad
   * batch; database failures propagate.
   */
  async ingest(principal: IngestPrincipal, input: unknown, text?: string): Promise<AuditBatchReceipt> {
    const checked = validateAuditBatch(input);
    if (!checked.ok) throw new AuditIngestError('INVALID_BATCH', 400, checked.message, checked.field, checked.index);
    const { entries } = checked.batch;
    // One pass: the workspace of every entry, and whether any asks for an alert (rare: only
    // then are the stored ids read back, to alert on new entries only).
    let alerting = false;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.workspaceId !== principal.workspaceId) {
        const field = `entries[${i}].workspaceId`;
        throw new AuditIngestError('WORKSPACE_MISMATCH', 403, `${field}: this data plane belongs to another workspace; a data plane ships entries of its own workspace only`, field, i);
      }
      if (entry.leg === 'policy_action' && !alerting) alerting = entry.policyActions.some((action) => action.alert);
    }
    alerting &&= this.#policyAlerts.size > 0;
    let result;
    try {
      result = await this.store.insert(principal.dataPlaneId, entries, { ...(text === undefined ? {} : { json: text }), returnIds: alerting });
    } catch (error) {
      if (!isDataError(error) || entries.length === 1) throw error;
      throw await this.#refusedEntry(principal, entries, error);
    }
    if (alerting && result.insertedIds) {
      for (const entry of entries) {
        if (entry.leg !== 'policy_action' || !result.insertedIds.has(entry.id)) continue;
        for (const action of entry.policyActions) if (action.alert) this.#notify(this.#policyAlerts, (listener) => listener(principal.workspaceId, entry, action));
      }
    }
    const dropped = checked.batch.droppedEntries ?? 0;
    if (dropped > 0) {
      this.logger?.warn({ dataPlaneId: principal.dataPlaneId, workspaceId: principal.workspaceId, dropped }, 'a data plane reports audit entries it had to drop');
      this.#notify(this.#dropped, (listener) => listener(principal.workspaceId, principal.dataPlaneId, dropped));
    }
    return { accepted: result.accepted, duplicates: result.duplicates };
  }

  /**
   * A value passed validation but the database refuses it: find the entry, so the data
   * plane drops that one and resends the rest (entries stored meanwhile are duplicates then).
   */
  async #refusedEntry(principal: IngestPrincipal, entries: readonly AuditEntry[], cause: unknown): Promise<AuditIngestError> {
    for (let i = 0; i < entries.length; i++) {
      try {
        await this.store.insert(principal.dataPlaneId, [entries[i]!]);
      } catch (error) {
        if (!isDataError(error)) throw error;
        const field = `entries[${i}]`;
        return new AuditIngestError('INVALID_BATCH', 400, `${field}: the database refused a value: ${(error as Error).message}`, field, i);
      }
    }
    return new AuditIngestError('INVALID_BATCH', 400, `the database refused the batch: ${(cause as Error).message}`, undefined, undefined);
  }

  /** Listeners run after the batch is stored; their failures are logged, never the ingest's. */
  #notify<L>(listeners: Set<L>, call: (listener: L) => void | Promise<void>): void {
    for (const listener of listeners) {
      try {
        void Promise.resolve(call(listener)).catch((error: unknown) => this.logger?.error({ err: error }, 'an audit ingest listener failed'));
      } catch (error) {
        this.logger?.error({ err: error }, 'an audit ingest listener failed');
      }
    }
  }
}
