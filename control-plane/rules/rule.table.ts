import type { ColumnType, Selectable } from 'kysely';
import type { RuleAction, RuleDetection, RuleHook, SnapshotRuleScope } from '../../schema/snapshot/index.js';
import type { SealedSecret } from '../servers/server.table.js';
import type { Timestamp } from '../workspaces/workspace.table.js';

type Json<T> = ColumnType<T, string | undefined, string>;

/** A gateway content rule. `detection`, `scope` and `action` hold the snapshot's own shapes. */
export interface RuleTable {
  id: string;
  workspace_id: string;
  gateway_id: string;
  name: string;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  /** Place in the gateway's list, ascending; rewritten densely by reorders. */
  position: number;
  detection: Json<RuleDetection>;
  hooks: Json<RuleHook[]>;
  scope: Json<SnapshotRuleScope>;
  action: Json<RuleAction>;
  failure_mode: 'open' | 'closed';
  raise_alert: boolean;
  /** `detection.engineId` for engine rules, so the database refuses to drop an engine in use. */
  engine_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type RuleRow = Selectable<RuleTable>;

export type RuleEngineKind = 'webhook' | 'lakera' | 'bedrock';

/** A custom rule engine. Header values and the signing secret are vault-sealed. */
export interface RuleEngineTable {
  id: string;
  workspace_id: string;
  name: string;
  kind: RuleEngineKind;
  url: string;
  method: 'POST' | 'PUT';
  /** Header name → sealed value. */
  headers: Json<Record<string, SealedSecret>>;
  /** Lowercase caller header names copied onto engine calls. */
  forward_headers: Json<string[]>;
  signing_secret: Json<SealedSecret>;
  timeout_ms: number;
  allow_private_network: boolean;
  options: Json<Record<string, string>>;
  created_at: Timestamp;
  updated_at: Timestamp;
}
export type RuleEngineRow = Selectable<RuleEngineTable>;
