/** JSON-RPC 2.0 as the endpoint reads and writes it. */

export type JsonRpcId = string | number;

export const JSON_RPC_ERRORS = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
} as const;

/** A message from the client, classified once at the edge. */
export type IncomingMessage =
  | { readonly kind: 'request'; readonly id: JsonRpcId; readonly method: string; readonly params: Record<string, unknown> | undefined }
  | { readonly kind: 'notification'; readonly method: string; readonly params: Record<string, unknown> | undefined }
  /** A client's answer to a server-to-client request. */
  | { readonly kind: 'response'; readonly id: JsonRpcId; readonly result?: unknown; readonly error?: unknown };

export interface JsonRpcErrorBody {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

/** Classifies one parsed JSON value, or says why it is not a valid JSON-RPC message. */
export function classifyMessage(value: unknown): { ok: true; message: IncomingMessage } | { ok: false; id: JsonRpcId | null; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, id: null, reason: 'a JSON-RPC message must be a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const id = isId(record.id) ? record.id : null;
  if (record.jsonrpc !== '2.0') return { ok: false, id, reason: 'the "jsonrpc" member must be "2.0"' };
  if ('method' in record) {
    if (typeof record.method !== 'string' || record.method === '') return { ok: false, id, reason: 'the "method" member must be a non-empty string' };
    const params = record.params;
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      return { ok: false, id, reason: 'MCP "params" must be an object when present' };
    }
    const typedParams = params as Record<string, unknown> | undefined;
    if (!('id' in record)) return { ok: true, message: { kind: 'notification', method: record.method, params: typedParams } };
    if (!isId(record.id)) return { ok: false, id: null, reason: 'the "id" member must be a string or an integer' };
    return { ok: true, message: { kind: 'request', id: record.id, method: record.method, params: typedParams } };
  }
  if (isId(record.id) && ('result' in record || 'error' in record)) {
    return { ok: true, message: { kind: 'response', id: record.id, ...('error' in record ? { error: record.error } : { result: record.result }) } };
  }
  return { ok: false, id, reason: 'not a request, notification or response' };
}

function isId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
}

export function resultMessage(id: JsonRpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result });
}

export function errorMessage(id: JsonRpcId | null, error: JsonRpcErrorBody): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

/** A JSON-RPC error to answer a request with; thrown by route handlers, caught by the endpoint. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}
