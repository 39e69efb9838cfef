import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { requireCapability, type Viewer } from '../access/viewer.js';
import type { AlertService } from '../alerts/alert.service.js';
import { newFeaturesAlert, outageFoldKey, pinViolationAlerts, upstreamOutageAlert } from '../alerts/sources.js';
import type { Database } from '../db/database.js';
import type { DB } from '../db/tables.js';
import { NotFoundError } from '../errors.js';
import { recordWorkspaceEvent } from '../events/workspace-events.js';
import { VaultError } from '../identities/vault.js';
import type { Logger } from '../logger.js';
import { DiscoveryError, discoverServer, type DiscoveryErrorCode, type DiscoveryResult, type DiscoveryTarget } from './discovery.js';
import { diffFeatures, type DiscoveredFeature, type JsonObject } from './feature-hash.js';
import type { ListOptions, ServerService } from './server.service.js';
import type { ThreatService } from './threats/threat.service.js';
import type { DiscoveryRunRow, FeatureChange, ServerFeatureRow, ServerRow } from './server.table.js';
import { loadGrouped } from '../shared/grouped.js';

/**
 * Why a discovery run failed: the transport-level codes of {@link DiscoveryErrorCode}, plus
 * - `NOT_REACHABLE`: the control plane has no way to reach the server (a workstation server
 *   until the tunnel lands);
 * - `SECRET_UNAVAILABLE`: a sealed header or env value cannot be opened (its vault key is
 *   not in `GATEHOUSE_ENCRYPTION_KEY`);
 * - `INTERNAL`: anything else; the message is generic and the cause is logged.
 */
export type DiscoveryRunErrorCode = DiscoveryErrorCode | 'NOT_REACHABLE' | 'SECRET_UNAVAILABLE' | 'INTERNAL';

export interface DiscoveryServiceOptions {
  /** Deadline of one discovery in milliseconds. Default 15000. */
  readonly timeoutMs?: number;
  /** Where unexpected discovery failures (code `INTERNAL`) are logged with their cause. */
  readonly logger?: Logger;
  /** Raises new-feature, pin-violation and outage alerts when set. */
  readonly alerts?: AlertService;
  /** Screens discovered features for tool poisoning and shadowing when set. */
  readonly threats?: ThreatService;
}

/** A server the scheduler may discover: enabled, in an enabled workspace, reachable from here. */
export interface DiscoverableServer {
  readonly workspaceId: string;
  readonly serverId: string;
}

/** The actor recorded on events of discoveries nobody asked for. */
export const DISCOVERY_ACTOR = 'system';

const MAX_ERROR_MESSAGE = 2000;
/** Rows per upsert statement; keeps bind parameters far below Postgres's 65535. */
const UPSERT_CHUNK = 500;

class DiscoveryFailure extends Error {
  constructor(
    readonly code: DiscoveryRunErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs feature discovery for stored servers and records each run: the features it found
 * (with their hashes), what was added, changed and removed since the previous run, and the
 * workspace events the snapshot publisher and rug-pull alerts react to. A failed discovery
 * is a recorded run with an error code, never an exception.
 */
export class DiscoveryService {
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly alerts: AlertService | undefined;
  private readonly threats: ThreatService | undefined;

  constructor(
    private readonly database: Database,
    private readonly servers: ServerService,
    options: DiscoveryServiceOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.logger = options.logger;
    this.alerts = options.alerts;
    this.threats = options.threats;
  }

  /** Discovers one server of the viewer's workspace now. Needs `servers.manage`. */
  async discover(viewer: Viewer, serverId: string): Promise<DiscoveryRunRow> {
    requireCapability(viewer, 'servers.manage');
    const server = await this.servers.get(viewer, serverId);
    return this.run(server, viewer.actor);
  }

  /**
   * Discovers a server on behalf of the system (the scheduler). Resolves to `null` when the
   * server no longer exists; otherwise to the recorded run, successful or failed.
   */
  async discoverAsSystem(target: DiscoverableServer): Promise<DiscoveryRunRow | null> {
    const server = await this.database.db
      .selectFrom('servers')
      .selectAll()
      .where('workspace_id', '=', target.workspaceId)
      .where('id', '=', target.serverId)
      .executeTakeFirst();
    if (!server) return null;
    try {
      return await this.run(server, DISCOVERY_ACTOR);
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  /**
   * Servers the scheduler should discover: enabled, in enabled workspaces, not workstation
   * servers (unreachable until the tunnel lands), and not discovered since `dueBefore`.
   */
  async dueServers(dueBefore: Date): Promise<DiscoverableServer[]> {
    const rows = await this.database.db
      .selectFrom('servers as s')
      .innerJoin('workspaces as w', 'w.id', 's.workspace_id')
      .select(['s.workspace_id', 's.id'])
      .where('s.disabled', '=', false)
      .where('w.disabled', '=', false)
      .where('s.kind', '!=', 'workstation')
      .where((eb) => eb.or([eb('s.last_discovery_at', 'is', null), eb('s.last_discovery_at', '<', dueBefore)]))
      .orderBy(sql`s.last_discovery_at NULLS FIRST`)
      .orderBy('s.id')
      .execute();
    return rows.map((r) => ({ workspaceId: r.workspace_id, serverId: r.id }));
  }

  /** Stored features of each server, ordered by kind then name, in one statement. */
  async featuresByServerIds(workspaceId: string, serverIds: readonly string[]): Promise<Map<string, ServerFeatureRow[]>> {
    return loadGrouped(
      serverIds,
      (ids) => this.database.db.selectFrom('server_features').selectAll().where('workspace_id', '=', workspaceId).where('server_id', 'in', ids).orderBy('kind').orderBy('name').execute(),
      (row) => row.server_id,
    );
  }

  /** Discovery runs of one server, newest first. */
  listRuns(viewer: Viewer, serverId: string, { limit, offset }: ListOptions): Promise<DiscoveryRunRow[]> {
    requireCapability(viewer, 'servers.view');
    return this.database.db
      .selectFrom('discovery_runs')
      .selectAll()
      .where('workspace_id', '=', viewer.workspaceId)
      .where('server_id', '=', serverId)
      .orderBy('started_at', 'desc')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  // Internals ----------------------------------------------------------------------------

  private async run(server: ServerRow, actor: string): Promise<DiscoveryRunRow> {
    const startedAt = new Date();
    let result: DiscoveryResult | undefined;
    let failure: DiscoveryFailure | undefined;
    let secrets: string[] = [];
    try {
      const { target, secretValues } = this.targetOf(server);
      secrets = secretValues;
      result = await discoverServer(target, { timeoutMs: this.timeoutMs });
    } catch (error) {
      failure = toFailure(error);
      if (failure.code === 'INTERNAL') this.logger?.error({ err: error, serverId: server.id }, 'discovery failed unexpectedly');
    }
    const finishedAt = new Date();
    if (result) return this.recordSuccess(server, actor, result, startedAt, finishedAt);
    const message = redact(failure!.message, secrets).slice(0, MAX_ERROR_MESSAGE);
    return this.recordFailure(server, actor, failure!.code, message, startedAt, finishedAt);
  }

  /**
   * Where discovery reaches a server. A managed HTTP server is discovered at its URL and is
   * assumed to be running already: Gatehouse does not launch managed HTTP servers for
   * discovery (the data plane that runs them does).
   */
  private targetOf(server: ServerRow): { target: DiscoveryTarget; secretValues: string[] } {
    if (server.kind === 'workstation') {
      throw new DiscoveryFailure(
        'NOT_REACHABLE',
        `server ${server.name} runs on a workstation, which is not reachable until the tunnel lands; it cannot be discovered yet`,
      );
    }
    let opened: { headers: Record<string, string>; env: Record<string, string> };
    try {
      opened = this.servers.openSecrets(server);
    } catch (error) {
      if (error instanceof VaultError) {
        throw new DiscoveryFailure('SECRET_UNAVAILABLE', `a secret of server ${server.name} cannot be opened: ${error.message}`);
      }
      throw error;
    }
    const secretValues = [...Object.values(opened.headers), ...Object.values(opened.env)];
    if (server.transport === 'stdio') {
      return {
        target: {
          kind: 'stdio',
          command: server.command ?? '',
          args: server.args,
          env: { ...server.env, ...opened.env },
          ...(server.cwd === null ? {} : { cwd: server.cwd }),
        },
        secretValues,
      };
    }
    const kind = server.transport === 'sse' ? 'sse' : 'streamable-http';
    return { target: { kind, url: server.url ?? '', headers: opened.headers }, secretValues };
  }

  private recordSuccess(
    server: ServerRow,
    actor: string,
    result: DiscoveryResult,
    startedAt: Date,
    finishedAt: Date,
  ): Promise<DiscoveryRunRow> {
    return this.locked(server, async (trx) => {
      const stored = await trx
        .selectFrom('server_features')
        .selectAll()
        .where('workspace_id', '=', server.workspace_id)
        .where('server_id', '=', server.id)
        .execute();
      const previous: DiscoveredFeature[] = stored.map((row) => ({
        kind: row.kind,
        name: row.name,
        definition: row.definition as JsonObject,
        hash: row.hash,
      }));
      const diff = diffFeatures(previous, result.features);
      const added: FeatureChange[] = diff.added.map((f) => ({ kind: f.kind, name: f.name, newHash: f.hash }));
      const changed: FeatureChange[] = diff.changed.map(({ previous: p, current: c }) => ({
        kind: c.kind,
        name: c.name,
        oldHash: p.hash,
        newHash: c.hash,
      }));
      const removed: FeatureChange[] = diff.removed.map((f) => ({ kind: f.kind, name: f.name, oldHash: f.hash }));

      if (diff.removed.length > 0) {
        await trx
          .deleteFrom('server_features')
          .where('workspace_id', '=', server.workspace_id)
          .where('server_id', '=', server.id)
          .where((eb) => eb.or(diff.removed.map((f) => eb.and([eb('kind', '=', f.kind), eb('name', '=', f.name)]))))
          .execute();
      }
      // Unchanged features are rewritten too: fields outside the hash (annotations, _meta)
      // may still have moved. `changed_at` moves only when the hash does.
      for (let i = 0; i < result.features.length; i += UPSERT_CHUNK) {
        await trx
          .insertInto('server_features')
          .values(
            result.features.slice(i, i + UPSERT_CHUNK).map((f) => ({
              workspace_id: server.workspace_id,
              server_id: server.id,
              kind: f.kind,
              name: f.name,
              title: f.title ?? null,
              description: f.description ?? null,
              definition: JSON.stringify(f.definition),
              hash: f.hash,
              first_seen_at: finishedAt,
              changed_at: finishedAt,
            })),
          )
          .onConflict((oc) =>
            oc.columns(['server_id', 'kind', 'name']).doUpdateSet((eb) => ({
              title: eb.ref('excluded.title'),
              description: eb.ref('excluded.description'),
              definition: eb.ref('excluded.definition'),
              hash: eb.ref('excluded.hash'),
              changed_at: sql<Date>`CASE WHEN server_features.hash = excluded.hash THEN server_features.changed_at ELSE excluded.changed_at END`,
            })),
          )
          .execute();
      }

      const run = await trx
        .insertInto('discovery_runs')
        .values({
          id: randomUUID(),
          workspace_id: server.workspace_id,
          server_id: server.id,
          started_at: startedAt,
          finished_at: finishedAt,
          status: 'ok',
          error_code: null,
          error_message: null,
          server_info: JSON.stringify({
            ...result.serverInfo,
            protocolVersion: result.protocolVersion,
            capabilities: result.capabilities,
            instructions: result.instructions,
          }),
          feature_count: result.features.length,
          added: JSON.stringify(added),
          changed: JSON.stringify(changed),
          removed: JSON.stringify(removed),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.markServer(trx, server, finishedAt, 'ok', null);

      const event = (type: string, details: Record<string, unknown>) =>
        recordWorkspaceEvent(trx, server.workspace_id, actor, { type, subjectType: 'Server', subjectId: server.id, details });
      await event('server.discovered', {
        runId: run.id,
        featureCount: result.features.length,
        added: added.length,
        changed: changed.length,
        removed: removed.length,
      });
      for (const change of changed) {
        await event('server.feature_changed', {
          runId: run.id,
          kind: change.kind,
          name: change.name,
          oldHash: change.oldHash,
          newHash: change.newHash,
        });
      }
      if (added.length > 0) await this.alerts?.raise(newFeaturesAlert(server, run.id, added, actor), trx);
      if (this.alerts) for (const alert of await pinViolationAlerts(trx, server, diff.changed, actor)) await this.alerts.raise(alert, trx);
      await this.alerts?.resolveByFoldKey(trx, server.workspace_id, 'UPSTREAM_OUTAGE', outageFoldKey(server.id), actor);
      await this.threats?.screenDiscovery(trx, server, actor, run.id, diff);
      return run;
    });
  }

  private recordFailure(
    server: ServerRow,
    actor: string,
    code: DiscoveryRunErrorCode,
    message: string,
    startedAt: Date,
    finishedAt: Date,
  ): Promise<DiscoveryRunRow> {
    return this.locked(server, async (trx) => {
      const run = await trx
        .insertInto('discovery_runs')
        .values({
          id: randomUUID(),
          workspace_id: server.workspace_id,
          server_id: server.id,
          started_at: startedAt,
          finished_at: finishedAt,
          status: 'failed',
          error_code: code,
          error_message: message,
          server_info: JSON.stringify(null),
          feature_count: 0,
          added: '[]',
          changed: '[]',
          removed: '[]',
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.markServer(trx, server, finishedAt, 'failed', `${code}: ${message}`);
      await recordWorkspaceEvent(trx, server.workspace_id, actor, {
        type: 'server.discovery_failed',
        subjectType: 'Server',
        subjectId: server.id,
        details: { runId: run.id, code, message },
      });
      // A workstation server is unreachable by design until its tunnel lands: not an outage.
      if (code !== 'NOT_REACHABLE') await this.alerts?.raise(upstreamOutageAlert(server, run.id, code, message, actor), trx);
      return run;
    });
  }

  /**
   * Runs `fn` in one transaction holding the server's row lock, so concurrent discoveries
   * of one server apply their diffs one after the other, each against the features the
   * previous one stored. Throws {@link NotFoundError} if the server was deleted meanwhile.
   */
  private locked<T>(server: ServerRow, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.database.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('servers')
        .select('id')
        .where('workspace_id', '=', server.workspace_id)
        .where('id', '=', server.id)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw new NotFoundError('Server', server.id);
      return fn(trx);
    });
  }

  private async markServer(trx: Kysely<DB>, server: ServerRow, at: Date, status: 'ok' | 'failed', error: string | null) {
    await trx
      .updateTable('servers')
      .set({ last_discovery_at: at, last_discovery_status: status, last_discovery_error: error })
      .where('workspace_id', '=', server.workspace_id)
      .where('id', '=', server.id)
      .execute();
  }
}

function toFailure(error: unknown): DiscoveryFailure {
  if (error instanceof DiscoveryFailure) return error;
  if (error instanceof DiscoveryError) return new DiscoveryFailure(error.code, error.message);
  return new DiscoveryFailure('INTERNAL', `discovery failed unexpectedly: ${error instanceof Error ? error.name : 'unknown error'}`);
}

/** Removes secret values a server may have echoed (to stderr, in an error body) from a message. */
function redact(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

