import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import {
  SnapshotRejectedError,
  SnapshotSecretError,
  acceptGatewaySnapshot,
  deriveDeliveryKey,
  openSnapshotSecret,
  unwrapSnapshotKey,
  type EncryptedSecret,
  type GatewaySnapshot,
} from '../../schema/snapshot/index.js';

/**
 * A reference consumer of the snapshot push channel: what a data plane does with it,
 * minus serving MCP. Issue [proxy] builds the real data-plane client from this.
 *
 * 1. connect to `/graphql` over graphql-ws with `{ authorization: 'Bearer gh_dp_…' }`;
 * 2. `subscription snapshots(sinceVersion)`, with the version held (resume);
 * 3. per delivery: derive the delivery key from the token (HKDF, info = the data plane id
 *    named by `snapshotKey.keyId`), unwrap the snapshot key, validate the body
 *    (`acceptGatewaySnapshot`: shape, references, hash, strictly newer), swap it in, ack;
 *    on any failure, reject with `<CODE>: <message>` and keep the snapshot held.
 */

export interface SnapshotDeliveryMessage {
  readonly version: number;
  readonly contentHash: string;
  readonly body: unknown;
  readonly snapshotKeyId: string;
  readonly snapshotKey: EncryptedSecret;
}

export interface SnapshotConsumerOptions {
  /** `ws://host:port/graphql`. */
  readonly url: string;
  /** The data-plane token. */
  readonly token: string;
  /** Version held already (resume); default none. */
  readonly sinceVersion?: number;
  /** Workspace of the snapshot held, when resuming (for `assertNewer`). */
  readonly held?: GatewaySnapshot | null;
  /** Acknowledge and reject through the control plane. Default true. */
  readonly report?: boolean;
}

export interface ConsumerOutcome {
  readonly version: number;
  readonly accepted: boolean;
  /** `performance.now()` when the message arrived. */
  readonly receivedAt: number;
  readonly reason?: string;
}

const SUBSCRIPTION = `subscription Snapshots($sinceVersion: Int) {
  snapshots(sinceVersion: $sinceVersion) {
    version contentHash body snapshotKeyId
    snapshotKey { keyId alg aad iv ciphertext tag }
  }
}`;
const ACK = `mutation($version: Int!) { acknowledgeSnapshot(version: $version) { __typename ... on Error { message } } }`;
const REJECT = `mutation($version: Int!, $reason: String!) { rejectSnapshot(version: $version, reason: $reason) { __typename ... on Error { message } } }`;

export class SnapshotConsumer {
  /** The snapshot being served, or null (fail closed). */
  current: GatewaySnapshot | null;
  readonly outcomes: ConsumerOutcome[] = [];
  /** Resolves with the close code once the socket closes for good. */
  readonly closed: Promise<number>;
  private readonly client: Client;
  private readonly snapshotKeys = new Map<string, Buffer>();
  private readonly waiters: { test: (o: ConsumerOutcome) => boolean; resolve: (o: ConsumerOutcome) => void }[] = [];
  private streamError: unknown;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: SnapshotConsumerOptions) {
    this.current = options.held ?? null;
    let resolveClosed!: (code: number) => void;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    this.client = createClient({
      url: options.url,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${options.token}` },
      retryAttempts: 0,
      lazy: true,
    });
    this.client.on('closed', (event) => resolveClosed((event as { code: number }).code));
  }

  /** Subscribes from the version held. */
  start(): this {
    this.unsubscribe = this.client.subscribe<{ snapshots: SnapshotDeliveryMessage }>(
      { query: SUBSCRIPTION, variables: { sinceVersion: this.options.sinceVersion ?? this.current?.version ?? null } },
      {
        next: (message) => {
          if (message.errors) {
            this.streamError = message.errors;
            return;
          }
          if (message.data) void this.offer(message.data.snapshots);
        },
        error: (err) => (this.streamError = err),
        complete: () => undefined,
      },
    );
    return this;
  }

  /** What a data plane runs on every delivery; public so tests can offer bad ones. */
  async offer(delivery: SnapshotDeliveryMessage): Promise<ConsumerOutcome> {
    const receivedAt = performance.now();
    let outcome: ConsumerOutcome;
    try {
      const dataPlaneId = delivery.snapshotKey.keyId.replace(/^delivery:/, '');
      const body = delivery.body as { workspaceId?: unknown };
      const workspaceId = typeof body?.workspaceId === 'string' ? body.workspaceId : '';
      const key = unwrapSnapshotKey(deriveDeliveryKey(this.options.token, dataPlaneId), workspaceId, delivery.snapshotKeyId, delivery.snapshotKey);
      const snapshot = acceptGatewaySnapshot(this.current, delivery.body);
      if (snapshot.version !== delivery.version || snapshot.contentHash !== delivery.contentHash) {
        throw new SnapshotRejectedError('INVALID', 'the delivery envelope disagrees with the snapshot it carries');
      }
      this.snapshotKeys.set(delivery.snapshotKeyId, key);
      this.current = snapshot;
      outcome = { version: delivery.version, accepted: true, receivedAt };
      if (this.options.report !== false) await this.report(ACK, { version: delivery.version });
    } catch (err) {
      if (!(err instanceof SnapshotRejectedError || err instanceof SnapshotSecretError)) throw err;
      const reason = `${err.code}: ${err.message}`;
      outcome = { version: delivery.version, accepted: false, receivedAt, reason };
      if (this.options.report !== false) await this.report(REJECT, { version: delivery.version, reason });
    }
    this.outcomes.push(outcome);
    for (const waiter of [...this.waiters]) {
      if (waiter.test(outcome)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(outcome);
      }
    }
    return outcome;
  }

  /** Resolves with the first outcome (past or future) that passes `test`. */
  waitFor(test: (o: ConsumerOutcome) => boolean, timeoutMs = 10_000): Promise<ConsumerOutcome> {
    const seen = this.outcomes.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { test, resolve: (o: ConsumerOutcome) => (clearTimeout(timer), resolve(o)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no matching snapshot within ${timeoutMs} ms (held ${this.current?.version ?? 'none'}; stream error ${JSON.stringify(this.streamError) ?? 'none'})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The first accepted snapshot of at least `version`. */
  async waitForVersion(version: number, timeoutMs?: number): Promise<GatewaySnapshot> {
    await this.waitFor((o) => o.accepted && o.version >= version, timeoutMs);
    return this.current!;
  }

  /** Decrypts a secret of the current snapshot, as a data plane does when it attaches it upstream. */
  openSecret(secret: EncryptedSecret): string {
    const key = this.snapshotKeys.get(secret.keyId);
    if (!key) throw new SnapshotSecretError('WRONG_KEY', `no snapshot key ${secret.keyId}`);
    return openSnapshotSecret(key, secret);
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.client.dispose();
  }

  private report(query: string, variables: Record<string, unknown>): Promise<void> {
    return new Promise((resolve) => {
      this.client.subscribe(
        { query, variables },
        { next: () => undefined, error: () => resolve(), complete: () => resolve() },
      );
    });
  }
}
