import type { Kysely } from 'kysely';
import type { Viewer } from '../access/viewer.js';
import type { DB } from '../db/tables.js';
import type { AssignmentRow } from '../gateways/gateway.table.js';
import type { DiscoveredFeature } from '../servers/feature-hash.js';
import type { FeatureChange, ServerRow } from '../servers/server.table.js';
import type { RaiseAlertInput } from './alert.service.js';
import { jsonDiff } from './json-diff.js';

/**
 * The alerts the control plane's own services raise, built here so that each hook in the
 * owning service stays one `alerts.raise(...)` call. The async ones read what they name
 * (pins, gateway slugs) in the caller's transaction.
 */

const FEATURES_LISTED = 50;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const KIND_LABEL = { tool: 'tool', prompt: 'prompt', resource: 'resource', resourceTemplate: 'resource template' } as const;

/** Fold key of a server's outage alert; a later successful discovery resolves it. */
export const outageFoldKey = (serverId: string) => `server:${serverId}`;

/** A data plane refused a snapshot version and keeps serving the one it held. */
export function snapshotRejectedAlert(a: {
  workspaceId: string;
  dataPlaneId: string;
  dataPlaneName: string;
  version: number;
  reason: string;
  actor: string;
}): RaiseAlertInput {
  return {
    workspaceId: a.workspaceId,
    type: 'SNAPSHOT_REJECTED',
    severity: 'error',
    subject: `Data plane ${a.dataPlaneName} rejected snapshot v${a.version} and keeps serving its previous one`,
    details: { dataPlaneId: a.dataPlaneId, dataPlaneName: a.dataPlaneName, version: a.version, reason: a.reason },
    subjectRef: { type: 'DataPlane', id: a.dataPlaneId },
    foldKey: `data_plane:${a.dataPlaneId}:v${a.version}`,
    actor: a.actor,
  };
}

/** Discovery found features the server did not offer before. */
export function newFeaturesAlert(server: ServerRow, runId: string, added: readonly FeatureChange[], actor: string): RaiseAlertInput {
  const names = added.map((f) => `${f.kind}:${f.name}`).sort();
  return {
    workspaceId: server.workspace_id,
    type: 'FEATURE_DISCOVERED',
    severity: 'info',
    subject: `Server ${server.name} offers ${plural(added.length, 'new feature')}`,
    details: {
      serverId: server.id,
      serverName: server.name,
      runId,
      total: added.length,
      features: added.slice(0, FEATURES_LISTED).map((f) => ({ kind: f.kind, name: f.name, hash: f.newHash ?? null })),
    },
    subjectRef: { type: 'Server', id: server.id },
    // The same set of names appearing again (removed, then back) folds; a different set is news.
    foldKey: `server:${server.id}:added:${names.join('\n')}`,
    actor,
  };
}

/** Discovery failed: the upstream is down or refuses us. */
export function upstreamOutageAlert(server: ServerRow, runId: string, code: string, message: string, actor: string): RaiseAlertInput {
  return {
    workspaceId: server.workspace_id,
    type: 'UPSTREAM_OUTAGE',
    severity: 'error',
    subject: `Server ${server.name} cannot be reached: ${code}`,
    details: { serverId: server.id, serverName: server.name, runId, code, message },
    subjectRef: { type: 'Server', id: server.id },
    foldKey: outageFoldKey(server.id),
    actor,
  };
}

/** An admin changed which features of one type an assignment exposes. Reads the gateway's and server's names in `trx`. */
export async function featureProvisionedAlert(
  trx: Kysely<DB>,
  viewer: Viewer,
  assignment: AssignmentRow,
  change: { featureType: string; mode: string; selected: readonly string[] },
): Promise<RaiseAlertInput> {
  const gateway = await trx.selectFrom('gateways').select('slug').where('workspace_id', '=', viewer.workspaceId).where('id', '=', assignment.gateway_id).executeTakeFirst();
  const source = assignment.server_id
    ? await trx.selectFrom('servers').select('name').where('workspace_id', '=', viewer.workspaceId).where('id', '=', assignment.server_id).executeTakeFirst()
    : await trx.selectFrom('server_containers').select('name').where('workspace_id', '=', viewer.workspaceId).where('id', '=', assignment.container_id ?? '').executeTakeFirst();
  const what = change.mode === 'ALLOW_SELECTED' ? `${change.selected.length} selected` : change.mode === 'ALLOW_ALL' ? 'all allowed' : 'all blocked';
  return {
    workspaceId: viewer.workspaceId,
    type: 'FEATURE_PROVISIONED',
    severity: 'info',
    subject: `Provisioning of ${change.featureType} from ${source?.name ?? 'an assignment'} on gateway ${gateway?.slug ?? assignment.gateway_id}: ${what}`,
    details: {
      assignmentId: assignment.id,
      gatewayId: assignment.gateway_id,
      gatewaySlug: gateway?.slug ?? null,
      serverId: assignment.server_id,
      containerId: assignment.container_id,
      featureType: change.featureType,
      mode: change.mode,
      selected: change.selected.slice(0, FEATURES_LISTED),
      selectedCount: change.selected.length,
    },
    subjectRef: { type: 'Assignment', id: assignment.id },
    foldKey: `assignment:${assignment.id}:${change.featureType}`,
    actor: viewer.actor,
  };
}

/**
 * Pinned features whose new definition differs from the approved one (a rug pull): one
 * alert per feature and approved definition, naming the gateways that now withhold it and
 * carrying a diff of approved against live definition. Reads the pins in `trx`.
 */
export async function pinViolationAlerts(
  trx: Kysely<DB>,
  server: ServerRow,
  changed: readonly { readonly current: DiscoveredFeature }[],
  actor: string,
): Promise<RaiseAlertInput[]> {
  if (changed.length === 0) return [];
  const pins = await trx
    .selectFrom('assignment_pins as p')
    .innerJoin('assignments as a', (j) => j.onRef('a.id', '=', 'p.assignment_id').onRef('a.workspace_id', '=', 'p.workspace_id'))
    .innerJoin('gateways as g', (j) => j.onRef('g.id', '=', 'a.gateway_id').onRef('g.workspace_id', '=', 'a.workspace_id'))
    .select(['p.assignment_id', 'p.kind', 'p.name', 'p.pinned_hash', 'p.pinned_definition', 'p.pinned_at', 'g.id as gateway_id', 'g.slug as gateway_slug'])
    .where('p.workspace_id', '=', server.workspace_id)
    .where('p.server_id', '=', server.id)
    .where((eb) => eb.or(changed.map(({ current: f }) => eb.and([eb('p.kind', '=', f.kind), eb('p.name', '=', f.name)]))))
    .orderBy('g.slug')
    .execute();
  const current = new Map(changed.map(({ current: f }) => [`${f.kind}\u0000${f.name}`, f]));
  const groups = new Map<string, { feature: DiscoveredFeature; pinnedHash: string; pinnedDefinition: Record<string, unknown>; pins: typeof pins }>();
  for (const pin of pins) {
    const feature = current.get(`${pin.kind}\u0000${pin.name}`);
    if (!feature || feature.hash === pin.pinned_hash) continue;
    const key = `${pin.kind}\u0000${pin.name}\u0000${pin.pinned_hash}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { feature, pinnedHash: pin.pinned_hash, pinnedDefinition: pin.pinned_definition, pins: [] }));
    group.pins.push(pin);
  }
  return [...groups.values()].map(({ feature, pinnedHash, pinnedDefinition, pins: group }) => {
    const gateways = [...new Set(group.map((p) => p.gateway_slug))];
    return {
      workspaceId: server.workspace_id,
      type: 'PIN_VIOLATION',
      severity: 'error',
      subject: `Pinned ${KIND_LABEL[feature.kind]} "${feature.name}" of server ${server.name} changed; withheld on ${gateways.join(', ')} until re-approved`,
      details: {
        serverId: server.id,
        serverName: server.name,
        kind: feature.kind,
        name: feature.name,
        pinnedHash,
        newHash: feature.hash,
        assignments: group.map((p) => ({ assignmentId: p.assignment_id, gatewayId: p.gateway_id, gatewaySlug: p.gateway_slug })),
        diff: jsonDiff(pinnedDefinition, feature.definition),
      },
      subjectRef: { type: 'Server', id: server.id },
      foldKey: `pin:${server.id}:${feature.kind}:${feature.name}:${pinnedHash}`,
      actor,
    } satisfies RaiseAlertInput;
  });
}
