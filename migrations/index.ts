import type { Migration } from 'kysely';
import * as m0001 from './0001_foundation.js';
import * as m0002 from './0002_gateways_and_snapshots.js';
import * as m0003 from './0003_snapshot_keys.js';
import * as m0004 from './0004_identities.js';
import * as m0005 from './0005_data_plane_names.js';
import * as m0006 from './0006_audit.js';
import * as m0007 from './0007_alerts.js';
import * as m0008 from './0008_rules.js';
import * as m0009 from './0009_threats.js';
import * as m0010 from './0010_audit_reporting.js';

/**
 * Every migration in the order it applies. Forward-only: a released migration is never
 * edited or removed; a change is a new file appended here.
 */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_foundation': m0001,
  '0002_gateways_and_snapshots': m0002,
  '0003_snapshot_keys': m0003,
  '0004_identities': m0004,
  '0005_data_plane_names': m0005,
  '0006_audit': m0006,
  '0007_alerts': m0007,
  '0008_rules': m0008,
  '0009_threats': m0009,
  '0010_audit_reporting': m0010,
});
