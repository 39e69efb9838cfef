import type { ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  McpError,
  type JSONRPCNotification,
  type Result,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import { Agent, type Dispatcher } from 'undici';
import { UPSTREAM_CLIENT_CAPABILITIES, type ManagedHttpUpstream, type ManagedStdioUpstream, type SnapshotAssignment } from '../../schema/snapshot/index.js';
import type { DataPlaneLogger } from '../logger.js';
import type { CompiledAssignment } from '../snapshot/compiled-snapshot.js';
import { ChildStdioTransport } from './child-stdio-transport.js';
import { CircuitBreaker, DEFAULT_CIRCUIT_BREAKER, type CircuitAdmission, type CircuitBreakerOptions, type CircuitState } from './circuit-breaker.js';
import { managedSecretEnv, sharedUpstreamHeaders } from './credentials.js';
import { UndiciStreamableHttpTransport } from './http-transport.js';
import { DEFAULT_RESTART_POLICY, ManagedProcess, ManagedProcessUnavailable, type LaunchSpec, type RestartPolicy } from './managed-process.js';
import { CALL_NOTIFICATIONS, DirectCallClosed, DirectCallTimeout, DirectCalls } from './direct-calls.js';
import { DEFAULT_IDLE_PROBE, IdleProbe, type IdleProbeOptions } from './idle-probe.js';
import type { CallRelay, RelayedMessage } from './relay.js';
import { UpstreamError } from './upstream-error.js';

export interface UpstreamPoolOptions {
  /** How the gateway introduces itself to upstreams in `initialize`. */
  readonly clientInfo: { readonly name: string; readonly version: string };
  readonly logger: DataPlaneLogger;
  /** Per upstream connection. Default 5 consecutive failures, 10 s cool-down. */
  readonly circuitBreaker?: CircuitBreakerOptions;
  /** Restart backoff of managed processes. Default 250 ms doubling to 30 s, reset after 60 s of uptime. */
  readonly restart?: RestartPolicy;
  /**
   * Keep-alive connections per upstream origin (undici pool; no pipelining). Each call in
   * flight holds one while its answer streams, and each upstream session's GET stream
   * one more. Default 128.
   */
  readonly connectionsPerOrigin?: number;
  /** How long a launched managed HTTP server has to accept connections. Default 30 s. */
  readonly managedHttpStartupMs?: number;
  /**
   * Health probe of managed servers' sessions: an MCP `ping` after `intervalMs` without an
   * answer; `failures` pings in a row unanswered within `timeoutMs` restart the process.
   * Default 30 s, 5 s, 2; an interval of 0 turns it off.
   */
  readonly managedProbe?: IdleProbeOptions;
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
/** Called when an upstream session was replaced by a new one (the upstream forgot it, or its process restarted). */
export type UpstreamRenewalListener = (upstreamKey: string) => void;


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
  /** Upstream sessions the transport re-initialized after the upstream forgot one (HTTP 404). */
  reinitializations = 0;
  readonly breaker: CircuitBreaker;
  /**
   * Pinned features the upstream last listed with a definition hash other than the
   * pinned one, as `<featureType>\0<upstreamName>`; calls to them are refused.
   */
  readonly livePinMismatches = new Set<string>();
  private ready: Promise<Client> | undefined;
  private client: Client | undefined;
  /** Requests of the current session, sent without the Client's protocol layer. */
  private direct: DirectCalls | undefined;
  private closed = false;
  /** Calls in flight that relay upstream messages, for attributing context-less messages. */
  private readonly relays = new Set<CallRelay>();
  /** The supervised process of a managed server (stdio: this entry's own; HTTP: shared per URL). */
  private process: ManagedProcess | undefined;
  private releaseProcess: (() => Promise<void>) | undefined;
  /** The idle probe of the current session (managed servers only). */
  private probe: IdleProbe | undefined;
  /** Pings the idle probe sent (managed servers only). */
  probesSent = 0;
  /** Pings of the idle probe that failed or went unanswered. */
  probeFailures = 0;
  /** Times the idle probe found the managed process hung and had it restarted. */
  hangRestarts = 0;

  constructor(
    readonly key: string,
    private readonly assignment: SnapshotAssignment,
    private readonly secretKeys: ReadonlyMap<string, Uint8Array>,
    private readonly options: UpstreamPoolOptions,
    private readonly broadcast: UpstreamNotificationListener,
    private readonly shared: PoolResources,
    /** A new upstream session replaced an earlier one: what the old one held (subscriptions) is gone. */
    private readonly renewed: (upstreamKey: string) => void = () => undefined,
  ) {
    this.breaker = new CircuitBreaker(options.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER);
  }

  get serverName(): string {
    return this.assignment.serverName;
  }

  /** The circuit breaker's state, for health reporting. */
  get circuitState(): CircuitState {
    return this.breaker.state;
  }

  /** Restarts of the managed process after it exited on its own (0 for remote servers). */
  get processRestarts(): number {
    return this.process?.restarts ?? 0;
  }

  /** Requests sent to the upstream and not answered yet. */
  get callsInFlight(): number {
    return this.direct?.size ?? 0;
  }

  /** The managed process's pid while it runs. */
  get processId(): number | undefined {
    return this.process?.pid;
  }

  /** True while an idle probe watches the current session. */
  get probing(): boolean {
    return this.probe?.running ?? false;
  }

  /** The upstream's capabilities once initialized; undefined before. */
  capabilities(): ServerCapabilities | undefined {
    return this.client?.getServerCapabilities();
  }

  /**
   * Connects (once) and returns the initialized client. Throws {@link UpstreamError};
   * while the circuit is open, at once.
   */
  connect(timeoutMs: number): Promise<Client> {
    if (this.client && !this.closed) return Promise.resolve(this.client);
    return this.guarded(undefined, () => this.ensureClient(timeoutMs));
  }

  private ensureClient(timeoutMs: number): Promise<Client> {
    if (this.closed) {
      return Promise.reject(new UpstreamError('UPSTREAM_UNREACHABLE', this.serverName, `server "${this.serverName}" is no longer assigned`));
    }
    if (this.client) return Promise.resolve(this.client);
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
   * everything else becomes an {@link UpstreamError}. Requests go straight through the
   * session's transport ({@link DirectCalls}); the SDK `Client` only opens the session.
   */
  request(method: string, params: Record<string, unknown> | undefined, options: UpstreamRequestOptions): Promise<Result> {
    return this.guarded(options.signal, async () => {
      const direct = this.direct && !this.closed ? this.direct : (await this.ensureClient(options.timeoutMs), this.direct!);
      const relay = options.relay;
      if (relay) this.relays.add(relay);
      try {
        return await direct.request(method, params, options);
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('request cancelled');
        throw this.translate(error, method, options.timeoutMs);
      } finally {
        if (relay) this.relays.delete(relay);
      }
    });
  }

  /**
   * Runs one upstream operation through the circuit breaker: refused at once while
   * open; an unreachable or timed-out upstream counts as a failure, any answer
   * (including the upstream's own JSON-RPC error) as a success, a cancelled call as neither.
   */
  private async guarded<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    const admission = this.breaker.admit();
    if (!admission.ok) throw this.circuitOpen(admission);
    try {
      const value = await work();
      this.breaker.succeeded();
      return value;
    } catch (error) {
      if (signal?.aborted) this.breaker.abandoned(admission.probe);
      else if (error instanceof UpstreamError && (error.code === 'UPSTREAM_UNREACHABLE' || error.code === 'UPSTREAM_TIMEOUT')) this.breaker.failed(error.message);
      else if (error instanceof McpError) this.breaker.succeeded();
      else this.breaker.abandoned(admission.probe);
      throw error;
    }
  }

  private circuitOpen(admission: Extract<CircuitAdmission, { ok: false }>): UpstreamError {
    const name = this.serverName;
    const seconds = Math.max(1, Math.ceil((admission.retryAt - Date.now()) / 1000));
    const retryAt = new Date(admission.retryAt).toISOString();
    const detail = { circuit: admission.probing ? 'half-open' : 'open', retryAt, retryAfterSeconds: seconds };
    if (admission.probing) {
      return new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" failed repeatedly and the gateway is probing it now; retry in a moment`, { detail });
    }
    const last = this.breaker.lastFailure ? ` (last: ${this.breaker.lastFailure})` : '';
    return new UpstreamError(
      'UPSTREAM_UNREACHABLE',
      name,
      `server "${name}" is unavailable after ${this.breaker.consecutiveFailures} consecutive failures${last}; the gateway will try it again at ${retryAt} (in ${seconds} s)`,
      { detail },
    );
  }

  /**
   * The call a message the `Client` received belongs to, when it cannot be told from the
   * stream it arrived on (stdio, the GET stream): the only call in flight, if exactly one.
   */
  private relayFor(): CallRelay | undefined {
    if (this.relays.size === 1) return this.relays.values().next().value;
    return undefined;
  }

  /** Ends the upstream session for good and stops (or releases) the managed process. */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.forgetSession();
    const release = this.releaseProcess;
    this.releaseProcess = undefined;
    await Promise.all([release?.(), client?.close().catch(() => undefined)]);
  }

  /** Drops the current upstream session (its process died); the next call opens a new one. */
  private dropSession(): void {
    void this.forgetSession()?.close().catch(() => undefined);
  }

  /** Forgets the current upstream session (client, direct path, pending open, probe); returns its client to close. */
  private forgetSession(): Client | undefined {
    const client = this.client;
    this.client = undefined;
    this.direct = undefined;
    this.ready = undefined;
    this.probe?.stop();
    this.probe = undefined;
    return client;
  }

  /**
   * Watches a managed server's new session with an {@link IdleProbe}. A hung process is
   * recycled: killed, restarted with the supervisor's backoff, and the next call opens a
   * new session (announced as a renewal). The probe stays outside the circuit breaker:
   * its pings neither fail nor close it, since the restart is the remedy and calls
   * still report what they see themselves.
   */
  private startProbe(direct: DirectCalls, child: ChildProcess): void {
    const options = this.options.managedProbe ?? DEFAULT_IDLE_PROBE;
    const process = this.process;
    if (options.intervalMs === 0 || !process) return;
    const fields = { server: this.serverName, upstream: this.key, pid: child.pid };
    const probe = new IdleProbe(direct, options, {
      pinged: () => {
        this.probesSent += 1;
      },
      failed: (consecutive, reason) => {
        this.probeFailures += 1;
        this.options.logger.info({ ...fields, consecutive, reason }, 'a managed server did not answer a ping');
      },
      hung: (reason) => {
        if (this.probe === probe) this.probe = undefined;
        if (process.recycle(child, `it is hung: ${reason}`)) this.hangRestarts += 1;
      },
    });
    this.probe = probe;
    probe.start();
  }

  private async open(timeoutMs: number): Promise<Client> {
    const deadline = Date.now() + timeoutMs;
    let transport: Transport;
    let child: ChildProcess | undefined;
    try {
      ({ transport, child } = await this.createTransport(timeoutMs));
    } catch (error) {
      throw this.translate(error, 'initialize', timeoutMs);
    }
    // Waiting for a managed process to start counts against the same deadline.
    timeoutMs = Math.max(1, deadline - Date.now());
    const client = new Client(
      { name: this.options.clientInfo.name, version: this.options.clientInfo.version },
      // What it can relay (discovery declares the same): one upstream session serves every
      // client session, and a request meant for a client that did not declare the capability
      // itself is answered with an error naming that (the endpoint's relay).
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
      if (CALL_NOTIFICATIONS.has(message.method)) this.relayFor()?.notify({ method: message.method, params: message.params });
    };
    client.onclose = () => {
      // A closed session is never reused: the next call initializes a new one.
      if (this.client === client) this.forgetSession();
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
    this.direct = new DirectCalls(transport);
    this.client = client;
    if (child) this.startProbe(this.direct, child);
    this.options.logger.info({ upstream: this.key, server: this.serverName }, 'upstream session initialized');
    if (this.initializations > 1) this.renewed(this.key); // after a dropped session (a managed process restarted)
    return client;
  }

  /** The transport of a new session, and the managed process it talks to (if managed). */
  private async createTransport(timeoutMs: number): Promise<{ transport: Transport; child?: ChildProcess }> {
    const { upstream } = this.assignment;
    const name = this.serverName;
    switch (upstream.kind) {
      case 'remote': {
        const url = new URL(upstream.url);
        if (url.protocol === 'http:' && !upstream.allowInsecure && !isLoopback(url.hostname)) {
          throw new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" has a plain-http URL to a non-loopback host and insecure transport is not allowed`);
        }
        const headers = sharedUpstreamHeaders(this.assignment, this.secretKeys);
        return { transport: upstream.transport === 'sse' ? new SSEClientTransport(url, { requestInit: { headers } }) : this.httpTransport(url, headers) };
      }
      case 'managed-stdio': {
        // Validate the credential before launching anything.
        sharedUpstreamHeaders(this.assignment, this.secretKeys);
        const process = (this.process ??= this.stdioProcess(upstream));
        const child = await this.acquire(process, timeoutMs);
        return { transport: new ChildStdioTransport(child, () => process.recycle(child, 'its upstream session closed')), child };
      }
      case 'managed-http': {
        const headers = sharedUpstreamHeaders(this.assignment, this.secretKeys);
        const url = new URL(upstream.url);
        if (!this.process) {
          const { process, release } = this.shared.managedHttp.acquire(url, this.launchSpec(upstream, { PORT: portOf(url) }), name, this.key);
          this.process = process;
          this.releaseProcess = release;
          // The process died: its sessions died with it; the next call waits for the restart.
          process.onExit(() => this.dropSession());
        }
        const child = await this.acquire(this.process, timeoutMs);
        return { transport: this.httpTransport(url, headers), child };
      }
      case 'workstation':
        throw new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" runs on a workstation, and workstation tunnels are not available yet`);
    }
  }

  private httpTransport(url: URL, headers: Record<string, string>): Transport {
    return new UndiciStreamableHttpTransport({
      url,
      dispatcher: this.shared.dispatcher,
      headers,
      onReinitialized: () => {
        this.reinitializations += 1;
        this.options.logger.info({ upstream: this.key, server: this.serverName }, 'the upstream forgot its session (404); re-initialized it');
        this.renewed(this.key);
      },
    });
  }

  private stdioProcess(upstream: ManagedStdioUpstream): ManagedProcess {
    const process = new ManagedProcess({
      serverName: this.serverName,
      key: this.key,
      spec: this.launchSpec(upstream, {}),
      logger: this.options.logger,
      restart: this.options.restart ?? DEFAULT_RESTART_POLICY,
      mode: 'stdio',
    });
    this.releaseProcess = () => process.stop();
    return process;
  }

  private launchSpec(upstream: ManagedStdioUpstream | ManagedHttpUpstream, defaults: Record<string, string>): LaunchSpec {
    return {
      command: upstream.command,
      args: upstream.args,
      env: { ...defaults, ...upstream.env, ...managedSecretEnv(this.assignment, upstream.secretEnv, this.secretKeys) },
      cwd: upstream.cwd,
    };
  }

  private async acquire(process: ManagedProcess, timeoutMs: number) {
    try {
      return await process.acquire(timeoutMs);
    } catch (error) {
      if (!(error instanceof ManagedProcessUnavailable)) throw error;
      const detail = error.restartAt === undefined ? undefined : { restartAt: new Date(error.restartAt).toISOString() };
      throw new UpstreamError('UPSTREAM_UNREACHABLE', this.serverName, error.message, { cause: error, ...(detail ? { detail } : {}) });
    }
  }

  private translate(error: unknown, method: string, timeoutMs: number): Error {
    if (error instanceof UpstreamError) return error;
    const name = this.serverName;
    if (error instanceof DirectCallTimeout) {
      return new UpstreamError('UPSTREAM_TIMEOUT', name, `server "${name}" did not answer ${method} within ${timeoutMs} ms`, { cause: error });
    }
    if (error instanceof DirectCallClosed) {
      return new UpstreamError('UPSTREAM_UNREACHABLE', name, `the connection to server "${name}" closed during ${method} (${error.message})`, { cause: error });
    }
    // Timeouts and closes the SDK Client reports itself (initialize); an upstream's own
    // error answer to a request comes through DirectCalls and is relayed whatever its code.
    if (error instanceof McpError && method === 'initialize') {
      if (error.code === ErrorCode.RequestTimeout) {
        return new UpstreamError('UPSTREAM_TIMEOUT', name, `server "${name}" did not answer ${method} within ${timeoutMs} ms`, { cause: error });
      }
      if (error.code === ErrorCode.ConnectionClosed) {
        return new UpstreamError('UPSTREAM_UNREACHABLE', name, `the connection to server "${name}" closed during ${method}`, { cause: error });
      }
    }
    // The upstream's own answer: relayed with its code.
    if (error instanceof McpError) return error;
    const detail = error instanceof Error ? error.message : String(error);
    return new UpstreamError('UPSTREAM_UNREACHABLE', name, `server "${name}" is unreachable: ${detail}`, { cause: error });
  }
}

/** What the connections of one pool share: the keep-alive agent and the managed HTTP processes. */
export interface PoolResources {
  readonly dispatcher: Dispatcher;
  readonly managedHttp: ManagedHttpProcesses;
}

/** One undici agent per pool: a keep-alive connection pool per upstream origin, no pipelining. */
function createUpstreamAgent(options: UpstreamPoolOptions): Agent {
  return new Agent({
    connections: options.connectionsPerOrigin ?? 128,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connect: { timeout: 10_000 },
  });
}

/**
 * Managed HTTP servers, one process per listening address: every entry whose upstream
 * URL names the same host and port shares the process (two launches would fight over
 * the port), started by the first and stopped when the last releases it. Entries that
 * name the same address with a different launch command are refused.
 */
export class ManagedHttpProcesses {
  private readonly byAddress = new Map<string, { process: ManagedProcess; fingerprint: string; serverName: string; users: number }>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  acquire(url: URL, spec: LaunchSpec, serverName: string, key: string): { process: ManagedProcess; release: () => Promise<void> } {
    const address = `${url.hostname}:${portOf(url)}`;
    const fingerprint = JSON.stringify([spec.command, spec.args, spec.cwd]);
    let held = this.byAddress.get(address);
    if (held && held.fingerprint !== fingerprint) {
      throw new UpstreamError(
        'UPSTREAM_UNREACHABLE',
        serverName,
        `server "${serverName}" is a managed HTTP server on ${address}, where the data plane already runs the process of server "${held.serverName}" with another command; give each managed HTTP server its own port`,
      );
    }
    if (!held) {
      const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      held = {
        process: new ManagedProcess({
          serverName,
          key,
          spec,
          logger: this.options.logger,
          restart: this.options.restart ?? DEFAULT_RESTART_POLICY,
          mode: 'http',
          readiness: { host: hostname, port: Number(portOf(url)), timeoutMs: this.options.managedHttpStartupMs ?? 30_000 },
        }),
        fingerprint,
        serverName,
        users: 0,
      };
      this.byAddress.set(address, held);
    }
    held.users += 1;
    const entry = held;
    let released = false;
    return {
      process: entry.process,
      release: async () => {
        if (released) return;
        released = true;
        entry.users -= 1;
        if (entry.users > 0) return;
        if (this.byAddress.get(address) === entry) this.byAddress.delete(address);
        await entry.process.stop();
      },
    };
  }

  get size(): number {
    return this.byAddress.size;
  }
}

/**
 * Upstream sessions keyed by assignment entry (`CompiledAssignment.upstreamKey`: the
 * assignment, the server and a digest of how to reach and authenticate to it). A managed
 * stdio server is therefore one process per assignment entry, shared by every caller of
 * it (the shared identity scheme; see the README for the personal one); a managed HTTP
 * server one process per listening address. Remote Streamable HTTP upstreams go through
 * one undici agent (keep-alive pools per origin). When a snapshot drops or changes an
 * entry, {@link retain} closes its connection (and stops its process).
 */
export class UpstreamPool {
  private readonly connections = new Map<string, UpstreamConnection>();
  private readonly listeners = new Set<UpstreamNotificationListener>();
  private readonly renewalListeners = new Set<UpstreamRenewalListener>();
  private readonly resources: PoolResources;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.resources = { dispatcher: createUpstreamAgent(options), managedHttp: new ManagedHttpProcesses(options) };
  }

  /** Listens to session-wide upstream notifications (list changes, resource updates); returns an unsubscribe. */
  onNotification(listener: UpstreamNotificationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Listens to upstream sessions being replaced (404 re-initialization, a restarted process); returns an unsubscribe. */
  onSessionRenewed(listener: UpstreamRenewalListener): () => void {
    this.renewalListeners.add(listener);
    return () => this.renewalListeners.delete(listener);
  }

  /** The connection for an entry, created (not yet connected) on first use. */
  get(entry: CompiledAssignment, secretKeys: ReadonlyMap<string, Uint8Array>): UpstreamConnection {
    let connection = this.connections.get(entry.upstreamKey);
    if (!connection) {
      connection = new UpstreamConnection(
        entry.upstreamKey,
        entry.assignment,
        secretKeys,
        this.options,
        (key, notification) => this.#emit(this.listeners, key, (listener) => listener(key, notification)),
        this.resources,
        (key) => this.#emit(this.renewalListeners, key, (listener) => listener(key)),
      );
      this.connections.set(entry.upstreamKey, connection);
    }
    return connection;
  }

  /** Calls each listener; one that throws is logged and does not stop the others (nor the connection that emitted). */
  #emit<L>(listeners: ReadonlySet<L>, upstreamKey: string, call: (listener: L) => void): void {
    for (const listener of listeners) {
      try {
        call(listener);
      } catch (error) {
        this.options.logger.warn({ err: error, upstream: upstreamKey }, 'an upstream pool listener failed');
      }
    }
  }

  /** Every connection, for inspection. */
  all(): UpstreamConnection[] {
    return [...this.connections.values()];
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

  /** Closes every connection (stopping managed processes) and the connection pools. */
  async close(): Promise<void> {
    await this.retain(new Set());
    await this.resources.dispatcher.destroy().catch(() => undefined);
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\./.test(hostname);
}

function portOf(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}
