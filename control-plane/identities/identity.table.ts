import type { Generated, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';

/**
 * `shared`: the one service credential of a server, used by its shared-scheme assignments.
 * `personal`: one user's own credential for a server (collected in a later issue).
 */
export type IdentityKind = 'shared' | 'personal';

/**
 * An upstream identity: the handle admins see and switch off. It holds no secret itself;
 * a shared identity fronts the header values sealed on its server's row.
 */
export interface IdentityTable {
  id: string;
  workspace_id: string;
  server_id: string;
  kind: IdentityKind;
  /** Set exactly for personal identities. */
  user_id: string | null;
  name: string;
  disabled: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type IdentityRow = Selectable<IdentityTable>;
