import type { Kysely, Selectable } from 'kysely';
import type { Viewer } from '../access/viewer.js';
import type { DB } from '../db/tables.js';
import { NotFoundError } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';

/** Tables whose rows carry a `disabled` kill switch. */
export type KillSwitchTable = 'teams' | 'servers' | 'server_containers' | 'assignments' | 'hosts' | 'connections' | 'identities';

/** The columns every kill-switch table shares; enough to write the flag generically. */
type SwitchableRow = { id: string; workspace_id: string; disabled: boolean; updated_at: Date };

export interface KillSwitchSubject<Row> {
  /** GraphQL type name, for NotFoundError and the event's subject. */
  readonly type: string;
  /** Event name prefix: `<prefix>.disabled` / `<prefix>.enabled`. */
  readonly event: string;
  /** Extra event details taken from the updated row. */
  readonly details?: (row: Row) => Record<string, unknown>;
}

/**
 * Flips a row's kill switch inside the caller's transaction and records the workspace event
 * the snapshot publisher reacts to. The row must belong to the viewer's workspace
 * (NotFoundError otherwise). Capability checks stay with the caller.
 */
export async function setKillSwitch<T extends KillSwitchTable>(
  trx: Kysely<DB>,
  table: T,
  viewer: Viewer,
  id: string,
  disabled: boolean,
  subject: KillSwitchSubject<Selectable<DB[T]>>,
): Promise<Selectable<DB[T]>> {
  const switchable = trx as unknown as Kysely<Record<KillSwitchTable, SwitchableRow>>;
  const updated = await switchable
    .updateTable(table as KillSwitchTable)
    .set({ disabled, updated_at: new Date() })
    .where('workspace_id', '=', viewer.workspaceId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!updated) throw new NotFoundError(subject.type, id);
  const row = updated as unknown as Selectable<DB[T]>;
  await recordWorkspaceEvent(trx, viewer.workspaceId, viewer.actor, {
    type: `${subject.event}.${disabled ? 'disabled' : 'enabled'}`,
    subjectType: subject.type,
    subjectId: id,
    details: subject.details?.(row) ?? {},
  });
  return row;
}
