import type { ColumnType, Generated, Selectable } from 'kysely';
import type { Timestamp } from '../workspaces/workspace.table.js';
import type { MimicryFinding } from './threats/mimicry.js';
import type { ThreatReason } from './threats/poisoning.js';

/** A secret sealed with AES-256-GCM under a vault key; only the vault opens it. */
export interface SealedSecret {
  readonly keyId: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

type Json<T> = ColumnType<T, string | undefined, string>;

export type ServerKind = 'remote' | 'managed' | 'workstation';
export type ServerTransport = 'streamable-http' | 'sse' | 'stdio' | 'http' | 'tunnel';

export interface ServerTable {
  id: string;
  workspace_id: string;
  name: string;
  description: Generated<string>;
  kind: ServerKind;
  transport: ServerTransport;
  url: string | null;
  allow_insecure: Generated<boolean>;
  command: string | null;
  args: Json<string[]>;
  env: Json<Record<string, string>>;
  secret_env: Json<Record<string, SealedSecret>>;
  cwd: string | null;
  auth_kind: Generated<'none' | 'headers' | 'oauth'>;
  auth_headers: Json<Record<string, SealedSecret>>;
  disabled: Generated<boolean>;
  review_state: Generated<'approved' | 'pending_review' | 'rejected'>;
  review_reason: string | null;
  /** Anti-mimicry findings (control-plane/servers/threats): why the server waits for review. */
  threat_reasons: Json<readonly MimicryFinding[]>;
  /** The server this one's name or URL passes for, when anti-mimicry flagged it. */
  resembles_server_id: string | null;
  /** Who approved the server after review, and when. */
  reviewed_by: string | null;
  reviewed_at: Timestamp | null;
  last_discovery_at: Timestamp | null;
  last_discovery_status: 'ok' | 'failed' | null;
  last_discovery_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type ServerRow = Selectable<ServerTable>;

export interface ServerContainerTable {
  id: string;
  workspace_id: string;
  name: string;
  description: Generated<string>;
  disabled: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type ServerContainerRow = Selectable<ServerContainerTable>;

export interface ServerContainerMemberTable {
  workspace_id: string;
  container_id: string;
  server_id: string;
}

export type FeatureKind = 'tool' | 'prompt' | 'resource' | 'resourceTemplate';

export interface ServerFeatureTable {
  workspace_id: string;
  server_id: string;
  kind: FeatureKind;
  name: string;
  title: string | null;
  description: string | null;
  definition: Json<Record<string, unknown>>;
  hash: string;
  first_seen_at: Timestamp;
  changed_at: Timestamp;
  /** Tool-poisoning verdict (control-plane/servers/threats): `flagged` features are withheld until approved. */
  threat_state: Generated<'clear' | 'flagged' | 'approved'>;
  threat_score: Generated<number>;
  threat_reasons: Json<readonly ThreatReason[]>;
  /** The definition hash the verdict was reached on; null until scanned. */
  threat_hash: string | null;
  threat_reviewed_by: string | null;
  threat_reviewed_at: Timestamp | null;
  /** The definition before the last change of `hash`, for the rug-pull diff. */
  previous_hash: string | null;
  previous_definition: Json<Record<string, unknown> | null>;
}
export type ServerFeatureRow = Selectable<ServerFeatureTable>;

export interface FeatureChange {
  readonly kind: FeatureKind;
  readonly name: string;
  readonly oldHash?: string;
  readonly newHash?: string;
}

export interface DiscoveryRunTable {
  id: string;
  workspace_id: string;
  server_id: string;
  started_at: Timestamp;
  finished_at: Timestamp;
  status: 'ok' | 'failed';
  error_code: string | null;
  error_message: string | null;
  server_info: Json<Record<string, unknown> | null>;
  feature_count: Generated<number>;
  added: Json<FeatureChange[]>;
  changed: Json<FeatureChange[]>;
  removed: Json<FeatureChange[]>;
}
export type DiscoveryRunRow = Selectable<DiscoveryRunTable>;
