import type {
  EncryptedSecret,
  FeatureType,
  MetadataFieldOverride,
  JsonValue,
  RuleAction,
  RuleDetection,
  RuleHook,
  SnapshotGatewayAudit,
  SnapshotRuleEngine,
  SnapshotRuleScope,
  SnapshotUpstream,
} from '../../schema/snapshot/index.js';

/**
 * Everything `compileGatewaySnapshot` reads about one workspace: rows as the database
 * holds them, as plain data (no query-builder types), so repositories can fill it and
 * golden tests can write it as JSON. Order of rows does not matter; the compiler sorts.
 * Booleans named `disabled` are the kill switches admins flip.
 */
export interface SnapshotSource {
  readonly workspace: SourceWorkspace;
  readonly servers: readonly SourceServer[];
  readonly containers: readonly SourceContainer[];
  /** Which servers each container groups. */
  readonly containerMembers: readonly SourceContainerMember[];
  /** The latest successful discovery of every server, one row per feature. */
  readonly discoveredFeatures: readonly SourceDiscoveredFeature[];
  readonly gateways: readonly SourceGateway[];
  /** Which teams each gateway is provisioned to. */
  readonly gatewayTeams: readonly SourceGatewayTeam[];
  readonly assignments: readonly SourceAssignment[];
  readonly metadataOverrides: readonly SourceMetadataOverride[];
  readonly pins: readonly SourcePin[];
  /** Upstream credentials (vault identities); only their kill switches matter here. */
  readonly identities: readonly SourceIdentity[];
  readonly hosts: readonly SourceHost[];
  readonly connections: readonly SourceConnection[];
  readonly accessTokens: readonly SourceAccessToken[];
  readonly users: readonly SourceUser[];
  readonly teams: readonly SourceTeam[];
  /** Content rules of every gateway, disabled ones included (the compiler leaves them out). Absent: none. */
  readonly rules?: readonly SourceRule[];
  /** Every custom rule engine of the workspace; only those rules use are compiled. Absent: none. */
  readonly ruleEngines?: readonly SourceRuleEngine[];
}

export interface SourceWorkspace {
  readonly id: string;
  readonly name: string;
  readonly disabled: boolean;
  /** Salt of the `hash` rule action, already sealed for data planes. */
  readonly ruleHashSalt: EncryptedSecret;
}

/** Audit settings of a gateway nobody has configured: no bodies, 64 KiB cap should they be turned on. */
export const DEFAULT_GATEWAY_AUDIT: SnapshotGatewayAudit = Object.freeze({ bodies: 'metadata', maxBodyBytes: 65536 });

/** A gateway content rule as stored. */
export interface SourceRule {
  readonly id: string;
  readonly gatewayId: string;
  readonly name: string;
  readonly enabled: boolean;
  /** Position in the gateway's list; ties are broken by id. */
  readonly order: number;
  readonly hooks: readonly RuleHook[];
  readonly scope: SnapshotRuleScope;
  readonly detection: RuleDetection;
  readonly action: RuleAction;
  readonly failureMode: 'open' | 'closed';
  readonly raiseAlert: boolean;
}

/** A custom rule engine as stored, its secrets already sealed for data planes. */
export type SourceRuleEngine = SnapshotRuleEngine;

export interface SourceServer {
  readonly id: string;
  readonly name: string;
  readonly disabled: boolean;
  /** How to reach or launch it; secret env values already encrypted by the vault. */
  readonly upstream: SnapshotUpstream;
  readonly auth: SourceServerAuth;
}

/** How a server authenticates its callers. Secret values arrive already encrypted. */
export type SourceServerAuth =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'headers';
      /** The shared identity holding these headers, if recorded. */
      readonly identityId: string | null;
      readonly headers: readonly { readonly name: string; readonly value: EncryptedSecret }[];
    }
  | {
      readonly kind: 'oauth';
      /** The shared identity holding the tokens, if one exists yet. */
      readonly identityId: string | null;
    };

export interface SourceContainer {
  readonly id: string;
  readonly name: string;
  readonly disabled: boolean;
}

export interface SourceContainerMember {
  readonly containerId: string;
  readonly serverId: string;
}

export interface SourceDiscoveredFeature {
  readonly serverId: string;
  readonly featureType: FeatureType;
  /** Tool or prompt name, resource URI, or resource URI template. */
  readonly name: string;
  /** `hashFeatureDefinition` of the definition discovery saw. */
  readonly contentHash: string;
  /** Discovery judged the definition suspicious (tool poisoning); withheld until cleared. */
  readonly flagged: boolean;
  /** The server is held for review (anti-mimicry); every feature of it is withheld as `SERVER_HELD` until it is approved. Absent: false. */
  readonly held?: boolean;
}

export interface SourceGateway {
  readonly id: string;
  readonly slug: string;
  readonly name: string;
  readonly archived: boolean;
  readonly disabled: boolean;
  /** What data planes record of the gateway's calls. Absent: {@link DEFAULT_GATEWAY_AUDIT}. */
  readonly audit?: SnapshotGatewayAudit;
}

export interface SourceGatewayTeam {
  readonly gatewayId: string;
  readonly teamId: string;
}

/** What an admin chose for one feature type of an assignment. */
export type SourceProvisioning =
  | { readonly mode: 'ALLOW_ALL' }
  | {
      readonly mode: 'ALLOW_SELECTED';
      /** Upstream names (URIs, URI templates) chosen; names discovery has not seen expose nothing. */
      readonly selected: readonly string[];
    }
  | { readonly mode: 'BLOCK_ALL' };

/** Exactly one of `serverId` and `containerId` is set. */
export interface SourceAssignment {
  readonly id: string;
  readonly gatewayId: string;
  readonly serverId: string | null;
  readonly containerId: string | null;
  readonly disabled: boolean;
  readonly identityScheme: 'shared' | 'personal';
  /** May be empty: features keep their upstream names. */
  readonly namespacePrefix: string;
  /** Null for a feature type nobody has reviewed yet, which exposes nothing. */
  readonly provisioning: { readonly [T in FeatureType]: SourceProvisioning | null };
}

/** Per-feature metadata rewrites of an assignment; fields left out are kept. */
export interface SourceMetadataOverride {
  readonly assignmentId: string;
  readonly featureType: FeatureType;
  /** Upstream name (URI, URI template) of the feature. */
  readonly name: string;
  readonly title?: MetadataFieldOverride<string>;
  readonly description?: MetadataFieldOverride<string>;
  readonly annotations?: MetadataFieldOverride<{ readonly [key: string]: JsonValue }>;
}

/** A feature of an assignment pinned to the definition hash an admin approved. */
export interface SourcePin {
  readonly assignmentId: string;
  readonly featureType: FeatureType;
  /** Upstream name (URI, URI template) of the feature. */
  readonly name: string;
  readonly approvedHash: string;
}

export interface SourceIdentity {
  readonly id: string;
  readonly disabled: boolean;
}

export interface SourceHost {
  readonly id: string;
  readonly name: string;
  readonly disabled: boolean;
}

export interface SourceConnection {
  readonly id: string;
  readonly hostId: string;
  readonly gatewayId: string;
  /** The user it acts for, or null for a machine identity. */
  readonly userId: string | null;
  readonly disabled: boolean;
}

export interface SourceAccessToken {
  readonly id: string;
  readonly connectionId: string;
  /** `hashToken` of the token: lowercase hex SHA-256. The token itself is never stored. */
  readonly tokenHash: string;
  readonly expiresAt: Date | string | null;
  readonly revoked: boolean;
}

export interface SourceUser {
  readonly id: string;
  readonly state: 'invited' | 'active' | 'deactivated';
  readonly disabled: boolean;
  readonly teamIds: readonly string[];
}

export interface SourceTeam {
  readonly id: string;
  readonly disabled: boolean;
}
