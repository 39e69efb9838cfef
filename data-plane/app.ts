import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveDataPlaneConfig, type DataPlaneConfigInput } from './config.js';
import { redactingLogger, silentLogger, type DataPlaneLogger } from './logger.js';
import { createMcpEndpoint } from './mcp/http-endpoint.js';
import { RedisSessionState } from './mcp/session-state-redis.js'; // [proxy]
import { SessionLogLevels } from './mcp/session-log-levels.js'; // [proxy]
import { EndedSessions } from './mcp/session-id.js'; // [proxy]
import { CallAuditor, callAudit, type AuditSink } from './audit/call-auditor.js';
import { dataPlaneInstanceName } from './audit/shipper.js';
import { processMetrics } from './ops/metrics.js';
import { createOriginGuard, sendOriginRefusal } from './ops/origin-guard.js';
import { MemoryBucketStore, RateLimiter, sendRateLimited, type BucketStore } from './policy/rate-limit.js';
import { clientIp, type ClientAddressConfig } from './policy/client-address.js';
import { RedisBucketStore } from './policy/rate-limit-redis.js';
import { GATEHOUSE_VERSION } from './mcp/protocol.js';
import type { CompiledSnapshot } from './snapshot/compiled-snapshot.js';
import type { SnapshotLinkState, SnapshotSource } from './snapshot/snapshot-source.js';
import { UpstreamPool } from './upstream/upstream-pool.js';

export interface DataPlaneDeps {
  /** Where snapshots come from: the push-channel client, or an in-memory source. */
  readonly snapshots: SnapshotSource;
  readonly logger?: DataPlaneLogger;
  /** Epoch milliseconds; injectable for token expiry and session age. Default `Date.now`. */
  readonly clock?: () => number;
  /** [ops] Where rate-limit buckets live; default Redis when `redisUrl` is set, else memory. */
  readonly bucketStore?: BucketStore;
  /**
   * [audit] Where finished calls go to be recorded: an `AuditShipper` (to the control
   * plane) or a test's sink. The data plane owns it: `close()` flushes and closes it.
   * Absent: calls are not audited.
   */
  readonly audit?: AuditSink;
}

export interface DataPlane {
  readonly server: Server;
  readonly pool: UpstreamPool;
  /** Listens on the configured host and port (0: a free one) and returns the base URL. */
  listen(): Promise<{ url: string; port: number }>;
  /** Stops accepting, drops open connections and closes every upstream (stopping managed processes). */
  close(): Promise<void>;
}

const MCP_PATH = /^\/mcp\/([^/]+)\/?$/;

/**
 * Builds a data plane: the MCP endpoint at `/mcp/<gateway-slug>`, `/healthz` and
 * `/readyz`, enforcing whatever snapshot `deps.snapshots` holds. Nothing listens until
 * `listen()`.
 */
export function buildDataPlane(configInput: DataPlaneConfigInput, deps: DataPlaneDeps): DataPlane {
  const config = resolveDataPlaneConfig(configInput);
  /** How the client's address is read, for the per-IP limit and audit entries alike. */
  const clientAddress: ClientAddressConfig = { trustedProxyHops: config.rateLimit.trustedProxyHops, forwardedHeader: config.rateLimit.forwardedHeader };
  const logger = redactingLogger(deps.logger ?? silentLogger()); // [proxy] secrets redacted in every logged object
  const clock = deps.clock ?? Date.now;
  const pool = new UpstreamPool({
    clientInfo: { name: 'gatehouse-data-plane', version: GATEHOUSE_VERSION },
    logger,
    circuitBreaker: config.circuitBreaker,
    managedProbe: config.managedProbe,
  });
  // ── [ops] Host/Origin guard and rate limiter, built once per data plane ──
  const metrics = processMetrics();
  const unregisterMetrics = metrics.register({ snapshots: deps.snapshots, pool });
  const checkOrigin = createOriginGuard(config);
  const rateLimiter = new RateLimiter({
    config: config.rateLimit,
    store:
      deps.bucketStore ??
      (config.redisUrl
        ? new RedisBucketStore({ url: config.redisUrl, logger, onFallback: () => metrics.rateLimitFallbacks.inc() })
        : new MemoryBucketStore()),
    logger,
    onRefused: (scope) => metrics.rateLimited.inc({ scope }),
  });
  // [audit] one record per request, handed to the sink when the response closes.
  const auditor = deps.audit
    ? new CallAuditor(deps.audit, { snapshots: deps.snapshots, context: { instance: dataPlaneInstanceName(), clientAddress } })
    : undefined;
  // [proxy] What replicas share about sessions through Redis: endings, log levels and forwarded client messages.
  const sessionState = config.redisUrl ? new RedisSessionState({ url: config.redisUrl, logger }) : undefined;
  const endedSessions = new EndedSessions(config.sessionMaxAgeMs, sessionState, clock); // closes sessionState
  const sessionLogLevels = new SessionLogLevels(config.sessionMaxAgeMs, sessionState);
  const knownGateway = (slug: string) => deps.snapshots.current()?.gatewaysBySlug.has(slug) === true;
  const handleMcp = createMcpEndpoint({
    config,
    snapshots: deps.snapshots,
    pool,
    logger,
    clock,
    endedSessions, // [proxy] DELETE ends a session on every replica (Redis) or here
    sessionLogLevels, // [proxy] logging/setLevel, likewise
    ...(sessionState ? { sessionForwards: sessionState, sessionEvents: sessionState } : {}), // [proxy] cancellations and answers for calls on other replicas; GET-stream events
    // [ops] stage 1b: the per-token bucket, run right after authentication.
    tokenRateLimit: async (tokenId, res) => {
      const refusal = await rateLimiter.checkToken(tokenId, clock());
      if (!refusal) return true;
      callAudit(res)?.rateLimited(refusal); // [audit]
      sendRateLimited(res, refusal);
      return false;
    },
  });

  // Entries a new snapshot dropped or changed lose their upstream session (and process).
  const unsubscribe = deps.snapshots.onChange((next) => {
    pool.retain(upstreamKeysOf(next)).catch((error: unknown) => logger.warn({ err: error }, 'closing stale upstreams failed'));
  });

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'unhandled error in the data plane');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal error"}');
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') return readyz(res);
    if (path === '/metrics') return metrics.render(res); // [ops] Prometheus
    const match = MCP_PATH.exec(path);
    if (!match) return json(res, 404, { error: `no route for ${path}; MCP gateways are served at /mcp/<gateway-slug>` });
    let slug: string;
    try {
      slug = decodeURIComponent(match[1]!);
    } catch {
      return json(res, 404, { error: 'the gateway slug is not valid percent-encoding' });
    }
    // ── [ops] metrics, stage 0: Host/Origin (DNS rebinding), stage 1a: the per-IP bucket, before authentication ──
    metrics.observe(req, res, slug, knownGateway);
    const call = auditor?.begin(req, res, slug); // [audit]
    const verdict = checkOrigin(req);
    if (!verdict.ok) {
      call?.refusedByOrigin(verdict.code, verdict.message);
      req.resume();
      return sendOriginRefusal(res, verdict);
    }
    const ipRefusal = await rateLimiter.checkIp(clientIp(req.socket.remoteAddress, req.headers, clientAddress), clock());
    if (ipRefusal) {
      call?.rateLimited(ipRefusal);
      req.resume();
      return sendRateLimited(res, ipRefusal);
    }
    await handleMcp(req, res, slug);
  }

  function readyz(res: ServerResponse): void {
    const current = deps.snapshots.current();
    const state = deps.snapshots.link?.() ?? { state: 'local' as const };
    const link = describeLink(state);
    if (!current) {
      const why = state.state === 'disconnected' ? `; control plane unreachable since ${link.since}: ${state.reason}` : '';
      return json(res, 503, { status: 'no-snapshot', link, message: `no gateway snapshot received yet; every call is refused${why}` });
    }
    const serving = `serving snapshot v${current.version}`;
    json(res, 200, {
      status: state.state === 'disconnected' ? 'degraded' : 'ready',
      workspaceId: current.workspaceId,
      snapshotVersion: current.version,
      link,
      message:
        state.state === 'disconnected'
          ? `serving last good snapshot v${current.version}, control plane unreachable since ${link.since} (${state.reason})`
          : state.state === 'connected'
            ? `${serving}, connected to the control plane since ${link.since}`
            : serving,
    });
  }

  return {
    server,
    pool,
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { port } = server.address() as AddressInfo;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { url: `http://${host}:${port}`, port };
    },
    async close() {
      unsubscribe();
      unregisterMetrics(); // [ops]
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.close();
      await endedSessions.close(); // [proxy]
      await rateLimiter.close(); // [ops]
      await deps.audit?.close(); // [audit] ships what is buffered, within its deadline
    },
  };
}

function upstreamKeysOf(compiled: CompiledSnapshot): Set<string> {
  const keys = new Set<string>();
  for (const gateway of compiled.gatewaysBySlug.values()) for (const entry of gateway.entries) keys.add(entry.upstreamKey);
  return keys;
}

/** The link state with its times as ISO strings, for people reading `/readyz`. */
function describeLink(link: SnapshotLinkState): Record<string, string | undefined> {
  if (link.state === 'local') return { state: 'local' };
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    state: link.state,
    since: iso(link.since),
    ...(link.state === 'disconnected' ? { reason: link.reason } : {}),
    lastContactAt: iso(link.lastContactAt),
    lastError: link.lastError,
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
