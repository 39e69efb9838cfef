import type { Generated, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

export interface RoleTable {
  id: string;
  workspace_id: string;
  name: string;
  description: string;
  /** `owner`, `admin`, `member`, `auditor` for built-in roles; null for custom ones. */
  builtin: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type RoleRow = Selectable<RoleTable>;

export interface RoleCapabilityTable {
  workspace_id: string;
  role_id: string;
  capability: string;
}

export interface TeamTable {
  id: string;
  workspace_id: string;
  name: string;
  description: string;
  disabled: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type TeamRow = Selectable<TeamTable>;

export interface TeamMemberTable {
  workspace_id: string;
  team_id: string;
  user_id: string;
  added_at: Timestamp;
}
