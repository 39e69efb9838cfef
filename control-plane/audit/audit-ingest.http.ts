import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataPlaneService } from '../data-planes/data-plane.service.js';
import type { Logger } from '../logger.js';
import { AuditIngestError, isDataError, type AuditIngestService } from './audit-ingest.service.js';

/** Where data planes POST audit batches (AUDIT.md, "Ingest"). */
export const AUDIT_INGEST_PATH = '/ingest/audit';
/** Largest request body accepted. 5000 entries with 1 MiB bodies do not fit; data planes cut batches at 8 MiB. */
export const DEFAULT_INGEST_MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface AuditIngestHandlerDeps {
  readonly dataPlanes: Pick<DataPlaneService, 'authenticate'>;
  readonly ingest: AuditIngestService;
  readonly logger: Logger;
  /** Default {@link DEFAULT_INGEST_MAX_BODY_BYTES}. */
  readonly maxBodyBytes?: number;
}

class BodyTooLarge extends Error {}

/**
 * `POST /ingest/audit`: authenticates the data-plane token (`Authorization: Bearer
 * gh_dp_…`) to its data plane and workspace, reads and parses the batch, and answers
 * `{ accepted, duplicates }` or a JSON error `{ error: { code, message, field?, index? } }`:
 * 401 no data-plane token, 403 unknown or revoked data plane or an entry of another
 * workspace, 400 a malformed batch (naming the first bad field), 405, 415, 413, and 503
 * with `Retry-After` when the database is unavailable (the data plane retries).
 */
export function createAuditIngestHandler(deps: AuditIngestHandlerDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_INGEST_MAX_BODY_BYTES;
  return async function ingestAudit(req, res) {
    try {
      if (req.method !== 'POST') {
        req.resume();
        res.setHeader('allow', 'POST');
        return fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed; POST an audit batch here`);
      }
      const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!token || !token.startsWith('gh_dp_')) {
        req.resume();
        res.setHeader('www-authenticate', 'Bearer realm="gatehouse-ingest"');
        return fail(res, 401, 'UNAUTHENTICATED', 'send the data-plane token as "Authorization: Bearer gh_dp_…" (registerDataPlane shows it once)');
      }
      let principal;
      try {
        principal = await deps.dataPlanes.authenticate(token);
      } catch (error) {
        req.resume();
        return unavailable(res, deps.logger, error);
      }
      if (!principal?.dataPlaneId) {
        req.resume();
        return fail(res, 403, 'DATA_PLANE_REVOKED', 'this data-plane token is unknown or its data plane was revoked; register the data plane again');
      }
      if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/json') {
        req.resume();
        return fail(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
      }
      let text: string;
      try {
        text = await readBody(req, maxBodyBytes);
      } catch (error) {
        if (error instanceof BodyTooLarge) {
          res.setHeader('connection', 'close');
          return fail(res, 413, 'PAYLOAD_TOO_LARGE', `the batch exceeds ${maxBodyBytes} bytes; send fewer entries per batch`);
        }
        throw error;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return fail(res, 400, 'INVALID_BATCH', 'the body is not valid JSON', { field: '(root)' });
      }
      let receipt;
      try {
        receipt = await deps.ingest.ingest({ workspaceId: principal.workspaceId, dataPlaneId: principal.dataPlaneId }, parsed, text);
      } catch (error) {
        if (error instanceof AuditIngestError) {
          return fail(res, error.status, error.code, error.message, {
            ...(error.field === undefined ? {} : { field: error.field }),
            ...(error.index === undefined ? {} : { index: error.index }),
          });
        }
        if (isDataError(error)) {
          // Validation let through a value the database refuses: retrying cannot help.
          deps.logger.error({ err: error, dataPlaneId: principal.dataPlaneId }, 'the database refused an audit batch that passed validation');
          return fail(res, 400, 'INVALID_BATCH', `the database refused a value of the batch: ${(error as Error).message}`);
        }
        return unavailable(res, deps.logger, error);
      }
      json(res, 200, receipt);
    } catch (error) {
      deps.logger.error({ err: error }, 'audit ingest failed');
      if (!res.headersSent) fail(res, 500, 'INTERNAL', 'the audit batch could not be ingested; retry later');
      else res.destroy();
    }
  };
}

function unavailable(res: ServerResponse, logger: Logger, error: unknown): void {
  logger.warn({ err: error }, 'audit ingest unavailable: the database failed');
  res.setHeader('retry-after', '1');
  fail(res, 503, 'UNAVAILABLE', 'the audit store is unavailable; retry the same batch later');
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new BodyTooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new BodyTooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fail(res: ServerResponse, status: number, code: string, message: string, extra: { field?: string; index?: number } = {}): void {
  json(res, status, { error: { code, message, ...extra } });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
