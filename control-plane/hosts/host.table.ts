import type { Generated, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

export interface HostTable {
  id: string;
  workspace_id: string;
  name: string;
  /** `agent`: headless, token-based. `app`: an OAuth client (a later issue). */
  kind: 'agent' | 'app';
  description: Generated<string>;
  disabled: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type HostRow = Selectable<HostTable>;

export interface ConnectionTable {
  id: string;
  workspace_id: string;
  host_id: string;
  gateway_id: string;
  /** The user an agent acts for, if any; calls are attributed to them and need them active. */
  user_id: string | null;
  name: string;
  disabled: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type ConnectionRow = Selectable<ConnectionTable>;

export interface AccessTokenTable {
  id: string;
  workspace_id: string;
  connection_id: string;
  name: string;
  token_hash: string;
  token_prefix: string;
  created_by: string;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}
export type AccessTokenRow = Selectable<AccessTokenTable>;
