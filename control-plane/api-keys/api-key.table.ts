import type { Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

export interface ApiKeyTable {
  id: string;
  workspace_id: string;
  name: string;
  role_id: string;
  /** SHA-256 of the whole key, hex. The key itself is never stored. */
  token_hash: string;
  /** The first characters of the key, enough to recognise it in a list. */
  token_prefix: string;
  created_by: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}
export type ApiKeyRow = Selectable<ApiKeyTable>;
