/**
 * What a policy stage answers: pass (with what it learned) or a refusal that ends the
 * call. A refusal carries both the HTTP status and the JSON-RPC error the client sees;
 * its `message` says what happened and, where one exists, what a person can do about it.
 */
export type StageResult<T> = { readonly ok: true; readonly value: T } | Refusal;

/** Stable reason codes, sent as `error.data.code` so clients and tests can switch on them. */
export type RefusalCode =
  | 'SNAPSHOT_UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'GATEWAY_NOT_FOUND'
  | 'DISABLED'
  | 'FORBIDDEN'
  | 'NOT_PROVISIONED'
  | 'WITHHELD'
  | 'UPSTREAM_UNAVAILABLE';

/**
 * JSON-RPC error codes of Gatehouse's own refusals, in the implementation-defined server
 * range (-32000 to -32099), clear of the SDK's -32000 (connection closed) and -32001
 * (request timeout). Unknown and withheld features use the spec's -32602 (invalid params)
 * instead, as MCP prescribes for unknown tools.
 */
export const RPC_CODES = {
  SNAPSHOT_UNAVAILABLE: -32050,
  UNAUTHENTICATED: -32051,
  GATEWAY_NOT_FOUND: -32052,
  DISABLED: -32053,
  FORBIDDEN: -32054,
  NOT_PROVISIONED: -32602,
  WITHHELD: -32602,
  UPSTREAM_UNAVAILABLE: -32060,
} as const satisfies { readonly [C in RefusalCode]: number };

export interface Refusal {
  readonly ok: false;
  readonly code: RefusalCode;
  /** HTTP status of the response carrying the error (200 for refusals inside a well-formed call). */
  readonly status: number;
  /** JSON-RPC error code. */
  readonly rpcCode: number;
  readonly message: string;
  /** Extra response headers, e.g. `WWW-Authenticate`. */
  readonly headers?: { readonly [name: string]: string };
  /** Extra machine-readable detail for `error.data`. */
  readonly detail?: { readonly [key: string]: string };
}

export function pass<T>(value: T): StageResult<T> {
  return { ok: true, value };
}

export function refuse(
  code: RefusalCode,
  status: number,
  message: string,
  extra: { readonly headers?: Refusal['headers']; readonly detail?: Refusal['detail'] } = {},
): Refusal {
  return { ok: false, code, status, rpcCode: RPC_CODES[code], message, ...extra };
}
