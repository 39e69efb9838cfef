import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Counter, Histogram, Registry } from 'prom-client';
import type { SnapshotSource } from '../snapshot/snapshot-source.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';

/**
 * Prometheus metrics of the data plane, served at `/metrics`.
 *
 * The metrics are created once per process ({@link processMetrics}) in their own
 * registry, never per request or per data plane; a data plane registers itself as a
 * source for the values read at scrape time (snapshot version, upstream health). Labels
 * are bounded: `method` is a known MCP method or `other`, `gateway` a slug of the held
 * snapshot or `(unknown)`, an error `code` one of JSON-RPC's reserved range, `other` or
 * `http_<status>`, so no client or upstream can grow the series without bound.
 */

/** JSON-RPC methods kept as label values; anything else is `other`. */
const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  '(response)',
]);

export interface MetricsSource {
  readonly snapshots: SnapshotSource;
  readonly pool: UpstreamPool;
}

export class DataPlaneMetrics {
  readonly registry: Registry;
  private readonly sources = new Set<MetricsSource>();
  readonly calls: Counter<'gateway' | 'method' | 'outcome'>;
  readonly errors: Counter<'gateway' | 'method' | 'code'>;
  readonly duration: Histogram<'gateway' | 'method'>;
  readonly rateLimited: Counter<'scope'>;
  readonly rateLimitFallbacks: Counter;
  readonly relayed: Counter<'method' | 'outcome'>;

  constructor() {
    // Loaded when the first data plane is built, not when the CLI merely imports this module.
    const prom = createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
    const registry = new prom.Registry();
    this.registry = registry;
    const registers = [registry];
    this.calls = new prom.Counter({
      name: 'gatehouse_data_plane_calls_total',
      help: 'MCP requests to /mcp/<gateway> by gateway, JSON-RPC method and outcome (ok, error: a JSON-RPC error answer, refused: HTTP 4xx, failed: HTTP 5xx)',
      labelNames: ['gateway', 'method', 'outcome'] as const,
      registers,
    });
    this.errors = new prom.Counter({
      name: 'gatehouse_data_plane_errors_total',
      help: 'JSON-RPC errors answered, by gateway, method and JSON-RPC error code (or HTTP status when the answer had none)',
      labelNames: ['gateway', 'method', 'code'] as const,
      registers,
    });
    this.duration = new prom.Histogram({
      name: 'gatehouse_data_plane_request_duration_seconds',
      help: 'Time from request to response end at the data plane, by gateway and method',
      labelNames: ['gateway', 'method'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.rateLimited = new prom.Counter({
      name: 'gatehouse_data_plane_rate_limited_total',
      help: 'Requests refused with 429, by bucket (ip, token)',
      labelNames: ['scope'] as const,
      registers,
    });
    this.rateLimitFallbacks = new prom.Counter({
      name: 'gatehouse_data_plane_rate_limit_redis_fallbacks_total',
      help: 'Rate-limit decisions taken in memory because Redis was unreachable (fail open to per-replica buckets)',
      registers,
    });
    this.relayed = new prom.Counter({
      name: 'gatehouse_data_plane_relayed_requests_total',
      help: 'Requests upstreams sent clients during calls, by method (sampling/createMessage, elicitation/create, roots/list, other) and outcome: answered, client_error, refused (could not reach the client), blocked (a content rule), cancelled (by the upstream), unanswered (the call ended first)',
      labelNames: ['method', 'outcome'] as const,
      registers,
    });
    const sources = this.sources;
    new prom.Gauge({
      name: 'gatehouse_data_plane_snapshot_version',
      help: 'Version of the gateway snapshot being enforced (0: none yet)',
      registers,
      collect() {
        let version = 0;
        for (const source of sources) version = Math.max(version, source.snapshots.current()?.version ?? 0);
        this.set(version);
      },
    });
    new prom.Gauge({
      name: 'gatehouse_data_plane_upstream_up',
      help: 'Per assignment of the snapshot: 1 while an initialized upstream session is open, 0 otherwise (never used yet, failed, or closed)',
      labelNames: ['gateway', 'server', 'assignment'] as const,
      registers,
      collect() {
        this.reset();
        for (const source of sources) {
          const compiled = source.snapshots.current();
          if (!compiled) continue;
          for (const gateway of compiled.gatewaysBySlug.values()) {
            for (const entry of gateway.entries) {
              const labels = { gateway: gateway.gateway.slug, server: entry.assignment.serverName, assignment: entry.assignment.id };
              const up = source.pool.peek(entry.upstreamKey)?.capabilities() !== undefined;
              // Several data planes in one process (tests): up if any has it up.
              this.inc(labels, 0);
              if (up) this.set(labels, 1);
            }
          }
        }
      },
    });
    // [proxy] upstream health per assignment entry of the held snapshot (bounded by the snapshot).
    const perEntry = (read: (connection: NonNullable<ReturnType<UpstreamPool['peek']>>) => number) =>
      function (this: { reset(): void; set(labels: Record<string, string>, value: number): void }) {
        this.reset();
        for (const source of sources) {
          const compiled = source.snapshots.current();
          if (!compiled) continue;
          for (const gateway of compiled.gatewaysBySlug.values()) {
            for (const entry of gateway.entries) {
              const connection = source.pool.peek(entry.upstreamKey);
              if (!connection) continue;
              this.set({ gateway: gateway.gateway.slug, server: entry.assignment.serverName, assignment: entry.assignment.id }, read(connection));
            }
          }
        }
      };
    const entryGauge = (name: string, help: string, read: Parameters<typeof perEntry>[0]) =>
      new prom.Gauge({ name, help, labelNames: ['gateway', 'server', 'assignment'] as const, registers, collect: perEntry(read) });
    entryGauge(
      'gatehouse_data_plane_upstream_circuit_state',
      'Circuit breaker per assignment in use: 0 closed (calls flow), 1 half-open (one probe call in flight), 2 open (calls refused until the cool-down ends)',
      (connection) => CIRCUIT_STATE_VALUES[connection.circuitState],
    );
    entryGauge(
      'gatehouse_data_plane_upstream_consecutive_failures',
      'Consecutive failed calls (unreachable or timed out) per assignment in use; 0 after any answer',
      (connection) => connection.breaker.consecutiveFailures,
    );
    entryGauge(
      'gatehouse_data_plane_managed_process_restarts',
      'Restarts of a managed server process after it exited on its own or was found hung, per assignment in use (0 for remote servers)',
      (connection) => connection.processRestarts,
    );
    entryGauge(
      'gatehouse_data_plane_managed_probe_failures',
      'Health-probe pings of an idle managed server that failed or went unanswered, per assignment in use (0 for remote servers)',
      (connection) => connection.probeFailures,
    );
    entryGauge(
      'gatehouse_data_plane_managed_process_hang_restarts',
      'Managed server processes killed and restarted because they stopped answering health-probe pings, per assignment in use (also counted in managed_process_restarts)',
      (connection) => connection.hangRestarts,
    );
    new prom.Gauge({
      name: 'gatehouse_data_plane_upstream_connections',
      help: 'Upstream connections held in the pool (one per assignment entry in use)',
      registers,
      collect() {
        let size = 0;
        for (const source of sources) size += source.pool.size;
        this.set(size);
      },
    });
    prom.collectDefaultMetrics({ register: registry, prefix: 'gatehouse_data_plane_' });
  }

  /** Adds a data plane's snapshot source and pool to what scrapes report; returns the removal. */
  register(source: MetricsSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** Starts timing a request to `/mcp/<slug>`; the outcome is recorded when the response ends. */
  observe(req: IncomingMessage, res: ServerResponse, slug: string, knownGateway: (slug: string) => boolean): void {
    const started = process.hrtime.bigint();
    let answer: string | undefined;
    const end = res.end;
    // Sniff the start of a JSON body to tell a JSON-RPC error from a result (no re-parse).
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string') answer = chunk.slice(0, 300);
      else if (Buffer.isBuffer(chunk)) answer = chunk.subarray(0, 300).toString('utf8');
      return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as ServerResponse['end'];
    // SSE answers: the last `data:` line carrying a message with an id (the response comes last).
    const write = res.write;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string') {
        const at = chunk.indexOf('data: {"jsonrpc":"2.0","id":');
        if (at >= 0) answer = chunk.slice(at + 6, at + 306);
      }
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as ServerResponse['write'];
    let done = false;
    const record = () => {
      if (done) return;
      done = true;
      const gateway = knownGateway(slug) ? slug : '(unknown)';
      const noted = methods.get(res);
      const method = noted === undefined ? `http:${req.method ?? 'unknown'}` : KNOWN_METHODS.has(noted) ? noted : 'other';
      const status = res.statusCode;
      const rpcCode = answer === undefined ? undefined : ERROR_CODE.exec(answer)?.[1];
      const outcome = status >= 500 ? 'failed' : status >= 400 ? 'refused' : rpcCode !== undefined ? 'error' : 'ok';
      this.calls.inc({ gateway, method, outcome });
      if (rpcCode !== undefined || status >= 400) this.errors.inc({ gateway, method, code: rpcCode === undefined ? `http_${status}` : codeLabel(rpcCode) });
      this.duration.observe({ gateway, method }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    res.once('finish', record);
    res.once('close', record);
  }

  async render(res: ServerResponse): Promise<void> {
    const text = await this.registry.metrics();
    res.writeHead(200, { 'content-type': this.registry.contentType, 'content-length': Buffer.byteLength(text) }).end(text);
  }
}

/** [proxy] `gatehouse_data_plane_upstream_circuit_state` values. */
const CIRCUIT_STATE_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const;

/** `{"jsonrpc":"2.0","id":<id>,"error":{"code":<n>` as the endpoint serializes errors. */
const ERROR_CODE = /^\{"jsonrpc":"2\.0","id":(?:null|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|"(?:[^"\\]|\\.)*"),"error":\{"code":(-?\d+)/;

/**
 * The `code` label of a JSON-RPC error: codes of the range JSON-RPC reserves
 * (-32768…-32000: the spec's, MCP's and the gateway's own) as they are, any other
 * (an upstream's own codes, relayed as they came) as `other`, so an upstream cannot
 * grow the series without bound.
 */
function codeLabel(code: string): string {
  const value = Number(code);
  return value >= -32768 && value <= -32000 && Number.isInteger(value) ? String(value) : 'other';
}

/** The JSON-RPC method of a response being answered, noted by the endpoint. */
const methods = new WeakMap<ServerResponse, string>();

/** [ops hook] The endpoint notes which JSON-RPC method a response answers (for the `method` label). */
export function noteMcpMethod(res: ServerResponse, method: string): void {
  methods.set(res, method);
}

let instance: DataPlaneMetrics | undefined;

/** The process's one set of data-plane metrics, created on first use. */
export function processMetrics(): DataPlaneMetrics {
  instance ??= new DataPlaneMetrics();
  return instance;
}
