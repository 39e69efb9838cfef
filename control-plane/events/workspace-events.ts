import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/tables.js';
import type { WorkspaceEventRow } from '../workspaces/workspace.table.js';

/** NOTIFY channel that carries committed workspace events to every control-plane process. */
export const WORKSPACE_EVENTS_CHANNEL = 'gatehouse_workspace_events';

export interface WorkspaceEventInput {
  readonly type: string;
  readonly subjectType: string;
  readonly subjectId: string;
  readonly details?: Record<string, unknown>;
}

/** The shape a committed event travels in, over NOTIFY and to subscribers. */
export interface WorkspaceEvent {
  readonly id: string;
  readonly seq: string;
  readonly workspaceId: string;
  readonly type: string;
  readonly subjectType: string;
  readonly subjectId: string;
  readonly actor: string;
  readonly details: Record<string, unknown>;
  readonly createdAt: Date;
}

export function toWorkspaceEvent(row: WorkspaceEventRow): WorkspaceEvent {
  return {
    id: row.id,
    seq: String(row.seq),
    workspaceId: row.workspace_id,
    type: row.type,
    subjectType: row.subject_type,
    subjectId: row.subject_id,
    actor: row.actor,
    details: row.details,
    createdAt: new Date(row.created_at),
  };
}

/**
 * Records an event in the same transaction as the change it describes and queues its
 * NOTIFY, which Postgres (and PGlite) deliver only when that transaction commits: an event
 * is published if and only if its change is durable.
 */
export async function recordWorkspaceEvent(
  trx: Kysely<DB>,
  workspaceId: string,
  actor: string,
  input: WorkspaceEventInput,
): Promise<WorkspaceEvent> {
  const row = await trx
    .insertInto('workspace_events')
    .values({
      id: randomUUID(),
      workspace_id: workspaceId,
      type: input.type,
      subject_type: input.subjectType,
      subject_id: input.subjectId,
      actor,
      details: JSON.stringify(input.details ?? {}),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const event = toWorkspaceEvent(row);
  let payload = JSON.stringify(event);
  // NOTIFY payloads stop at 8000 bytes; listeners re-read oversized events by id.
  if (Buffer.byteLength(payload) > 7900) payload = JSON.stringify({ id: event.id, workspaceId, truncated: true });
  await sql`SELECT pg_notify(${WORKSPACE_EVENTS_CHANNEL}, ${payload})`.execute(trx);
  return event;
}
