import { Agent, request } from 'undici';
import type { AuditBatch, AuditBatchReceipt, AuditEntry } from '../../schema/audit/types.js';

/** Path of the control plane's ingest endpoint. */
export const AUDIT_INGEST_PATH = '/ingest/audit';

/**
 * A batch as it is posted: the JSON of an {@link AuditBatch}, put together from its
 * entries' JSON (the shipper serializes each entry as it builds it and keeps only that
 * text, so no batch is serialized in one go on the event loop).
 */
export interface SerializedAuditBatch {
  readonly body: string;
  /** Entries in the batch. */
  readonly entries: number;
}

/** How a batch reaches the control plane. */
export interface AuditTransport {
  /** Resolves with the receipt, or throws {@link AuditShipError}. */
  send(batch: SerializedAuditBatch): Promise<AuditBatchReceipt>;
  /** Releases connections; `force` aborts requests still in flight. */
  close?(force: boolean): Promise<void>;
}

export type AuditShipErrorCode = 'NETWORK' | 'HTTP' | 'INTERNAL';

/**
 * A batch that did not ship. `retriable`: send the same entries again later (network
 * errors, 408, 429, 5xx); otherwise the control plane refused it for good (`status`
 * 400/401/403/413), and for 400 `index` names the first bad entry.
 */
export class AuditShipError extends Error {
  override readonly name = 'AuditShipError';
  constructor(
    readonly code: AuditShipErrorCode,
    message: string,
    readonly details: {
      readonly retriable: boolean;
      readonly status?: number;
      readonly index?: number;
      readonly field?: string;
      /** From `Retry-After`, when the control plane sent one. */
      readonly retryAfterMs?: number;
    },
  ) {
    super(message);
  }
}

export interface HttpAuditTransportOptions {
  /** The control plane's base URL (`http://cp:4000`; a ws(s) or `/graphql` URL is mapped). A function is read per request. */
  readonly url: string | (() => string);
  /** The data-plane token, `gh_dp_…`. */
  readonly token: string;
  /** Deadline for the answer's headers and body. Default 15 s. */
  readonly timeoutMs?: number;
}

/**
 * POSTs batches as JSON to `<control plane>/ingest/audit` with the data-plane token,
 * through one undici `Agent` with keep-alive connections (a few, so two batches in
 * flight do not wait for each other).
 */
export function httpAuditTransport(options: HttpAuditTransportOptions): AuditTransport {
  if (typeof options.url !== 'function' && !URL.canParse(options.url)) {
    throw new TypeError(`audit transport option "url" must be the control plane's URL, got ${JSON.stringify(options.url)}`);
  }
  if (typeof options.token !== 'string' || !options.token.startsWith('gh_dp_')) {
    throw new TypeError('audit transport option "token" must be a data-plane token (gh_dp_…)');
  }
  const timeoutMs = options.timeoutMs ?? 15_000;
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 4 });
  const url = options.url;
  const authorization = `Bearer ${options.token}`;
  return {
    async send({ body }) {
      let statusCode: number;
      let text: string;
      let retryAfter: string | string[] | undefined;
      try {
        const response = await request(ingestUrl(typeof url === 'function' ? url() : url), {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization, 'content-type': 'application/json' },
          body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        statusCode = response.statusCode;
        retryAfter = response.headers['retry-after'];
        text = await response.body.text();
      } catch (error) {
        throw new AuditShipError('NETWORK', `the control plane could not be reached: ${describe(error)}`, { retriable: true });
      }
      if (statusCode === 200) {
        const receipt = parseJson(text) as Partial<AuditBatchReceipt> | undefined;
        return { accepted: Number(receipt?.accepted ?? 0), duplicates: Number(receipt?.duplicates ?? 0) };
      }
      const error = (parseJson(text) as { error?: { code?: unknown; message?: unknown; field?: unknown; index?: unknown } } | undefined)?.error;
      const retriable = statusCode === 408 || statusCode === 429 || statusCode >= 500;
      const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      throw new AuditShipError('HTTP', `the control plane answered ${statusCode}${typeof error?.code === 'string' ? ` ${error.code}` : ''}: ${typeof error?.message === 'string' ? error.message : text.slice(0, 200)}`, {
        retriable,
        status: statusCode,
        ...(typeof error?.index === 'number' ? { index: error.index } : {}),
        ...(typeof error?.field === 'string' ? { field: error.field } : {}),
        ...(Number.isFinite(seconds) && seconds > 0 ? { retryAfterMs: seconds * 1000 } : {}),
      });
    },
    async close(force) {
      if (force) await agent.destroy().catch(() => undefined);
      else await agent.close().catch(() => undefined);
    },
  };
}

/** `http://cp:4000[/base][/graphql]` (or its ws form) → `http://cp:4000[/base]/ingest/audit`. */
export function ingestUrl(base: string): string {
  const url = new URL(base);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`the control-plane URL must be http(s), got ${base}`);
  const path = url.pathname.replace(/\/+$/, '').replace(/\/graphql$/, '');
  return `${url.protocol}//${url.host}${path}${AUDIT_INGEST_PATH}`;
}

/**
 * Keeps batches in memory: the sink of tests and of data planes built without a control
 * plane. `fail` may throw to simulate the control plane refusing or being down.
 */
export class MemoryAuditTransport implements AuditTransport {
  /** Each batch received, parsed from its body. */
  readonly batches: AuditBatch[] = [];
  /** The JSON body each batch would have been POSTed as. */
  readonly bodies: string[] = [];
  fail: ((batch: AuditBatch) => void) | undefined;

  async send({ body, entries }: SerializedAuditBatch): Promise<AuditBatchReceipt> {
    const batch = JSON.parse(body) as AuditBatch;
    if (batch.entries.length !== entries) throw new AuditShipError('INTERNAL', `the batch body holds ${batch.entries.length} entries, not ${entries}`, { retriable: false });
    this.fail?.(batch);
    this.batches.push(batch);
    this.bodies.push(body);
    return { accepted: batch.entries.length, duplicates: 0 };
  }

  /** Every entry shipped so far, in order. */
  entries(): AuditEntry[] {
    return this.batches.flatMap((batch) => batch.entries);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${error.message || error.name}`;
  }
  return String(error);
}
