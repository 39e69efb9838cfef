import type { Generated, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

export type AccessRequestState = 'pending' | 'approved' | 'denied';

export interface GatewayAccessRequestTable {
  id: string;
  workspace_id: string;
  user_id: string;
  gateway_id: string;
  reason: Generated<string>;
  state: Generated<AccessRequestState>;
  /** Actor who filed the request (`api_key:<id>`). */
  requested_by: string;
  decided_by: string | null;
  decided_at: Timestamp | null;
  decision_note: string | null;
  /** The team the user was added to, once approved. */
  team_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type GatewayAccessRequestRow = Selectable<GatewayAccessRequestTable>;
