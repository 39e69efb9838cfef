import type { ColumnType, Selectable } from 'kysely';
import type { SealedSecret } from '../servers/server.table.js';
import type { Timestamp } from '../workspaces/workspace.table.js';

export interface DataPlaneTable {
  id: string;
  workspace_id: string;
  name: string;
  token_hash: string;
  token_prefix: string;
  /** The key snapshots' secrets are delivered under for this data plane, sealed by the vault. */
  wrapped_delivery_key: ColumnType<SealedSecret, string, string>;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
  last_seen_at: Timestamp | null;
  acked_version: string | null;
  acked_at: Timestamp | null;
  last_rejection: string | null;
  last_rejected_version: string | null;
  last_rejected_at: Timestamp | null;
}
export type DataPlaneRow = Selectable<DataPlaneTable>;
