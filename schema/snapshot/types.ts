/**
 * The gateway snapshot: everything a data plane needs to decide an MCP call for one
 * workspace with no database access. The control plane compiles it from its rows,
 * numbers it, and pushes it; the data plane validates it (`parseGatewaySnapshot`) and
 * serves from it until a newer one arrives. `SNAPSHOT.md` beside this file is the
 * normative description; these types are its checked form.
 *
 * `enabled` flags are *effective*: each folds in the kill switches its field names (an
 * assignment is disabled when its server is), so the hot path checks one flag per level:
 * workspace, gateway, assignment; token, connection, user, team. `killSwitches` keeps
 * the raw lists, for the kinds with no entity of their own here (personal identities)
 * and for reporting.
 */

/** The snapshot layout this code reads and writes. A data plane rejects any other. */
export const SNAPSHOT_FORMAT_VERSION = 1;

/** The four kinds of MCP feature a gateway governs, in their snapshot spelling. */
export const FEATURE_TYPES = ['tools', 'prompts', 'resources', 'resourceTemplates'] as const;
export type FeatureType = (typeof FEATURE_TYPES)[number];

/** Kinds of thing an admin can switch off, each taking effect in every data plane. */
export const KILL_SWITCH_KINDS = [
  'workspace',
  'gateway',
  'server',
  'container',
  'assignment',
  'host',
  'connection',
  'user',
  'identity',
] as const;
export type KillSwitchKind = (typeof KILL_SWITCH_KINDS)[number];

/** Any value JSON can carry; used where the upstream's own shapes pass through. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/**
 * A secret encrypted by the control plane's vault with AES-256-GCM. Data planes decrypt
 * it only when they attach it to an upstream request; it never appears in plaintext in a
 * snapshot, on the wire, or in a log.
 */
export interface EncryptedSecret {
  /** Names the data key that encrypted it, so keys can rotate while old ciphertexts remain readable. */
  readonly keyId: string;
  /** The only algorithm of this format version. */
  readonly alg: 'A256GCM';
  /**
   * Additional authenticated data bound in at encryption (the vault's context, naming
   * where the secret belongs), UTF-8; decryption must pass the same. Not secret.
   */
  readonly aad: string;
  /** 96-bit nonce, base64. */
  readonly iv: string;
  /** Ciphertext, base64. */
  readonly ciphertext: string;
  /** 128-bit GCM authentication tag, base64. */
  readonly tag: string;
}

/** One snapshot per workspace: the unit a data plane receives, validates and swaps in. */
export interface GatewaySnapshot {
  /** Layout of this document; always {@link SNAPSHOT_FORMAT_VERSION} for this code. */
  readonly formatVersion: typeof SNAPSHOT_FORMAT_VERSION;
  /** The workspace every id in this snapshot belongs to. */
  readonly workspaceId: string;
  /**
   * Assigned by the publisher, strictly increasing per workspace. A data plane accepts
   * only a version greater than the one it holds.
   */
  readonly version: number;
  /**
   * Lowercase hex SHA-256 of the canonical JSON of this snapshot without `version`,
   * `contentHash` and `generatedAt` (see `hash.ts`). Equal content, equal hash.
   */
  readonly contentHash: string;
  /** When the control plane compiled it, ISO 8601 UTC. Informational. */
  readonly generatedAt: string;
  /** The tenant's own state. */
  readonly workspace: SnapshotWorkspace;
  /** Every gateway of the workspace, archived ones included, ordered by slug. */
  readonly gateways: readonly SnapshotGateway[];
  /** Who may reach which gateway. */
  readonly access: SnapshotAccess;
  /** What admins switched off, as sorted id lists per kind. */
  readonly killSwitches: SnapshotKillSwitches;
  /** Gateway content rules of every gateway, in evaluation order per gateway. */
  readonly rules: readonly SnapshotRule[];
  /** Custom rule engines referenced by rules, ordered by id. */
  readonly ruleEngines: readonly SnapshotRuleEngine[];
}

export interface SnapshotWorkspace {
  /** Display name, for messages. */
  readonly name: string;
  /** False when the workspace kill switch is on: every call of the workspace is refused. */
  readonly enabled: boolean;
  /** Salt of the `hash` rule action (stable across calls and replicas); encrypted. */
  readonly ruleHashSalt: EncryptedSecret;
}

export interface SnapshotGateway {
  readonly id: string;
  /** URL-safe, unique in the workspace; the last segment of the gateway's MCP URL. */
  readonly slug: string;
  /** Display name, for messages and `initialize`. */
  readonly name: string;
  /** Soft-deleted: every call is refused as archived. Its assignments are not compiled (always empty). */
  readonly archived: boolean;
  /** False when the gateway kill switch is on: every call is refused as disabled. */
  readonly enabled: boolean;
  /** Path the data plane serves this gateway on: `/mcp/<slug>`. */
  readonly dataPlaneUrlPath: string;
  /** Servers placed on the gateway, ordered by assignment id then server id. */
  readonly assignments: readonly SnapshotAssignment[];
  /** What the data plane records of this gateway's calls. */
  readonly audit: SnapshotGatewayAudit;
}

/**
 * `full`: audit entries carry request and response bodies (secret-scrubbed, cut at
 * `maxBodyBytes`); `metadata`: no bodies, only sizes and token estimates.
 */
export interface SnapshotGatewayAudit {
  readonly bodies: 'full' | 'metadata';
  readonly maxBodyBytes: number;
}

/** What put an assignment out of service; see {@link SnapshotAssignment.disabledBy}. */
export type AssignmentDisabledBy = 'assignment' | 'server' | 'container' | 'identity';

/**
 * One upstream server as placed on one gateway. An assignment of a container appears
 * once per member server, all sharing the assignment `id`; `(id, serverId)` is unique.
 */
export interface SnapshotAssignment {
  /** The assignment's id. */
  readonly id: string;
  /** The upstream server this entry reaches. */
  readonly serverId: string;
  /** Display name of the server, for messages and audit. */
  readonly serverName: string;
  /** The container the assignment placed, when it placed a container rather than one server. */
  readonly containerId: string | null;
  /** False when `disabledBy` is not empty. A disabled assignment lists nothing and refuses calls. */
  readonly enabled: boolean;
  /** Every kill switch that disables this entry, in the order of the type; empty when enabled. */
  readonly disabledBy: readonly AssignmentDisabledBy[];
  /** `shared`: one service credential for everyone; `personal`: each user's own credential. */
  readonly identityScheme: 'shared' | 'personal';
  /** Prepended to every feature name of this assignment; may be empty (see `namespacedFeatureName`). */
  readonly namespacePrefix: string;
  /** How to reach or launch the upstream. */
  readonly upstream: SnapshotUpstream;
  /** What credential to attach to upstream requests. */
  readonly upstreamAuth: SnapshotUpstreamAuth;
  /** The admin's provisioning choice per feature type; informational, for error messages. */
  readonly provisioning: SnapshotProvisioningModes;
  /** Per feature type, exactly the features a client may see. Anything absent is not provisioned. */
  readonly features: SnapshotFeatureSets;
}

/**
 * `UNREVIEWED` is the fail-closed default of a new assignment: nothing is exposed until
 * an admin chooses one of the other three.
 */
export type ProvisioningMode = 'ALLOW_ALL' | 'ALLOW_SELECTED' | 'BLOCK_ALL' | 'UNREVIEWED';

export type SnapshotProvisioningModes = { readonly [T in FeatureType]: ProvisioningMode };

export type SnapshotFeatureSets = { readonly [T in FeatureType]: readonly SnapshotFeature[] };

/**
 * A provisioned feature. Only provisioned features that discovery has seen appear;
 * unprovisioned ones are omitted. A withheld feature appears so its name stays reserved
 * and the data plane can say why a call to it is refused, but it is never listed or called.
 *
 * Unlike the rest of the snapshot, unset fields here are absent rather than null: a
 * large workspace has hundreds of thousands of features, and three nulls each would be a
 * third of the encoded snapshot.
 */
export interface SnapshotFeature {
  /**
   * The name clients see and call: the tool or prompt name, or the resource URI or URI
   * template, namespaced with the assignment's prefix. Unique per feature type per gateway.
   */
  readonly name: string;
  /** The upstream's own name (or URI, or URI template) that `name` translates back to. */
  readonly upstreamName: string;
  /**
   * Hash of the definition an admin approved (`hashFeatureDefinition`); absent when not
   * pinned. A data plane that sees a live definition with another hash must withhold it.
   */
  readonly pinnedHash?: string;
  /** Why the feature is withheld from clients; absent when it is served. */
  readonly withheld?: WithheldReason;
  /** Metadata rewrites applied on the way to the client; absent to pass metadata through. */
  readonly overrides?: SnapshotMetadataOverrides;
}

/**
 * - `NAME_COLLISION`: another feature of the same type on the same gateway is exposed
 *   under the same `name` (discovery drift: an upstream added a name another assignment
 *   already exposes). Every feature claiming the name is withheld, so neither upstream
 *   can capture calls meant for the other; an admin resolves it with a prefix or provisioning.
 * - `SERVER_HELD`: the feature's server is held for review (anti-mimicry: its name or URL
 *   passes for another server of the workspace); every feature of it is withheld until an
 *   admin approves the server.
 * - `PIN_MISMATCH`: discovery saw a definition whose hash differs from the pinned one;
 *   an admin must re-approve it.
 * - `FLAGGED`: discovery flagged the definition as suspicious (tool poisoning); an admin
 *   must clear it.
 *
 * When several apply, the first in this list wins.
 */
export type WithheldReason = 'NAME_COLLISION' | 'SERVER_HELD' | 'PIN_MISMATCH' | 'FLAGGED';

/** Every {@link WithheldReason}, in precedence order. */
export const WITHHELD_REASONS = ['NAME_COLLISION', 'SERVER_HELD', 'PIN_MISMATCH', 'FLAGGED'] as const satisfies readonly WithheldReason[];

/** Rewrites of what clients are told about a feature, to correct it or to cut tokens. */
export interface SnapshotMetadataOverrides {
  readonly title: MetadataFieldOverride<string>;
  readonly description: MetadataFieldOverride<string>;
  readonly annotations: MetadataFieldOverride<{ readonly [key: string]: JsonValue }>;
}

/** `keep` passes the upstream's value, `strip` removes the field, `replace` sends `value` instead. */
export type MetadataFieldOverride<T> =
  | { readonly action: 'keep' }
  | { readonly action: 'strip' }
  | { readonly action: 'replace'; readonly value: T };

/** How to reach or launch an upstream, by server kind. */
export type SnapshotUpstream =
  | RemoteUpstream
  | ManagedStdioUpstream
  | ManagedHttpUpstream
  | WorkstationUpstream;

/** A server on the network that the data plane calls. */
export interface RemoteUpstream {
  readonly kind: 'remote';
  /** Absolute https URL (http only for loopback or with `allowInsecure`). */
  readonly url: string;
  /** `streamable-http` (current MCP transport) or `sse` (legacy HTTP+SSE). */
  readonly transport: 'streamable-http' | 'sse';
  /** The admin allowed plain http to a non-loopback host for this server. */
  readonly allowInsecure: boolean;
}

/** Launch specification shared by managed servers. */
interface ManagedLaunchSpec {
  /** Executable to run. */
  readonly command: string;
  /** Arguments, in order. */
  readonly args: readonly string[];
  /** Non-secret environment variables. */
  readonly env: { readonly [name: string]: string };
  /** Secret environment variables, encrypted; decrypted only into the child's environment. */
  readonly secretEnv: { readonly [name: string]: EncryptedSecret };
  /** Working directory, or null for the data plane's default. */
  readonly cwd: string | null;
}

/** A stdio MCP server the data plane launches and supervises. */
export interface ManagedStdioUpstream extends ManagedLaunchSpec {
  readonly kind: 'managed-stdio';
}

/** An HTTP MCP server the data plane launches and then calls at `url`. */
export interface ManagedHttpUpstream extends ManagedLaunchSpec {
  readonly kind: 'managed-http';
  /** Streamable HTTP URL the launched process listens on. */
  readonly url: string;
}

/**
 * A server on a user's machine reached through an outbound tunnel. The tunnel is not
 * part of this format version: a data plane refuses calls to it as unreachable.
 */
export interface WorkstationUpstream {
  readonly kind: 'workstation';
  /** The user whose workstation runs the server, when known. */
  readonly ownerUserId: string | null;
}

/** The credential a data plane attaches to upstream requests of an assignment. */
export type SnapshotUpstreamAuth =
  | NoUpstreamAuth
  | HeadersUpstreamAuth
  | OAuthUpstreamAuth
  | PersonalUpstreamAuth;

/** Nothing is attached. */
export interface NoUpstreamAuth {
  readonly kind: 'none';
}

/** Shared custom headers (an API key, a bearer token) sent on every upstream request. */
export interface HeadersUpstreamAuth {
  readonly kind: 'headers';
  /** The identity these credentials belong to, so its kill switch can be checked; null when none is recorded. */
  readonly identityId: string | null;
  /** Headers to send, ordered by lowercased name; values encrypted. */
  readonly headers: readonly SnapshotSecretHeader[];
}

export interface SnapshotSecretHeader {
  /** HTTP header name as the admin wrote it. */
  readonly name: string;
  /** The header value, encrypted. */
  readonly value: EncryptedSecret;
}

/**
 * A shared OAuth credential to the upstream. The token exchange arrives in a later
 * format version; until then a data plane refuses calls that need it.
 */
export interface OAuthUpstreamAuth {
  readonly kind: 'oauth';
  /** The shared identity holding the tokens, when one exists. */
  readonly identityId: string | null;
}

/**
 * Each user brings their own credential (identity scheme `personal`). Shared
 * credentials are never compiled into a personal assignment. The data plane resolves the
 * caller's identity for the server and refuses the call when there is none.
 */
export interface PersonalUpstreamAuth {
  readonly kind: 'personal';
  /** How the server authenticates, so the data plane knows which credential to look for. */
  readonly method: 'headers' | 'oauth';
}

/**
 * Authentication and authorization data. Maps are keyed by id (tokens by hash) and
 * their keys are sorted.
 */
export interface SnapshotAccess {
  /** Lowercase hex SHA-256 of an API access token → what it grants. Revoked and expired tokens are absent. */
  readonly tokens: { readonly [tokenHash: string]: SnapshotAccessToken };
  /** Every host (app or agent) of the workspace, by id. */
  readonly hosts: { readonly [hostId: string]: SnapshotHost };
  /** Every connection (a host's pathway to one gateway), by id. */
  readonly connections: { readonly [connectionId: string]: SnapshotConnection };
  /** Every user of the workspace, by id. */
  readonly users: { readonly [userId: string]: SnapshotUser };
  /** Every team of the workspace, by id. */
  readonly teams: { readonly [teamId: string]: SnapshotTeam };
}

/** An API access token, scoped to exactly one connection. */
export interface SnapshotAccessToken {
  readonly tokenId: string;
  readonly hostId: string;
  readonly connectionId: string;
  /** The only gateway the token reaches. */
  readonly gatewayId: string;
  /** Effective: false when the token's host or connection is switched off. */
  readonly enabled: boolean;
  /** Expiry, ISO 8601 UTC, or null for none. The data plane compares it with its own clock. */
  readonly expiresAt: string | null;
}

export interface SnapshotHost {
  /** Display name, for messages and audit. */
  readonly name: string;
  /** False when the host kill switch is on. */
  readonly enabled: boolean;
}

export interface SnapshotConnection {
  readonly hostId: string;
  readonly gatewayId: string;
  /** The user the connection acts for, or null for a machine identity. */
  readonly userId: string | null;
  /** Effective: false when the connection or its host is switched off. */
  readonly enabled: boolean;
}

export interface SnapshotUser {
  /** Only `active` users may call. */
  readonly state: 'invited' | 'active' | 'deactivated';
  /** False when the user kill switch is on, whatever the state. */
  readonly enabled: boolean;
  /** Teams the user belongs to, sorted. */
  readonly teamIds: readonly string[];
}

export interface SnapshotTeam {
  /** A disabled team grants nothing. */
  readonly enabled: boolean;
  /** Gateways provisioned to the team, sorted. A user reaches a gateway through any enabled team of theirs. */
  readonly gatewayIds: readonly string[];
}

/** Ids switched off by an admin, per kind, each list sorted. */
export type SnapshotKillSwitches = { readonly [K in KillSwitchKind]: readonly string[] };

/** Where a rule runs: on the client's request before it goes upstream, or on the upstream's answer. */
export type RuleHook = 'request' | 'response';
export const RULE_HOOKS = ['request', 'response'] as const satisfies readonly RuleHook[];

/**
 * Which part of the traffic a rule scans. Request leg: `toolArguments` (tools/call
 * arguments), `promptArguments` (prompts/get arguments), `resourceUris` (the URI of
 * resources/read, resources/subscribe and resources/unsubscribe, percent-decoded).
 * Response leg: `toolResults` (tools/call content and structuredContent),
 * `resourceContents` (resources/read text), `promptMessages` (prompts/get messages).
 * `completion/complete` is scanned as the feature it completes: a prompt argument's value
 * and context as `promptArguments`, a resource template variable's as `resourceUris`; the
 * suggested values as `promptMessages` (prompt) or `resourceContents` (resource template).
 *
 * Server-to-client requests an upstream sends while serving a call travel the other way:
 * `relayedRequests` (response leg: what the upstream asks the client, the messages and
 * system prompt of `sampling/createMessage`, the message of `elicitation/create`) and
 * `relayedAnswers` (request leg: what goes back upstream, the sampled content, the values
 * a person entered for an elicitation). They are scanned in the scope of the call they
 * belong to (its assignment and feature).
 */
export type RulePart = 'toolArguments' | 'promptArguments' | 'resourceUris' | 'toolResults' | 'resourceContents' | 'promptMessages' | 'relayedRequests' | 'relayedAnswers';
export const RULE_PARTS = [
  'toolArguments',
  'promptArguments',
  'resourceUris',
  'toolResults',
  'resourceContents',
  'promptMessages',
  'relayedRequests',
  'relayedAnswers',
] as const satisfies readonly RulePart[];

/** How a rule finds what it acts on. */
export type RuleDetection =
  /** Patterns OR'd together, compiled with RE2 (linear time). The control plane rejects unsupported syntax at save. */
  | { readonly kind: 'regex'; readonly patterns: readonly string[]; readonly caseInsensitive: boolean }
  /** The built-in PII recognizers (`schema/rules/pii`), restricted to these entity types. */
  | {
      readonly kind: 'pii';
      readonly entityTypes: readonly string[];
      /** 0..1; findings below it are ignored. */
      readonly minConfidence: number;
      /** Exact values never reported (known-safe test numbers, support addresses). */
      readonly allowList: readonly string[];
    }
  /** A custom rule engine registered in the workspace (see {@link SnapshotRuleEngine}). */
  | { readonly kind: 'engine'; readonly engineId: string }
  /** A built-in detector with its score threshold (0..1). */
  | { readonly kind: 'detector'; readonly detector: 'prompt_injection'; readonly threshold: number };

/**
 * What a rule does with a match. `redact` writes `[REDACTED:<type>]` (the entity type,
 * or `REGEX`/the detector name); `mask` keeps the last `keepLast` characters and stars
 * the rest; `hash` writes `sha256:<hex>` of the match salted with the workspace's rule
 * salt (stable across calls); `alert_only` changes nothing and records the trigger.
 * `block` ends the call: a request-leg block is a JSON-RPC error naming the rule; a
 * response-leg block replaces the result with an error result.
 */
export type RuleAction =
  | { readonly kind: 'block' }
  | { readonly kind: 'redact' }
  | { readonly kind: 'replace'; readonly text: string }
  | { readonly kind: 'mask'; readonly keepLast: number }
  | { readonly kind: 'hash' }
  | { readonly kind: 'alert_only' };

/**
 * A gateway content rule. Rules of a gateway are listed in evaluation order (ascending
 * `order`, then id); disabled rules are not compiled.
 */
export interface SnapshotRule {
  readonly id: string;
  readonly gatewayId: string;
  /** Shown in errors and audit records; the patterns never are. */
  readonly name: string;
  readonly order: number;
  /** Non-empty. */
  readonly hooks: readonly RuleHook[];
  readonly scope: SnapshotRuleScope;
  readonly detection: RuleDetection;
  readonly action: RuleAction;
  /** For engines (and any detection that fails at run time): `closed` blocks the call, `open` lets it through. */
  readonly failureMode: 'open' | 'closed';
  /** Whether a trigger raises an alert (every trigger is audited regardless). */
  readonly raiseAlert: boolean;
}

/** Empty lists mean "all". `features` are exposed (namespaced) feature names. */
export interface SnapshotRuleScope {
  readonly assignmentIds: readonly string[];
  readonly features: readonly string[];
  /** Non-empty. */
  readonly parts: readonly RulePart[];
}

/** A custom rule engine the gateway calls with a signed envelope (see `schema/rules/engines`). */
export interface SnapshotRuleEngine {
  readonly id: string;
  readonly name: string;
  /** `webhook`: Gatehouse's own envelope; `lakera`: Lakera Guard; `bedrock`: Amazon Bedrock ApplyGuardrail. */
  readonly kind: 'webhook' | 'lakera' | 'bedrock';
  /** https:// (http:// only when `allowPrivateNetwork`). */
  readonly url: string;
  readonly method: 'POST' | 'PUT';
  /** Headers sent to the engine; values encrypted. */
  readonly headers: readonly { readonly name: string; readonly value: EncryptedSecret }[];
  /** Caller request headers copied onto the engine call (lowercase names). */
  readonly forwardHeaders: readonly string[];
  /** HMAC-SHA256 key of the `x-gatehouse-signature` header; encrypted. */
  readonly signingSecret: EncryptedSecret;
  readonly timeoutMs: number;
  /** Development only: allow loopback and private addresses (checked after DNS resolution otherwise). */
  readonly allowPrivateNetwork: boolean;
  /** Adapter settings (Bedrock guardrail id/version/region, Lakera project id), not secret. */
  readonly options: { readonly [key: string]: string };
}
