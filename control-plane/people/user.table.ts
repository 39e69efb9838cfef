import type { Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

export type UserState = 'invited' | 'active' | 'deactivated';

export interface UserTable {
  id: string;
  workspace_id: string;
  email: string;
  name: string;
  state: UserState;
  role_id: string;
  invited_at: Timestamp;
  activated_at: Timestamp | null;
  deactivated_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type UserRow = Selectable<UserTable>;
