import type { ColumnType, Generated, Selectable } from 'kysely';
import type { SealedSecret } from '../servers/server.table.js';
import type { StoredSnapshotKey } from '../snapshot/snapshot-key.js';

export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface WorkspaceTable {
  id: string;
  name: string;
  date_format: Generated<string>;
  time_format: Generated<string>;
  /** Workspace kill switch: every data plane refuses every call while set. */
  disabled: Generated<boolean>;
  /** Key the workspace's snapshot secrets are sealed under for data planes, vault-sealed; set on first publish. */
  snapshot_key: ColumnType<StoredSnapshotKey | null, string | null | undefined, string | null>;
  /** Salt of the `hash` rule action, vault-sealed; generated on first publish ([rules]). */
  rule_hash_salt: ColumnType<SealedSecret | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type WorkspaceRow = Selectable<WorkspaceTable>;

/** Append-only log of what changed in a workspace and who changed it. */
export interface WorkspaceEventTable {
  seq: Generated<string>;
  id: string;
  workspace_id: string;
  type: string;
  subject_type: string;
  subject_id: string;
  actor: string;
  details: ColumnType<Record<string, unknown>, string, string>;
  created_at: Timestamp;
}
export type WorkspaceEventRow = Selectable<WorkspaceEventTable>;
