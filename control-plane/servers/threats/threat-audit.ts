import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditEntry } from '../../../schema/audit/types.js';
import { AUDIT_STRING_LIMITS } from '../../../schema/audit/validate.js';
import { namespacedFeatureName, type FeatureType } from '../../../schema/snapshot/index.js';
import { insertAuditEntriesIn } from '../../audit/audit-store.js';
import type { DB } from '../../db/tables.js';
import type { FeatureKind } from '../server.table.js';
import type { MimicryFinding } from './mimicry.js';
import type { ThreatReason } from './poisoning.js';

/**
 * Detector hits as `policy_action` audit entries (AUDIT.md, "Detector entries"), written in
 * the transaction that records the hit. A hit is about a server of a workspace, not about a
 * call: no user, host, connection, token, session or client, no method, no body; the
 * detector, the server, the feature and the action are what it carries. Nothing the
 * server wrote (descriptions, excerpts, schema text) is copied: findings are reason codes,
 * the detail names rules, fields, scores, hashes and servers.
 */

/** `ruleId` is `detector:<name>`, the same namespace as the data plane's built-in stages. */
export type ThreatDetector = 'tool_poisoning' | 'mimicry' | 'rug_pull';

/**
 * `withhold`: features withheld on gateways; `hold`: the server kept out of every gateway
 * (both hits, status `blocked`). `approve`: an admin let a flagged feature, a held server
 * or a changed pinned definition back in; `release`: a held server stopped resembling
 * another after a change (both status `ok`).
 */
export type ThreatAuditAction = 'withhold' | 'hold' | 'approve' | 'release';

const DETECTOR_NAMES: { readonly [D in ThreatDetector]: string } = {
  tool_poisoning: 'Tool poisoning',
  mimicry: 'Anti-mimicry',
  rug_pull: 'Rug pull (pinned definition changed)',
};

/** `dataPlaneInstance` of entries the control plane writes itself (the field is required). */
export const CONTROL_PLANE_INSTANCE = 'control-plane';

const FEATURE_TYPE: { readonly [K in FeatureKind]: FeatureType } = { tool: 'tools', prompt: 'prompts', resource: 'resources', resourceTemplate: 'resourceTemplates' };
const NOUN: { readonly [K in FeatureKind]: string } = { tool: 'tool', prompt: 'prompt', resource: 'resource', resourceTemplate: 'resource template' };
const L = AUDIT_STRING_LIMITS;

interface DetectorHit {
  readonly workspaceId: string;
  readonly detector: ThreatDetector;
  readonly action: ThreatAuditAction;
  /** The discovery run's id, or a fresh id for a registration: hits found together share it. */
  readonly correlationId: string;
  readonly serverId: string;
  readonly gatewayId?: string;
  readonly assignmentId?: string;
  readonly featureName: string | null;
  /** Reason codes, never text. */
  readonly findings: readonly string[];
  readonly detail: string;
  /** An alert was raised for the hit (by the detector itself: these entries never pass the ingest's alert hook). */
  readonly alert: boolean;
}

function detectorEntry(hit: DetectorHit, at: Date): AuditEntry {
  return {
    id: randomUUID(),
    correlationId: hit.correlationId,
    leg: 'policy_action',
    occurredAt: at.toISOString(),
    durationMs: null,
    gatewayMs: null,
    upstreamMs: null,
    workspaceId: hit.workspaceId,
    gatewayId: hit.gatewayId ?? null,
    serverId: hit.serverId,
    assignmentId: hit.assignmentId ?? null,
    hostId: null,
    connectionId: null,
    tokenId: null,
    userId: null,
    clientName: null,
    clientVersion: null,
    sessionRef: null,
    method: null,
    featureName: hit.featureName === null ? null : clip(hit.featureName, L.featureName),
    jsonRpcId: null,
    status: hit.action === 'withhold' || hit.action === 'hold' ? 'blocked' : 'ok',
    errorCode: null,
    errorMessage: null,
    policyActions: [
      {
        ruleId: `detector:${hit.detector}`,
        ruleName: DETECTOR_NAMES[hit.detector],
        action: hit.action,
        findings: [...new Set(hit.findings)].slice(0, L.findings).map((code) => clip(code, L.name)),
        detail: clip(hit.detail, L.detail),
        alert: hit.alert,
      },
    ],
    body: null,
    bodyTruncated: false,
    headers: null,
    inputTokens: null,
    outputTokens: null,
    bytesIn: null,
    bytesOut: null,
    originIp: null,
    userAgent: null,
    dataPlaneId: null,
    dataPlaneInstance: CONTROL_PLANE_INSTANCE,
    snapshotVersion: null,
  };
}

/** A feature flagged as poisoned at discovery: withheld on every gateway until approved. */
export function auditFeatureFlagged(
  trx: Kysely<DB>,
  hit: {
    workspaceId: string;
    runId: string;
    serverId: string;
    serverName: string;
    kind: FeatureKind;
    name: string;
    score: number;
    reasons: readonly ThreatReason[];
    alert: boolean;
  },
): Promise<number> {
  const rules = hit.reasons.map((r) => `${r.rule} in ${r.field}`).join(', ');
  return insertAuditEntriesIn(trx, [
    detectorEntry(
      {
        workspaceId: hit.workspaceId,
        detector: 'tool_poisoning',
        action: 'withhold',
        correlationId: hit.runId,
        serverId: hit.serverId,
        featureName: hit.name,
        findings: hit.reasons.map((r) => r.code),
        detail: `${NOUN[hit.kind]} "${hit.name}" of server "${hit.serverName}" flagged at discovery (score ${hit.score.toFixed(2)}: ${rules}); withheld on every gateway until an admin approves it`,
        alert: hit.alert,
      },
      new Date(),
    ),
  ]);
}

/** A server whose name or URL passes for another one: held out of every gateway until approved. */
export function auditServerHeld(
  trx: Kysely<DB>,
  hit: { workspaceId: string; serverId: string; serverName: string; findings: readonly MimicryFinding[]; alert: boolean },
): Promise<number> {
  const resembles = hit.findings.map((f) => `server "${f.serverName}" (${f.code})`).join(', ');
  return insertAuditEntriesIn(trx, [
    detectorEntry(
      {
        workspaceId: hit.workspaceId,
        detector: 'mimicry',
        action: 'hold',
        correlationId: randomUUID(),
        serverId: hit.serverId,
        featureName: null,
        findings: hit.findings.map((f) => f.code),
        detail: `server "${hit.serverName}" resembles ${resembles}; held out of every gateway until an admin approves it`,
        alert: hit.alert,
      },
      new Date(),
    ),
  ]);
}

/** One pin a discovery found broken: the feature is withheld on that pin's gateway. */
export interface BrokenPin {
  readonly assignmentId: string;
  readonly gatewayId: string;
  readonly gatewaySlug: string;
  readonly namespacePrefix: string;
  readonly kind: FeatureKind;
  readonly name: string;
  readonly pinnedHash: string;
  readonly currentHash: string;
}

/** Pinned features whose new definition differs from the approved one (a rug pull): one entry per pin, named as its gateway exposes it. */
export function auditPinsBroken(
  trx: Kysely<DB>,
  hit: { workspaceId: string; runId: string; serverId: string; serverName: string; pins: readonly BrokenPin[]; alert: boolean },
): Promise<number> {
  const at = new Date();
  return insertAuditEntriesIn(
    trx,
    hit.pins.map((pin) =>
      detectorEntry(
        {
          workspaceId: hit.workspaceId,
          detector: 'rug_pull',
          action: 'withhold',
          correlationId: hit.runId,
          serverId: hit.serverId,
          gatewayId: pin.gatewayId,
          assignmentId: pin.assignmentId,
          featureName: namespacedFeatureName(FEATURE_TYPE[pin.kind], pin.namespacePrefix, pin.name),
          findings: ['PIN_MISMATCH'],
          detail: `pinned ${NOUN[pin.kind]} "${pin.name}" of server "${hit.serverName}" changed (pinned hash ${pin.pinnedHash.slice(0, 12)}…, now ${pin.currentHash.slice(0, 12)}…); withheld on gateway "${pin.gatewaySlug}" until an admin re-approves it`,
          alert: hit.alert,
        },
        at,
      ),
    ),
  );
}

// Approvals ------------------------------------------------------------------------------
//
// The other half of a hit: who let it back in, and when (the entry's `occurredAt`). Written
// in the approval's transaction, with a fresh correlation id; `detail` names the actor
// (`api_key:<id>`: an entry has no field for control-plane callers) and `findings` the
// reason codes that were approved over. No entry for an approval that changed nothing.

/** A flagged feature approved (`approveFlaggedFeature`): no longer withheld on any gateway. */
export function auditFeatureApproved(
  trx: Kysely<DB>,
  approval: { workspaceId: string; actor: string; serverId: string; serverName: string; kind: FeatureKind; name: string; hash: string; findings: readonly string[] },
): Promise<number> {
  return insertAuditEntriesIn(trx, [
    detectorEntry(
      {
        workspaceId: approval.workspaceId,
        detector: 'tool_poisoning',
        action: 'approve',
        correlationId: randomUUID(),
        serverId: approval.serverId,
        featureName: approval.name,
        findings: approval.findings,
        detail: `${NOUN[approval.kind]} "${approval.name}" of server "${approval.serverName}" approved by ${approval.actor} at hash ${approval.hash.slice(0, 12)}…; no longer withheld as flagged`,
        alert: false,
      },
      new Date(),
    ),
  ]);
}

/**
 * A server held as a possible impersonation let back into gateways: approved by an admin
 * (`approveServer`, action `approve`) or no longer resembling anything after a change of
 * its name or URL (action `release`).
 */
export function auditServerReleased(
  trx: Kysely<DB>,
  release: { workspaceId: string; actor: string; serverId: string; serverName: string; findings: readonly string[]; how: 'approve' | 'release' },
): Promise<number> {
  const why = release.how === 'approve' ? `approved by ${release.actor}` : `no longer resembles another server after a change by ${release.actor}`;
  return insertAuditEntriesIn(trx, [
    detectorEntry(
      {
        workspaceId: release.workspaceId,
        detector: 'mimicry',
        action: release.how,
        correlationId: randomUUID(),
        serverId: release.serverId,
        featureName: null,
        findings: release.findings,
        detail: `server "${release.serverName}" ${why}; no longer held out of gateways`,
        alert: false,
      },
      new Date(),
    ),
  ]);
}

/** A pinned feature whose definition changed, pinned again at its new definition (`pinFeature`): no longer withheld on that gateway. */
export function auditPinApproved(
  trx: Kysely<DB>,
  approval: {
    workspaceId: string;
    actor: string;
    serverId: string;
    gatewayId: string;
    assignmentId: string;
    namespacePrefix: string;
    kind: FeatureKind;
    name: string;
    previousHash: string;
    hash: string;
  },
): Promise<number> {
  return insertAuditEntriesIn(trx, [
    detectorEntry(
      {
        workspaceId: approval.workspaceId,
        detector: 'rug_pull',
        action: 'approve',
        correlationId: randomUUID(),
        serverId: approval.serverId,
        gatewayId: approval.gatewayId,
        assignmentId: approval.assignmentId,
        featureName: namespacedFeatureName(FEATURE_TYPE[approval.kind], approval.namespacePrefix, approval.name),
        findings: ['PIN_MISMATCH'],
        detail: `changed ${NOUN[approval.kind]} "${approval.name}" pinned again by ${approval.actor} (pinned hash ${approval.previousHash.slice(0, 12)}…, now ${approval.hash.slice(0, 12)}…); no longer withheld on this gateway`,
        alert: false,
      },
      new Date(),
    ),
  ]);
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}
