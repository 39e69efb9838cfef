import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { WORKSPACE_EVENTS_CHANNEL, recordWorkspaceEvent } from '../events/workspace-events.js';
import type { Vault } from '../identities/vault.js';
import type { Logger } from '../logger.js';
import { SnapshotCompileError, compileGatewaySnapshotWithDiagnostics, type SnapshotCompileDiagnostic } from './compile.js';
import { loadSnapshotSource } from './repository.js';
import { SnapshotSecretSealer, loadOrCreateSnapshotKey, type SnapshotKey } from './snapshot-key.js';

/** NOTIFY channel announcing a newly published snapshot: `{ workspaceId, version }`. */
export const SNAPSHOTS_CHANNEL = 'gatehouse_snapshots';

/** The actor the publisher records its own workspace events as. */
export const PUBLISHER_ACTOR = 'system:snapshot-publisher';

/**
 * Workspace events that cannot change a snapshot. The publisher's own events are among
 * them, so recording one never triggers another compile.
 */
const IGNORED_EVENT_PREFIXES = ['snapshot.', 'data_plane.', 'api_key.', 'alert.', 'gateway_access_request.'];

/** A published snapshot as stored. */
export interface StoredSnapshot {
  readonly workspaceId: string;
  readonly version: number;
  readonly contentHash: string;
  /** The whole `GatewaySnapshot`, as JSON. */
  readonly body: Record<string, unknown>;
  readonly createdAt: Date;
}

/** What one publish attempt did. */
export type PublishResult =
  | { readonly outcome: 'published'; readonly version: number; readonly contentHash: string; readonly diagnostics: readonly SnapshotCompileDiagnostic[] }
  /** The compile equals the latest version (another process may have just published it). */
  | { readonly outcome: 'unchanged'; readonly version: number; readonly contentHash: string; readonly diagnostics: readonly SnapshotCompileDiagnostic[] }
  /** The rows do not compile; the last version stays current and a `snapshot.compile_failed` event says why. */
  | { readonly outcome: 'failed'; readonly error: SnapshotCompileError };

export interface SnapshotPublisherOptions {
  readonly logger?: Logger;
  /** Quiet period after a workspace event before compiling, in ms. Default 25. */
  readonly debounceMs?: number;
  /** Longest a burst of events may postpone a compile, in ms. Default 250. */
  readonly maxDelayMs?: number;
  /** Versions kept per workspace; older ones are pruned on publish. Default 20. */
  readonly keepVersions?: number;
}

interface WorkspaceState {
  timer: NodeJS.Timeout | undefined;
  /** When the first event of the pending burst arrived. */
  firstEventAt: number | undefined;
  running: Promise<void> | undefined;
  /** An event arrived while a compile ran: compile again after it. */
  dirty: boolean;
  /** Message of the last recorded compile failure, so a failure is recorded once, not per event. */
  lastFailure: string | undefined;
  /** When the last publish finished (epoch ms); a quiet workspace publishes without waiting. */
  lastRunEndedAt: number;
}

type Listener = (announcement: { version: number }) => void;

/**
 * Compiles and publishes workspace snapshots. Listens to every committed workspace event
 * (from any control-plane process), coalesces bursts per workspace, compiles, and stores
 * a new version only when the content hash changed. Versions are assigned under a
 * per-workspace advisory lock, so any number of processes may run it: the second one to
 * compile a change finds the hash already published and does nothing. Every process
 * learns of new versions through NOTIFY on {@link SNAPSHOTS_CHANNEL} and tells its
 * subscribers (the data planes connected to it).
 */
export class SnapshotPublisher {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly states = new Map<string, WorkspaceState>();
  private readonly latestCache = new Map<string, Promise<StoredSnapshot | null>>();
  private readonly keys = new Map<string, Promise<SnapshotKey>>();
  private readonly unlisten: (() => Promise<void>)[] = [];
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly keepVersions: number;
  private stopped = false;

  constructor(
    private readonly database: Database,
    private readonly vault: Vault,
    private readonly options: SnapshotPublisherOptions = {},
  ) {
    this.debounceMs = options.debounceMs ?? 25;
    this.maxDelayMs = options.maxDelayMs ?? 250;
    this.keepVersions = options.keepVersions ?? 20;
    if (this.keepVersions < 1) throw new RangeError('options.keepVersions must be at least 1');
  }

  /** Starts listening, then publishes every workspace whose rows differ from its latest version (version 1 for new ones). */
  async start(): Promise<void> {
    this.stopped = false;
    this.unlisten.push(await this.database.listen(SNAPSHOTS_CHANNEL, (payload) => this.onPublished(payload)));
    this.unlisten.push(await this.database.listen(WORKSPACE_EVENTS_CHANNEL, (payload) => this.onWorkspaceEvent(payload)));
    const workspaces = await this.database.db.selectFrom('workspaces').select('id').orderBy('created_at').execute();
    for (const { id } of workspaces) await this.publishNow(id).catch((err) => this.options.logger?.error({ err, workspaceId: id }, 'initial snapshot publish failed'));
  }

  /** Stops listening and waits for compiles under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const unlisten of this.unlisten.splice(0)) await unlisten().catch(() => undefined);
    const running: Promise<void>[] = [];
    for (const state of this.states.values()) {
      clearTimeout(state.timer);
      state.timer = undefined;
      if (state.running) running.push(state.running);
    }
    await Promise.all(running);
  }

  /** The latest published snapshot of a workspace, or null before the first. Cached until the next version; `fresh` reads it again. */
  latest(workspaceId: string, options: { fresh?: boolean } = {}): Promise<StoredSnapshot | null> {
    if (options.fresh) this.latestCache.delete(workspaceId);
    let cached = this.latestCache.get(workspaceId);
    if (!cached) {
      cached = this.loadLatest(workspaceId);
      this.latestCache.set(workspaceId, cached);
      cached.catch(() => this.latestCache.delete(workspaceId));
    }
    return cached;
  }

  /** The latest snapshot, publishing the first version now if there is none yet (a workspace created since start). */
  async latestOrPublish(workspaceId: string): Promise<StoredSnapshot | null> {
    const latest = await this.latest(workspaceId);
    if (latest) return latest;
    await this.publishNow(workspaceId);
    this.latestCache.delete(workspaceId);
    return this.latest(workspaceId);
  }

  /**
   * Announcements of new versions of a workspace, from any process, buffered from the
   * moment of this call (so nothing published between it and a read of `latest` is
   * missed) until `return()`, which also ends a pending `next()`.
   */
  subscribe(workspaceId: string): AsyncIterableIterator<{ version: number }> {
    const buffer: { version: number }[] = [];
    let waiting: ((result: IteratorResult<{ version: number }>) => void) | undefined;
    let done = false;
    const listener: Listener = (announcement) => {
      if (waiting) {
        const resolve = waiting;
        waiting = undefined;
        resolve({ value: announcement, done: false });
      } else {
        buffer.push(announcement);
      }
    };
    let set = this.listeners.get(workspaceId);
    if (!set) this.listeners.set(workspaceId, (set = new Set()));
    set.add(listener);
    const close = () => {
      done = true;
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(workspaceId) === set) this.listeners.delete(workspaceId);
      waiting?.({ value: undefined, done: true });
      waiting = undefined;
    };
    return {
      next: () => {
        const value = buffer.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => {
        close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** The workspace's snapshot key, created on first use. */
  snapshotKey(workspaceId: string): Promise<SnapshotKey> {
    let key = this.keys.get(workspaceId);
    if (!key) {
      key = loadOrCreateSnapshotKey(this.database.db, this.vault, workspaceId);
      this.keys.set(workspaceId, key);
      key.catch(() => this.keys.delete(workspaceId));
    }
    return key;
  }

  /**
   * Compiles the workspace now and publishes a new version if its content changed.
   * A compile error is retried once (the rows are read statement by statement and may have
   * caught a change half-way), then recorded as a `snapshot.compile_failed` event.
   */
  async publishNow(workspaceId: string): Promise<PublishResult> {
    let result = await this.publishOnce(workspaceId);
    if (result.outcome === 'failed') result = await this.publishOnce(workspaceId);
    const state = this.state(workspaceId);
    if (result.outcome === 'failed') {
      if (state.lastFailure !== result.error.message) {
        state.lastFailure = result.error.message;
        this.options.logger?.error({ workspaceId, problems: result.error.problems.slice(0, 20) }, 'snapshot compile failed; data planes keep the last version');
        await this.recordCompileFailure(workspaceId, result.error);
      }
      return result;
    }
    state.lastFailure = undefined;
    if (result.outcome === 'published') {
      this.options.logger?.info({ workspaceId, version: result.version }, 'published snapshot');
      for (const diagnostic of result.diagnostics) this.options.logger?.warn({ workspaceId, diagnostic }, diagnostic.message);
    }
    return result;
  }

  private async publishOnce(workspaceId: string): Promise<PublishResult> {
    const key = await this.snapshotKey(workspaceId);
    try {
      return await this.database.db.transaction().execute(async (trx) => {
        // One publisher per workspace at a time, across processes; released on commit.
        await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`gatehouse_snapshot:${workspaceId}`}, 0))`.execute(trx);
        const latest = await trx
          .selectFrom('snapshots')
          .select(['version', 'content_hash'])
          .where('workspace_id', '=', workspaceId)
          .orderBy('version', 'desc')
          .limit(1)
          .executeTakeFirst();
        const latestVersion = latest ? Number(latest.version) : 0;
        const source = await loadSnapshotSource(trx, workspaceId, new SnapshotSecretSealer(this.vault, key));
        const version = latestVersion + 1;
        const { snapshot, diagnostics } = compileGatewaySnapshotWithDiagnostics(source, { version, generatedAt: new Date() });
        if (latest && latest.content_hash === snapshot.contentHash) {
          return { outcome: 'unchanged', version: latestVersion, contentHash: snapshot.contentHash, diagnostics } as const;
        }
        await trx
          .insertInto('snapshots')
          .values({ workspace_id: workspaceId, version, content_hash: snapshot.contentHash, body: JSON.stringify(snapshot) })
          .execute();
        await trx.deleteFrom('snapshots').where('workspace_id', '=', workspaceId).where('version', '<=', String(version - this.keepVersions)).execute();
        await sql`SELECT pg_notify(${SNAPSHOTS_CHANNEL}, ${JSON.stringify({ workspaceId, version })})`.execute(trx);
        return { outcome: 'published', version, contentHash: snapshot.contentHash, diagnostics } as const;
      });
    } catch (err) {
      if (err instanceof SnapshotCompileError) return { outcome: 'failed', error: err };
      throw err;
    }
  }

  private async recordCompileFailure(workspaceId: string, error: SnapshotCompileError): Promise<void> {
    await this.database.db
      .transaction()
      .execute((trx) =>
        recordWorkspaceEvent(trx, workspaceId, PUBLISHER_ACTOR, {
          type: 'snapshot.compile_failed',
          subjectType: 'Workspace',
          subjectId: workspaceId,
          details: { message: error.message, problems: error.problems.slice(0, 20) },
        }),
      )
      .catch((err) => this.options.logger?.error({ err, workspaceId }, 'could not record a snapshot compile failure'));
  }

  private async loadLatest(workspaceId: string): Promise<StoredSnapshot | null> {
    const row = await this.database.db
      .selectFrom('snapshots')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!row) return null;
    return { workspaceId, version: Number(row.version), contentHash: row.content_hash, body: row.body, createdAt: new Date(row.created_at) };
  }

  private onPublished(payload: string): void {
    let announcement: { workspaceId?: unknown; version?: unknown };
    try {
      announcement = JSON.parse(payload) as typeof announcement;
    } catch {
      return;
    }
    const { workspaceId, version } = announcement;
    if (typeof workspaceId !== 'string' || typeof version !== 'number') return;
    this.latestCache.delete(workspaceId);
    for (const listener of [...(this.listeners.get(workspaceId) ?? [])]) listener({ version });
  }

  private onWorkspaceEvent(payload: string): void {
    let event: { workspaceId?: unknown; type?: unknown };
    try {
      event = JSON.parse(payload) as typeof event;
    } catch {
      return;
    }
    if (typeof event.workspaceId !== 'string') return;
    // Truncated notifications carry no type: compile to be safe.
    if (typeof event.type === 'string' && IGNORED_EVENT_PREFIXES.some((prefix) => (event.type as string).startsWith(prefix))) return;
    this.schedule(event.workspaceId);
  }

  /**
   * Publishes at once when the workspace has been quiet (a lone kill switch should not wait
   * out a debounce); otherwise a trailing debounce, bounded by `maxDelayMs` from the first
   * event of a burst. Events that arrive while a publish runs fold into one follow-up.
   */
  private schedule(workspaceId: string): void {
    if (this.stopped) return;
    const state = this.state(workspaceId);
    state.dirty = true;
    if (state.running) return;
    const now = Date.now();
    if (state.timer === undefined && now - state.lastRunEndedAt >= this.debounceMs) {
      state.timer = setTimeout(() => this.run(workspaceId), 0);
      return;
    }
    state.firstEventAt ??= now;
    clearTimeout(state.timer);
    const delay = Math.max(0, Math.min(this.debounceMs, state.firstEventAt + this.maxDelayMs - now));
    state.timer = setTimeout(() => this.run(workspaceId), delay);
  }

  private run(workspaceId: string): void {
    const state = this.state(workspaceId);
    state.timer = undefined;
    state.firstEventAt = undefined;
    state.dirty = false;
    state.running = this.publishNow(workspaceId)
      .then(() => undefined)
      .catch((err) => this.options.logger?.error({ err, workspaceId }, 'snapshot publish failed'))
      .finally(() => {
        state.running = undefined;
        state.lastRunEndedAt = Date.now();
        if (state.dirty) {
          state.dirty = false;
          this.schedule(workspaceId);
        }
      });
  }

  private state(workspaceId: string): WorkspaceState {
    let state = this.states.get(workspaceId);
    if (!state) {
      state = { timer: undefined, firstEventAt: undefined, running: undefined, dirty: false, lastFailure: undefined, lastRunEndedAt: 0 };
      this.states.set(workspaceId, state);
    }
    return state;
  }
}
