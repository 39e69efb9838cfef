import type { ColumnType, Generated, Selectable } from 'kysely';
import type { FeatureKind } from '../servers/server.table.js';
import type { Timestamp } from '../workspaces/workspace.table.js';

type Json<T> = ColumnType<T, string | undefined, string>;

export interface GatewayTable {
  id: string;
  workspace_id: string;
  name: string;
  slug: string;
  description: Generated<string>;
  disabled: Generated<boolean>;
  archived_at: Timestamp | null;
  /** What data planes record of calls: `metadata` (no bodies) or `full` (bodies cut at the cap) ([rules]). */
  audit_bodies: Generated<'full' | 'metadata'>;
  audit_max_body_bytes: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type GatewayRow = Selectable<GatewayTable>;

export interface GatewayTeamTable {
  workspace_id: string;
  gateway_id: string;
  team_id: string;
}

/** `UNREVIEWED` is the fail-closed default of a new assignment: it exposes nothing. */
export type ProvisioningMode = 'ALLOW_ALL' | 'ALLOW_SELECTED' | 'BLOCK_ALL' | 'UNREVIEWED';
export type FeatureTypeKey = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';

export interface FeatureProvisioning {
  readonly mode: ProvisioningMode;
  /** Upstream names allowed when `mode` is ALLOW_SELECTED. */
  readonly selected: readonly string[];
}
export type Provisioning = Readonly<Record<FeatureTypeKey, FeatureProvisioning>>;

/** Per feature: a replacement string, `null` to strip the field, or absent to pass it through. */
export interface MetadataOverride {
  readonly title?: string | null;
  readonly description?: string | null;
  readonly annotations?: Record<string, unknown> | null;
}

export interface AssignmentTable {
  id: string;
  workspace_id: string;
  gateway_id: string;
  server_id: string | null;
  container_id: string | null;
  identity_scheme: 'shared' | 'personal';
  namespace_prefix: Generated<string>;
  disabled: Generated<boolean>;
  provisioning: Json<Provisioning>;
  /** Keyed `<kind>:<upstream name>`. */
  metadata_overrides: Json<Record<string, MetadataOverride>>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type AssignmentRow = Selectable<AssignmentTable>;

export interface AssignmentPinTable {
  workspace_id: string;
  assignment_id: string;
  server_id: string;
  kind: FeatureKind;
  name: string;
  pinned_hash: string;
  pinned_definition: Json<Record<string, unknown>>;
  pinned_at: Timestamp;
  pinned_by: string;
}
export type AssignmentPinRow = Selectable<AssignmentPinTable>;
