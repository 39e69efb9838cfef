/**
 * Why the data plane could not get an answer from an upstream. Local: it never crosses
 * the wire as is; the endpoint turns it into a JSON-RPC error naming the server. An
 * upstream's own JSON-RPC error (an `McpError` rebuilt from the wire) is not one of
 * these: it is relayed to the client with its code.
 *
 * - `UPSTREAM_UNREACHABLE`: connecting or initializing failed, the connection died, the
 *   managed process is restarting, or the circuit breaker is open (`detail.circuit`);
 * - `UPSTREAM_TIMEOUT`: no answer within the per-upstream timeout;
 * - `UPSTREAM_UNSUPPORTED`: this data plane cannot reach this kind of upstream yet;
 * - `UPSTREAM_CREDENTIAL`: the shared credential could not be opened.
 */
export type UpstreamErrorCode = 'UPSTREAM_UNREACHABLE' | 'UPSTREAM_TIMEOUT' | 'UPSTREAM_UNSUPPORTED' | 'UPSTREAM_CREDENTIAL';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly code: UpstreamErrorCode,
    /** Display name of the server, for the message the client sees. */
    readonly serverName: string,
    message: string,
    options?: { cause?: unknown; detail?: Readonly<Record<string, unknown>> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.detail = options?.detail;
  }

  /** Extra facts for the client's error `data` (e.g. `{ circuit: 'open', retryAt }`). */
  readonly detail: Readonly<Record<string, unknown>> | undefined;
}
