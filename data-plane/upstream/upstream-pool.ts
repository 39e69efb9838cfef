import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  McpError,
  ResultSchema,
  type ClientCapabilities,
  type JSONRPCNotification,
  type Progress,
  type Result,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import type { SnapshotAssignment } from '../../schema/snapshot/index.js';
import type { DataPlaneLogger } from '../logger.js';
import type { CompiledAssignment } from '../snapshot/compiled-snapshot.js';
import { managedSecretEnv, sharedUpstreamHeaders } from './credentials.js';
import { callContext, type CallRelay, type RelayedMessage } from './relay.js';
import { UpstreamError } from './upstream-error.js';

export interface UpstreamPoolOptions {
  /** How the gateway introduces itself to upstreams in `initialize`. */
  readonly clientInfo: { readonly name: string; readonly version: string };
  readonly logger: DataPlaneLogger;
}

export interface UpstreamRequestOptions {
  /** Milliseconds to wait for the connection (if new) and then for the answer, each. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Where the upstream's messages about this call go (progress, logging, server-to-client requests). */
  readonly relay?: CallRelay;
}

/**
 * A notification an upstream sent that is not about one call (`notifications/<type>/list_changed`,
 * `notifications/resources/updated`), with the key of the connection it came on.
 */
export type UpstreamNotificationListener = (upstreamKey: string, notification: RelayedMessage) => void;

/**
 * What the gateway declares to upstreams at initialize. One upstream session serves
 * every client session, so it declares what it can relay; a server-to-client request
 * meant for a client that did not declare the capability itself is answered with an
 * error naming that (see the endpoint's relay).
 */
export const UPSTREAM_CLIENT_CAPABILITIES: ClientCapabilities = { sampling: {}, elicitation: {}, roots: {} };

/** Server-to-client notifications that concern the session, not one call: broadcast to listeners. */
const SESSION_NOTIFICATIONS = new Set([
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
  'notifications/resources/updated',
]);

/**
 * One MCP client session to one upstream, shared by every client session and call that
 * routes to its assignment entry. It connects and initializes lazily, once: concurrent
 * first calls share one attempt, later calls reuse the session. A failed attempt is not
 * cached (the next call tries again), and when the upstream's connection closes (a
 * managed process exits, a remote drops the session) the next call reconnects.
 */
export class UpstreamConnection {
  /** How many times a session with the upstream was initialized; one while it stays up. */
  initializations = 0;
  /**
   * Pinned features the upstream last listed with a definition hash other than the
   * pinned one, as `<featureType>\0<upstreamName>`; calls to them are refused.
   */
  readonly livePinMismatches = new Set<string>();
  private ready: Promise<Client> | undefined;
  private client: Client | undefined;
  private closed = false;
  /** Calls in flight that relay upstream messages, for attributing context-less messages. */
  private readonly relays = new Set<CallRelay>();

  constructor(
    readonly key: string,
    private readonly assignment: SnapshotAssignment,
    private readonly secretKeys: ReadonlyMap<string, Uint8Array>,
    private readonly options: UpstreamPoolOptions,
    private readonly broadcast: UpstreamNotificationListener = () => undefined,
  ) {}

  get serverName(): string {
    return this.assignment.serverName;
  }

  /** The upstream's capabilities once initialized; undefined before. */
  capabilities(): ServerCapabilities | undefined {
    return this.client?.getServerCapabilities();
  }

  /** Connects (once) and returns the initialized client. Throws {@link UpstreamError}. */
  connect(timeoutMs: number): Promise<Client> {
    if (this.closed) {
      return Promise.reject(new UpstreamError('UPSTREAM_UNREACHABLE', this.serverName, `server "${this.serverName}" is no longer assigned`));
    }
    if (!this.ready) {
      const attempt = this.open(timeoutMs);
      this.ready = attempt;
      attempt.catch(() => {
        if (this.ready === attempt) this.ready = undefined;
      });
    }
    return this.ready;
  }

  /**
   * Sends one request and returns the upstream's result unchanged (unknown fields kept).
   * The upstream's own JSON-RPC errors are rethrown as `McpError` with its code;
   * everything else becomes an {@link UpstreamError}.
   */
  async request(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions): Promise<Result> {
    const client = await this.connect(options.timeoutMs);
    const relay = options.relay;
    const progress = relay?.progress;
    const send = () =>
      client.request({ method, params }, ResultSchema, {
        timeout: options.timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
        // The SDK puts its own progress token (the upstream request id) in `_meta` and
        // calls back with the upstream's progress: the client's token goes back on relay.
        ...(progress ? { onprogress: (value: Progress) => progress(value), resetTimeoutOnProgress: true } : {}),
      });
    if (relay) this.relays.add(relay);
    try {
      return await (relay ? callContext.run(relay, send) : send());
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('request cancelled');
      throw this.translate(error, method, options.timeoutMs);
    } finally {
      if (relay) this.relays.delete(relay);
    }
  }

  /** The call an upstream message belongs to: its async context, else the only call in flight. */
  private relayFor(): CallRelay | undefined {
    const current = callContext.getStore();
    if (current) return this.relays.has(current) ? current : undefined;
    if (this.relays.size === 1) return this.relays.values().next().value;
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    this.ready = undefined;
    await client?.close().catch(() => undefined);
  }

  private open(timeoutMs: number): Promise<Client> {
    // Outside any call's context: the session (and its GET stream) belongs to no call.
    return callContext.exit(() => this.openSession(timeoutMs));
  }

  private async openSession(timeoutMs: number): Promise<Client> {
    const transport = this.createTransport();
    const client = new Client(
      { name: this.options.clientInfo.name, version: this.options.clientInfo.version },
      { capabilities: UPSTREAM_CLIENT_CAPABILITIES },
    );
    // Server-to-client requests (sampling, elicitation, roots) go to the client of the call
    // they arrived with; there is nobody to ask for one that belongs to no call.
    client.fallbackRequestHandler = async (request, extra) => {
      const relay = this.relayFor();
      if (!relay) {
        throw new McpError(ErrorCode.InvalidRequest, `the gateway cannot relay ${request.method}: it is not part of a call in progress`);
      }
      return relay.request({ method: request.method, params: request.params }, extra.signal);
    };
    client.fallbackNotificationHandler = async (notification) => {
      const message = notification as JSONRPCNotification;
      if (SESSION_NOTIFICATIONS.has(message.method)) {
        this.broadcast(this.key, { method: message.method, params: message.params });
        return;
      }
      if (message.method === 'notifications/message') this.relayFor()?.notify({ method: message.method, params: message.params });
    };
    client.onclose = () => {
      // A closed session is never reused: the next call initializes a new one.
      if (this.client !== client) return;
      this.client = undefined;
      this.ready = undefined;
    };
    client.onerror = (error) => this.options.logger.debug({ err: error, upstream: this.key }, 'upstream transport error');
    try {
      await client.connect(transport, { timeout: timeoutMs });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw this.translate(error, 'initialize', timeoutMs);
    }
    if (this.closed) {
      await client.close().catch(() => undefined);
      throw new UpstreamError('UPSTREAM_UNREACHABLE', this.serverName, `server "${this.serverName}" is no longer assigned`);
    }
    this.initializations += 1;
    this.client = client;
    this.options.logger.info({ upstream: this.key, server: this.serverName }, 'upstream session initialized');
    return client;
  }

  private createTransport(): Transport {
    const { upstream } = this.assignment;
    const name = this.serverName;
    switch (upstream.kind) {
      case 'remote': {
        const url = new URL(upstream.url);
        if (url.protocol === 'http:' && !upstream.allowInsecure && !isLoopback(url.hostname)) {
          throw new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" has a plain-http URL to a non-loopback host and insecure transport is not allowed`);
        }
        const requestInit = { headers: sharedUpstreamHeaders(this.assignment, this.secretKeys) };
        return upstream.transport === 'sse'
          ? new SSEClientTransport(url, { requestInit })
          : new StreamableHTTPClientTransport(url, { requestInit });
      }
      case 'managed-stdio': {
        // Validate the credential before launching anything.
        sharedUpstreamHeaders(this.assignment, this.secretKeys);
        const transport = new StdioClientTransport({
          command: upstream.command,
          args: [...upstream.args],
          env: { ...upstream.env, ...managedSecretEnv(this.assignment, upstream.secretEnv, this.secretKeys) },
          ...(upstream.cwd === null ? {} : { cwd: upstream.cwd }),
          stderr: 'pipe',
        });
        // Drain stderr into the log: an unread pipe would eventually block the child.
        transport.stderr?.on('data', (chunk: Buffer) => {
          this.options.logger.debug({ upstream: this.key, stderr: chunk.toString('utf8').slice(0, 2048) }, 'upstream stderr');
        });
        return transport;
      }
      case 'managed-http':
        throw new UpstreamError('UPSTREAM_UNSUPPORTED', name, `server "${name}" is a managed HTTP server, which this data plane does not launch yet`);
      case 'workstation':
        throw new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" runs on a workstation, and workstation tunnels are not available yet`);
    }
  }

  private translate(error: unknown, method: string, timeoutMs: number): Error {
    if (error instanceof UpstreamError) return error;
    const name = this.serverName;
    if (error instanceof McpError) {
      if (error.code === ErrorCode.RequestTimeout) {
        return new UpstreamError('UPSTREAM_TIMEOUT', name, `server "${name}" did not answer ${method} within ${timeoutMs} ms`, { cause: error });
      }
      if (error.code === ErrorCode.ConnectionClosed) {
        return new UpstreamError('UPSTREAM_UNREACHABLE', name, `the connection to server "${name}" closed during ${method}`, { cause: error });
      }
      // The upstream's own answer: relayed with its code.
      return error;
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" is unreachable: ${detail}`, { cause: error });
  }
}

/**
 * Upstream sessions keyed by assignment entry (`CompiledAssignment.upstreamKey`: the
 * assignment, the server and a digest of how to reach and authenticate to it). A managed
 * stdio server is therefore one process per assignment entry, shared by every caller of
 * it; that is right for the shared identity scheme, the only one served so far. When a
 * snapshot drops or changes an entry, {@link retain} closes its connection (and stops
 * its process).
 */
export class UpstreamPool {
  private readonly connections = new Map<string, UpstreamConnection>();
  private readonly listeners = new Set<UpstreamNotificationListener>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  /** Listens to session-wide upstream notifications (list changes, resource updates); returns an unsubscribe. */
  onNotification(listener: UpstreamNotificationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The connection for an entry, created (not yet connected) on first use. */
  get(entry: CompiledAssignment, secretKeys: ReadonlyMap<string, Uint8Array>): UpstreamConnection {
    let connection = this.connections.get(entry.upstreamKey);
    if (!connection) {
      connection = new UpstreamConnection(entry.upstreamKey, entry.assignment, secretKeys, this.options, (key, notification) => {
        for (const listener of this.listeners) {
          try {
            listener(key, notification);
          } catch (error) {
            this.options.logger.warn({ err: error, upstream: key }, 'an upstream notification listener failed');
          }
        }
      });
      this.connections.set(entry.upstreamKey, connection);
    }
    return connection;
  }

  /** The connection for a key if one exists, for inspection. */
  peek(upstreamKey: string): UpstreamConnection | undefined {
    return this.connections.get(upstreamKey);
  }

  get size(): number {
    return this.connections.size;
  }

  /** Closes every connection whose key is not in `keys` (entries a new snapshot no longer has). */
  async retain(keys: ReadonlySet<string>): Promise<void> {
    const stale = [...this.connections.values()].filter((connection) => !keys.has(connection.key));
    for (const connection of stale) this.connections.delete(connection.key);
    await Promise.all(stale.map((connection) => connection.close()));
  }

  async close(): Promise<void> {
    await this.retain(new Set());
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\./.test(hostname);
}
