import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { AuditEntry, AuditLeg, AuditPolicyAction, AuditStatus } from '../../schema/audit/types.js';
import { auditDb } from '../../control-plane/audit/audit-log.table.js';
import type { DB } from '../../control-plane/db/tables.js';

/**
 * Audit rows written straight into `audit_entries`, for read-side tests that must not
 * depend on the ingest path: realistic single entries and calls (four correlated legs),
 * and a bulk seeder that generates rows inside the database (INSERT … SELECT
 * generate_series) for benchmarks and large exports.
 */

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One leg with every field filled the way a data plane fills it; override what the test cares about. */
export function auditEntry(overrides: Partial<AuditEntry> & Pick<AuditEntry, 'workspaceId'>): AuditEntry {
  const base: Mutable<AuditEntry> = {
    id: randomUUID(),
    correlationId: randomUUID(),
    leg: 'client_response',
    occurredAt: new Date().toISOString(),
    durationMs: 12.5,
    gatewayMs: 1.5,
    upstreamMs: 11,
    workspaceId: overrides.workspaceId,
    gatewayId: null,
    serverId: null,
    assignmentId: null,
    hostId: null,
    connectionId: null,
    tokenId: null,
    userId: null,
    clientName: 'test-client',
    clientVersion: '1.0.0',
    sessionRef: 'a1b2c3d4e5f6',
    method: 'tools/call',
    featureName: 'echo',
    jsonRpcId: '1',
    status: 'ok',
    errorCode: null,
    errorMessage: null,
    policyActions: [],
    body: null,
    bodyTruncated: false,
    headers: null,
    inputTokens: null,
    outputTokens: null,
    bytesIn: 120,
    bytesOut: 240,
    originIp: '127.0.0.1',
    userAgent: 'vitest',
    dataPlaneId: null,
    dataPlaneInstance: 'dp-test-1',
    snapshotVersion: 1,
  };
  return { ...base, ...overrides };
}

export interface CallSpec {
  readonly workspaceId: string;
  /** When the client request arrived; the other legs follow by a few ms. */
  readonly at: Date;
  readonly gatewayId?: string | null;
  readonly serverId?: string | null;
  readonly assignmentId?: string | null;
  readonly hostId?: string | null;
  readonly connectionId?: string | null;
  readonly userId?: string | null;
  readonly method?: string;
  readonly feature?: string | null;
  readonly status?: AuditStatus;
  /** Whole-call duration (client response). Default 20. */
  readonly durationMs?: number;
  readonly inputTokens?: number | null;
  readonly outputTokens?: number | null;
  readonly errorMessage?: string | null;
  readonly requestBody?: string | null;
  readonly responseBody?: string | null;
  readonly headers?: Record<string, string> | null;
  readonly policyActions?: readonly AuditPolicyAction[];
  /** Blocked calls never reach the upstream: no upstream legs. */
  readonly upstream?: boolean;
}

/**
 * The legs of one call as a data plane records them: client request (input tokens),
 * upstream request and response, client response (output tokens, the whole duration),
 * and a policy action leg when policy actions are given.
 */
export function auditCall(spec: CallSpec): AuditEntry[] {
  const correlationId = randomUUID();
  const status = spec.status ?? 'ok';
  const duration = spec.durationMs ?? 20;
  const at = (ms: number) => new Date(spec.at.getTime() + ms).toISOString();
  const common = {
    workspaceId: spec.workspaceId,
    correlationId,
    gatewayId: spec.gatewayId ?? null,
    serverId: spec.serverId ?? null,
    assignmentId: spec.assignmentId ?? null,
    hostId: spec.hostId ?? null,
    connectionId: spec.connectionId ?? null,
    userId: spec.userId ?? null,
    method: spec.method ?? 'tools/call',
    featureName: spec.feature === undefined ? 'echo' : spec.feature,
    jsonRpcId: '7',
  };
  const error = status === 'ok' ? {} : { errorCode: status === 'blocked' ? -32001 : -32603, errorMessage: spec.errorMessage ?? (status === 'blocked' ? 'blocked by rule' : 'upstream failed') };
  const legs: AuditEntry[] = [
    auditEntry({ ...common, leg: 'client_request', occurredAt: at(0), durationMs: null, gatewayMs: null, upstreamMs: null, inputTokens: spec.inputTokens ?? null, body: spec.requestBody ?? null, headers: spec.headers ?? null }),
  ];
  if (spec.upstream ?? status !== 'blocked') {
    legs.push(auditEntry({ ...common, leg: 'upstream_request', occurredAt: at(1), durationMs: null, gatewayMs: null, upstreamMs: null, inputTokens: spec.inputTokens ?? null, body: spec.requestBody ?? null }));
    legs.push(
      auditEntry({ ...common, ...error, leg: 'upstream_response', status, occurredAt: at(duration - 1), durationMs: duration - 2, gatewayMs: null, upstreamMs: duration - 2, outputTokens: spec.outputTokens ?? null, body: spec.responseBody ?? null }),
    );
  }
  if (spec.policyActions?.length) legs.push(auditEntry({ ...common, leg: 'policy_action', status, occurredAt: at(duration - 1), durationMs: null, policyActions: spec.policyActions }));
  legs.push(
    auditEntry({ ...common, ...error, leg: 'client_response', status, occurredAt: at(duration), durationMs: duration, gatewayMs: 2, upstreamMs: duration - 2, outputTokens: spec.outputTokens ?? null, body: spec.responseBody ?? null }),
  );
  return legs;
}

/** Stores entries as they are (no ingest), in chunks. `ingestedAt` overrides the database default. */
export async function insertAuditEntries(db: Kysely<DB>, entries: readonly AuditEntry[], options: { ingestedAt?: Date } = {}): Promise<void> {
  for (let i = 0; i < entries.length; i += 500) {
    const rows = entries.slice(i, i + 500).map((e) => ({
      id: e.id,
      occurred_at: e.occurredAt,
      workspace_id: e.workspaceId,
      correlation_id: e.correlationId,
      leg: e.leg,
      status: e.status,
      duration_ms: e.durationMs,
      gateway_ms: e.gatewayMs,
      upstream_ms: e.upstreamMs,
      gateway_id: e.gatewayId,
      server_id: e.serverId,
      assignment_id: e.assignmentId,
      host_id: e.hostId,
      connection_id: e.connectionId,
      token_id: e.tokenId,
      user_id: e.userId,
      client_name: e.clientName,
      client_version: e.clientVersion,
      session_ref: e.sessionRef,
      method: e.method,
      feature_name: e.featureName,
      json_rpc_id: e.jsonRpcId,
      error_code: e.errorCode,
      error_message: e.errorMessage,
      policy_actions: JSON.stringify(e.policyActions),
      body: e.body,
      body_truncated: e.bodyTruncated,
      headers: e.headers === null ? null : JSON.stringify(e.headers),
      input_tokens: e.inputTokens,
      output_tokens: e.outputTokens,
      bytes_in: e.bytesIn,
      bytes_out: e.bytesOut,
      origin_ip: e.originIp,
      user_agent: e.userAgent,
      data_plane_id: e.dataPlaneId,
      data_plane_instance: e.dataPlaneInstance,
      snapshot_version: e.snapshotVersion,
      ...(options.ingestedAt && { ingested_at: options.ingestedAt }),
    }));
    await auditDb(db).insertInto('audit_entries').values(rows as never).execute();
  }
}

export interface SeedSpec {
  readonly workspaceId: string;
  /** Calls to generate; each is four legs (client request, upstream request/response, client response). */
  readonly calls: number;
  readonly from: Date;
  readonly to: Date;
  readonly gatewayIds?: readonly string[];
  readonly serverIds?: readonly string[];
  readonly userIds?: readonly string[];
  readonly hostIds?: readonly string[];
  readonly connectionIds?: readonly string[];
  /** Distinct feature names (`tool_1` … `tool_N`). Default 40. */
  readonly features?: number;
  /** Approximate bytes of each leg's JSON body; 0 (default) stores no bodies. */
  readonly bodyBytes?: number;
  /** Calls per INSERT statement. Default 50,000. */
  readonly chunk?: number;
}

const LEGS: readonly AuditLeg[] = ['client_request', 'upstream_request', 'upstream_response', 'client_response'];

const uuidArray = (ids: readonly string[] | undefined) => sql`${`{${(ids?.length ? ids : [randomUUID()]).join(',')}}`}::uuid[]`;

/**
 * Generates `calls` × 4 realistic entries inside the database: uniform times in the
 * window, ~90 % ok / 7 % error / 3 % blocked, skewed feature and user popularity, long-tailed
 * durations, token estimates on the client legs. Fast enough for a million rows.
 */
export async function seedAuditEntries(db: Kysely<DB>, spec: SeedSpec): Promise<number> {
  const chunk = spec.chunk ?? 50_000;
  const features = spec.features ?? 40;
  const span = (spec.to.getTime() - spec.from.getTime()) / 1000;
  const filler = spec.bodyBytes ? Math.max(1, Math.floor(spec.bodyBytes / 12)) : 0;
  let done = 0;
  while (done < spec.calls) {
    const n = Math.min(chunk, spec.calls - done);
    await sql`
      INSERT INTO audit_entries (
        id, occurred_at, workspace_id, correlation_id, leg, status, duration_ms, gateway_ms, upstream_ms,
        gateway_id, server_id, host_id, connection_id, user_id, client_name, client_version, session_ref,
        method, feature_name, json_rpc_id, error_code, error_message, policy_actions, body, body_truncated, headers,
        input_tokens, output_tokens, bytes_in, bytes_out, origin_ip, user_agent, data_plane_instance, snapshot_version)
      SELECT
        gen_random_uuid(),
        c.t + make_interval(secs => l.n * c.d / 4000.0),
        ${spec.workspaceId}::uuid, c.cid, l.leg,
        CASE WHEN l.leg IN ('client_request', 'upstream_request') THEN 'ok' ELSE c.status END,
        CASE l.leg WHEN 'client_response' THEN c.d WHEN 'upstream_response' THEN c.d * 0.9 ELSE NULL END,
        CASE WHEN l.leg = 'client_response' THEN c.d * 0.1 END,
        CASE WHEN l.leg IN ('client_response', 'upstream_response') THEN c.d * 0.9 END,
        c.gw, c.srv, c.host, c.conn, c.usr, 'bench-client', '1.0.0', substr(md5(c.i::text), 1, 12),
        'tools/call', 'tool_' || c.f, c.i::text,
        CASE WHEN l.leg IN ('upstream_response', 'client_response') AND c.status <> 'ok' THEN -32603 END,
        CASE WHEN l.leg IN ('upstream_response', 'client_response') AND c.status <> 'ok' THEN 'upstream said no for call ' || c.i END,
        '[]'::jsonb,
        CASE WHEN ${filler}::int > 0 THEN '{"jsonrpc":"2.0","id":' || c.i || ',"params":{"name":"tool_' || c.f || '","text":"' || repeat('lorem ipsum ', ${filler}::int) || '"}}' END,
        false,
        CASE WHEN ${filler}::int > 0 AND l.leg = 'client_request' THEN '{"user-agent":"vitest","mcp-protocol-version":"2025-06-18"}'::jsonb END,
        CASE WHEN l.leg IN ('client_request', 'upstream_request') THEN c.tin END,
        CASE WHEN l.leg IN ('client_response', 'upstream_response') THEN c.tout END,
        200 + c.tin, 300 + c.tout, '10.0.0.' || (c.i % 250), 'bench-agent/1.0', 'dp-bench', 1
      FROM (
        SELECT i, gen_random_uuid() AS cid,
          ${spec.from}::timestamptz + make_interval(secs => rt * ${span}::float8) AS t,
          round((5 + 200 * power(rd, 3))::numeric, 3)::float8 AS d,
          CASE WHEN r < 0.90 THEN 'ok' WHEN r < 0.97 THEN 'error' ELSE 'blocked' END AS status,
          1 + floor(power(rf, 2) * ${features}::int)::int AS f,
          (10 + floor(ri * 500))::int AS tin, (20 + floor(ro * 2000))::int AS tout,
          g[1 + floor(rg * cardinality(g))::int] AS gw,
          s[1 + floor(rs * cardinality(s))::int] AS srv,
          h[1 + floor(power(rh, 2) * cardinality(h))::int] AS host,
          cn[1 + floor(power(rh, 2) * cardinality(cn))::int] AS conn,
          u[1 + floor(power(ru, 2) * cardinality(u))::int] AS usr
        FROM (
          SELECT i, random() AS r, random() AS rt, random() AS rd, random() AS rf, random() AS ri, random() AS ro,
                 random() AS rg, random() AS rs, random() AS rh, random() AS ru
          FROM generate_series(1, ${n}::int) i
        ) rnd,
        (SELECT ${uuidArray(spec.gatewayIds)} AS g, ${uuidArray(spec.serverIds)} AS s, ${uuidArray(spec.hostIds)} AS h,
                ${uuidArray(spec.connectionIds)} AS cn, ${uuidArray(spec.userIds)} AS u) ids
      ) c
      CROSS JOIN (VALUES ${sql.join(LEGS.map((leg, n) => sql`(${sql.lit(n)}, ${sql.lit(leg)})`))}) AS l(n, leg)`.execute(db);
    done += n;
  }
  return done * LEGS.length;
}
