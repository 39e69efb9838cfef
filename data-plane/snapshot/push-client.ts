import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import {
  SnapshotRejectedError,
  SnapshotSecretError,
  deriveDeliveryKey,
  unwrapSnapshotKey,
  type EncryptedSecret,
} from '../../schema/snapshot/index.js';
import { silentLogger, type DataPlaneLogger } from '../logger.js';
import { acceptSnapshot, type CompiledSnapshot } from './compiled-snapshot.js';
import type { SnapshotLinkState, SnapshotSource } from './snapshot-source.js';

/** Options of {@link PushSnapshotSource}. */
export interface PushSnapshotSourceOptions {
  /**
   * The control plane: its base URL (`http://host:4000`) or its graphql-ws endpoint
   * (`ws://host:4000/graphql`). A function is called before every connection attempt, so
   * the control plane can be repointed (a new address after a restart).
   */
  readonly url: string | (() => string);
  /** The data-plane token, `gh_dp_…`, shown once by `registerDataPlane`. */
  readonly token: string;
  readonly logger?: DataPlaneLogger;
  /** Epoch milliseconds, for link state. Default `Date.now`. */
  readonly clock?: () => number;
  /** First reconnect delay. Default 250 ms; doubles per failed attempt. */
  readonly initialRetryDelayMs?: number;
  /** Longest reconnect delay. Default 30 s. */
  readonly maxRetryDelayMs?: number;
  /** Interval of graphql-ws pings; a missing pong drops the link. Default 15 s. */
  readonly keepAliveMs?: number;
  /** In [0, 1): the jitter source. Default `Math.random`. */
  readonly random?: () => number;
}

/** One message of `subscription snapshots` (see `schema/SNAPSHOT.md`). */
export interface SnapshotDelivery {
  readonly version: number;
  readonly contentHash: string;
  readonly body: unknown;
  readonly snapshotKeyId: string;
  readonly snapshotKey: EncryptedSecret;
}

/** What became of one delivery. `reason` starts with the stable code, as the control plane expects. */
export type DeliveryOutcome =
  | { readonly accepted: true; readonly version: number }
  | { readonly accepted: false; readonly version: number | null; readonly reason: string };

const SUBSCRIPTION = `subscription Snapshots($sinceVersion: Int) {
  snapshots(sinceVersion: $sinceVersion) {
    version contentHash body snapshotKeyId
    snapshotKey { keyId alg aad iv ciphertext tag }
  }
}`;
const ACKNOWLEDGE = `mutation AcknowledgeSnapshot($version: Int!) {
  acknowledgeSnapshot(version: $version) { __typename ... on Error { message } }
}`;
const REJECT = `mutation RejectSnapshot($version: Int!, $reason: String!) {
  rejectSnapshot(version: $version, reason: $reason) { __typename ... on Error { message } }
}`;

const DATA_PLANE_TOKEN = /^gh_dp_[A-Za-z0-9_-]{20,200}$/;
const DELIVERY_KEY_ID = /^delivery:(.+)$/;

/**
 * The data plane's snapshot supply: a graphql-ws client of the control plane's push
 * channel, authenticated with a data-plane token.
 *
 * Every delivery is unwrapped (the snapshot key, under the delivery key derived once
 * from the token), validated (`acceptSnapshot`: shape, references, content hash,
 * strictly newer), compiled and swapped in atomically, then acknowledged; a bad one is
 * rejected with its reason and the held snapshot stays in service. When the link drops
 * it reconnects with exponential backoff and jitter and resumes from the version held,
 * enforcing the last good snapshot meanwhile; `link()` tells `/readyz` how it stands.
 */
export class PushSnapshotSource implements SnapshotSource {
  readonly #url: () => string;
  readonly #token: string;
  readonly #logger: DataPlaneLogger;
  readonly #clock: () => number;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #keepAliveMs: number;
  readonly #random: () => number;
  readonly #listeners = new Set<(next: CompiledSnapshot, previous: CompiledSnapshot | undefined) => void>();
  /** Delivery keys by data-plane id: derived from the token once (there is one id per token). */
  readonly #deliveryKeys = new Map<string, Buffer>();
  #held: CompiledSnapshot | undefined;
  #link: SnapshotLinkState;
  #lastContactAt: number | undefined;
  #lastError: string | undefined;
  #client: Client | undefined;
  #unsubscribe: (() => void) | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #started = false;
  #closed = false;
  #firstSnapshot: { promise: Promise<CompiledSnapshot>; resolve: (s: CompiledSnapshot) => void };

  constructor(options: PushSnapshotSourceOptions) {
    if (typeof options.url !== 'function' && !URL.canParse(options.url)) {
      throw new TypeError(`push client option "url" must be an http(s) or ws(s) URL, got ${JSON.stringify(options.url)}`);
    }
    if (typeof options.token !== 'string' || !DATA_PLANE_TOKEN.test(options.token)) {
      throw new TypeError('push client option "token" must be a data-plane token (gh_dp_…), as shown once by registerDataPlane');
    }
    for (const name of ['initialRetryDelayMs', 'maxRetryDelayMs', 'keepAliveMs'] as const) {
      const value = options[name];
      if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
        throw new TypeError(`push client option "${name}" must be a positive integer, got ${value}`);
      }
    }
    const url = options.url;
    this.#url = () => graphqlWsUrl(typeof url === 'function' ? url() : url);
    this.#token = options.token;
    this.#logger = options.logger ?? silentLogger();
    this.#clock = options.clock ?? Date.now;
    this.#initialDelayMs = options.initialRetryDelayMs ?? 250;
    this.#maxDelayMs = Math.max(options.maxRetryDelayMs ?? 30_000, this.#initialDelayMs);
    this.#keepAliveMs = options.keepAliveMs ?? 15_000;
    this.#random = options.random ?? Math.random;
    this.#link = { state: 'disconnected', since: this.#clock(), reason: 'not connected yet' };
    let resolve!: (s: CompiledSnapshot) => void;
    this.#firstSnapshot = { promise: new Promise((r) => (resolve = r)), resolve };
  }

  current(): CompiledSnapshot | undefined {
    return this.#held;
  }

  onChange(listener: (next: CompiledSnapshot, previous: CompiledSnapshot | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  link(): SnapshotLinkState {
    return this.#link;
  }

  /** Connects and subscribes from the version held. Idempotent. */
  start(): this {
    if (this.#started || this.#closed) return this;
    this.#started = true;
    this.#connect();
    return this;
  }

  /** Resolves with the first snapshot accepted (at once if one is held), or rejects after `timeoutMs`. */
  ready(timeoutMs = 30_000): Promise<CompiledSnapshot> {
    if (this.#held) return Promise.resolve(this.#held);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no snapshot from the control plane within ${timeoutMs} ms (${this.#lastError ?? 'no error reported'})`)),
        timeoutMs,
      );
      void this.#firstSnapshot.promise.then((snapshot) => {
        clearTimeout(timer);
        resolve(snapshot);
      });
    });
  }

  /** Stops reconnecting and closes the socket. The held snapshot stays readable. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    await this.#dropClient();
    this.#link = { state: 'disconnected', since: this.#clock(), reason: 'closed', ...this.#contact() };
  }

  /**
   * Runs the acceptance path on one delivery and reports the outcome to the control plane
   * (when connected). What the subscription calls per message; tests feed it directly.
   */
  async handleDelivery(message: unknown): Promise<DeliveryOutcome> {
    const outcome = this.accept(message);
    if (outcome.accepted) {
      this.#logger.info({ version: outcome.version }, 'snapshot accepted');
      await this.#report(ACKNOWLEDGE, { version: outcome.version });
    } else {
      this.#logger.warn({ version: outcome.version, reason: outcome.reason, held: this.#held?.version }, 'snapshot rejected; keeping the held one');
      if (outcome.version !== null) await this.#report(REJECT, { version: outcome.version, reason: outcome.reason });
    }
    return outcome;
  }

  /**
   * Validates one delivery and swaps it in, or leaves the held snapshot in place and says
   * why. Never throws: whatever the control plane sends, the data plane keeps serving.
   */
  accept(message: unknown): DeliveryOutcome {
    // Known before the shape is checked, so even a malformed delivery can be rejected by version.
    const claimed = (message as { version?: unknown } | null)?.version;
    const version = Number.isSafeInteger(claimed) && (claimed as number) >= 1 ? (claimed as number) : null;
    try {
      const delivery = parseDelivery(message);
      const dataPlaneId = DELIVERY_KEY_ID.exec(delivery.snapshotKey.keyId)?.[1];
      if (!dataPlaneId) throw new SnapshotSecretError('WRONG_KEY', `the snapshot key is wrapped under "${delivery.snapshotKey.keyId}", not a delivery key`);
      const workspaceId = (delivery.body as { workspaceId?: unknown }).workspaceId;
      const key = unwrapSnapshotKey(this.#deliveryKey(dataPlaneId), typeof workspaceId === 'string' ? workspaceId : '', delivery.snapshotKeyId, delivery.snapshotKey);
      const keys = new Map(this.#held?.secretKeys ?? []);
      keys.set(delivery.snapshotKeyId, key);
      const next = acceptSnapshot(this.#held, delivery.body, keys);
      if (next.version !== delivery.version || next.snapshot.contentHash !== delivery.contentHash) {
        throw new SnapshotRejectedError(
          'INVALID',
          `the delivery says version ${delivery.version} hash ${delivery.contentHash}, the snapshot it carries is version ${next.version} hash ${next.snapshot.contentHash}`,
        );
      }
      this.#swap(next);
      return { accepted: true, version: next.version };
    } catch (error) {
      if (error instanceof SnapshotRejectedError || error instanceof SnapshotSecretError) {
        return { accepted: false, version, reason: `${error.code}: ${error.message}` };
      }
      this.#logger.error({ err: error, version }, 'unexpected failure accepting a snapshot');
      return { accepted: false, version, reason: `INTERNAL: the data plane failed to accept the snapshot (${error instanceof Error ? error.message : String(error)})` };
    }
  }

  #deliveryKey(dataPlaneId: string): Buffer {
    let key = this.#deliveryKeys.get(dataPlaneId);
    if (!key) {
      key = deriveDeliveryKey(this.#token, dataPlaneId);
      this.#deliveryKeys.set(dataPlaneId, key);
    }
    return key;
  }

  #swap(next: CompiledSnapshot): void {
    const previous = this.#held;
    this.#held = next;
    if (!previous) this.#firstSnapshot.resolve(next);
    for (const listener of this.#listeners) {
      try {
        listener(next, previous);
      } catch (error) {
        this.#logger.error({ err: error }, 'a snapshot listener failed');
      }
    }
  }

  /**
   * One connection attempt: a fresh graphql-ws client (so every attempt reads the URL
   * anew and starts from clean state) and one subscription from the version held. Its end,
   * whatever the cause, schedules the next attempt.
   */
  #connect(): void {
    if (this.#closed) return;
    const client = createClient({
      url: () => this.#url(),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${this.#token}` },
      lazy: true,
      retryAttempts: 0,
      keepAlive: this.#keepAliveMs,
      connectionAckWaitTimeout: 10_000,
      on: {
        connected: () => {
          if (this.#client !== client) return;
          this.#failures = 0;
          this.#lastError = undefined;
          this.#touch();
          this.#link = { state: 'connected', since: this.#clock(), ...this.#contact() };
          this.#logger.info({ held: this.#held?.version ?? null }, 'connected to the control plane');
          // The control plane may have lost an acknowledgement (or restarted): say what is served.
          if (this.#held) void this.#report(ACKNOWLEDGE, { version: this.#held.version });
        },
        message: () => {
          if (this.#client === client) this.#touch();
        },
      },
    });
    this.#client = client;
    let socketError: string | undefined;
    client.on('error', (error) => (socketError = describeFailure(error)));
    let ended = false;
    const end = (failure: unknown) => {
      if (ended) return;
      ended = true;
      if (this.#client !== client || this.#closed) return;
      // An abnormal close (1006) says nothing; the socket error before it does.
      const reason = socketError && isAbnormalClose(failure) ? socketError : describeFailure(failure);
      this.#lastError = reason;
      this.#client = undefined;
      this.#unsubscribe = undefined;
      void disposeQuietly(client);
      this.#disconnected(reason);
    };
    this.#unsubscribe = client.subscribe<{ snapshots: unknown }>(
      { query: SUBSCRIPTION, variables: { sinceVersion: this.#held?.version ?? null } },
      {
        next: (result) => {
          if (result.errors?.length) {
            this.#lastError = result.errors.map((e) => e.message).join('; ');
            this.#logger.warn({ errors: result.errors }, 'the snapshot stream reported errors');
            return;
          }
          if (result.data) void this.handleDelivery(result.data.snapshots);
        },
        error: (error) => end(error),
        complete: () => end('the control plane ended the snapshot stream'),
      },
    );
  }

  #disconnected(reason: string): void {
    // `since` is when the link went down; failed reconnects do not move it.
    const since = this.#link.state === 'disconnected' ? this.#link.since : this.#clock();
    this.#link = { state: 'disconnected', since, reason, ...this.#contact() };
    const delay = this.#nextDelay();
    this.#logger.warn({ reason, retryInMs: delay, held: this.#held?.version ?? null }, 'control plane unreachable; serving the last good snapshot');
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#retryTimer.unref();
  }

  /** Exponential backoff with equal jitter: half the step fixed, half random. */
  #nextDelay(): number {
    const step = Math.min(this.#maxDelayMs, this.#initialDelayMs * 2 ** Math.min(this.#failures, 30));
    this.#failures += 1;
    return Math.round(step / 2 + this.#random() * (step / 2));
  }

  #touch(): void {
    this.#lastContactAt = this.#clock();
    if (this.#link.state === 'connected') this.#link = { ...this.#link, lastContactAt: this.#lastContactAt };
  }

  #contact(): { lastContactAt?: number; lastError?: string } {
    return {
      ...(this.#lastContactAt !== undefined ? { lastContactAt: this.#lastContactAt } : {}),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  /** Sends an acknowledgement or rejection on the current socket; a lost one is logged, not retried. */
  #report(query: string, variables: Record<string, unknown>): Promise<void> {
    const client = this.#client;
    if (!client) return Promise.resolve();
    return new Promise((resolve) => {
      client.subscribe<Record<string, { __typename: string; message?: string }>>(
        { query, variables },
        {
          next: (result) => {
            const payload = result.data && Object.values(result.data)[0];
            const problem = result.errors?.map((e) => e.message).join('; ') ?? (payload?.message ? `${payload.__typename}: ${payload.message}` : undefined);
            if (problem) this.#logger.warn({ variables, problem }, 'the control plane refused a snapshot report');
          },
          error: (error) => {
            this.#logger.debug({ err: describeFailure(error) }, 'a snapshot report was lost');
            resolve();
          },
          complete: () => resolve(),
        },
      );
    });
  }

  async #dropClient(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (client) await disposeQuietly(client);
  }
}

/** graphql-ws `dispose()` rejects when the socket it waits for failed to open; that is no news here. */
async function disposeQuietly(client: Client): Promise<void> {
  try {
    await client.dispose();
  } catch {
    // nothing to close
  }
}

/** `http://h:p[/base]` → `ws://h:p[/base]/graphql`; a ws(s) URL is used as given. */
export function graphqlWsUrl(url: string): string {
  if (/^wss?:\/\//.test(url)) return url;
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`the control-plane URL must be http(s) or ws(s), got ${url}`);
  const base = parsed.pathname.replace(/\/+$/, '');
  return `${parsed.protocol === 'https:' ? 'wss' : 'ws'}://${parsed.host}${base.endsWith('/graphql') ? base : `${base}/graphql`}`;
}

function parseDelivery(message: unknown): SnapshotDelivery {
  const m = message as Partial<Record<keyof SnapshotDelivery, unknown>> | null;
  const problems: string[] = [];
  if (typeof m !== 'object' || m === null) throw new SnapshotRejectedError('INVALID', 'the delivery is not an object');
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) problems.push('version: expected a positive integer');
  if (typeof m.contentHash !== 'string') problems.push('contentHash: expected a string');
  if (typeof m.body !== 'object' || m.body === null) problems.push('body: expected an object');
  if (typeof m.snapshotKeyId !== 'string') problems.push('snapshotKeyId: expected a string');
  const key = m.snapshotKey as Partial<Record<keyof EncryptedSecret, unknown>> | null | undefined;
  if (typeof key !== 'object' || key === null || !(['keyId', 'alg', 'aad', 'iv', 'ciphertext', 'tag'] as const).every((f) => typeof key[f] === 'string')) {
    problems.push('snapshotKey: expected an encrypted secret');
  }
  if (problems.length > 0) throw new SnapshotRejectedError('INVALID', `malformed delivery: ${problems.join('; ')}`, problems);
  return m as SnapshotDelivery;
}

function isAbnormalClose(failure: unknown): boolean {
  return typeof failure === 'object' && failure !== null && (failure as { code?: unknown }).code === 1006;
}

function describeFailure(error: unknown): string {
  if (Array.isArray(error)) return error.map((e: { message?: unknown }) => String(e?.message ?? e)).join('; ');
  if (typeof error === 'object' && error !== null && 'code' in error && typeof (error as { code: unknown }).code === 'number') {
    const { code, reason } = error as { code: number; reason?: string };
    if (code === 4403) return 'the control plane refused the data-plane token (4403: unknown or revoked)';
    return `connection closed (${code}${reason ? `: ${reason}` : ''})`;
  }
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'object' && error !== null && 'message' in error) return String((error as { message: unknown }).message);
  return String(error);
}
