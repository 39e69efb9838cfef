import type { ColumnType, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

export interface SnapshotTable {
  workspace_id: string;
  version: ColumnType<string, string | number, never>;
  content_hash: string;
  created_at: Timestamp;
  body: ColumnType<Record<string, unknown>, string, never>;
}
export type SnapshotRow = Selectable<SnapshotTable>;
