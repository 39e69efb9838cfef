import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Viewer } from '../access/viewer.js';
import { DomainError, ForbiddenError, UnauthenticatedError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services.js';
import { TOKEN_PREFIXES } from '../shared/tokens.js';
import { csvHeader, csvRow, toExportedEntry } from './audit-export.format.js';
import { EXPORT_FORMATS, type ExportFormat, type ExportRequest } from './audit-export.service.js';
import { parseAuditLogFilter, type RawAuditLogFilter } from './audit-log.filter.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const FILTER_PARAMS = ['from', 'to', 'gatewayId', 'serverId', 'connectionId', 'hostId', 'userId', 'teamId', 'feature', 'method', 'correlationId', 'search'] as const;
const LIST_PARAMS = ['status', 'leg'] as const;
const KNOWN_PARAMS = new Set<string>([...FILTER_PARAMS, ...LIST_PARAMS, 'format', 'includeBodies', 'token']);

const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

function sendError(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function parseFormat(value: string | null): ExportFormat {
  const format = (value ?? 'csv').toLowerCase();
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ValidationError('format', `format: expected one of ${EXPORT_FORMATS.join(', ')}`);
  }
  return format as ExportFormat;
}

function parseBool(value: string | null, field: string): boolean {
  if (value === null || value === '' || /^(false|0|no)$/i.test(value)) return false;
  if (/^(true|1|yes)$/i.test(value)) return true;
  throw new ValidationError(field, `${field}: expected true or false`);
}

/** A request authenticated by header: the filter comes from the query string. */
async function fromQuery(services: Services, params: URLSearchParams, authorization: string | undefined): Promise<ExportRequest> {
  const match = authorization ? BEARER.exec(authorization) : null;
  if (!match) throw new UnauthenticatedError('missing credentials: send "Authorization: Bearer <admin API key>" or use a link from auditExportUrl');
  if (!match[1]!.startsWith(TOKEN_PREFIXES.adminApiKey)) throw new UnauthenticatedError('exports need an admin API key');
  const viewer: Viewer | null = await services.apiKeys.authenticate(match[1]!);
  if (!viewer) throw new UnauthenticatedError('the API key is unknown or revoked');
  for (const key of params.keys()) {
    if (!KNOWN_PARAMS.has(key)) throw new ValidationError(key, `${key}: not a filter of the audit export`);
  }
  const raw: Record<string, unknown> = {};
  for (const key of FILTER_PARAMS) {
    const value = params.get(key);
    if (value !== null && value !== '') raw[key] = value;
  }
  for (const key of LIST_PARAMS) {
    const values = params.getAll(key).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
    if (values.length) raw[key] = values;
  }
  const filter = parseAuditLogFilter(raw as RawAuditLogFilter, '');
  return { viewer, filter, format: parseFormat(params.get('format')), includeBodies: parseBool(params.get('includeBodies'), 'includeBodies') };
}

/**
 * `GET /export/audit`: streams the entries of a filter as CSV (RFC 4180, header row, CRLF),
 * a JSON array, or NDJSON, oldest first. Authorised by `Authorization: Bearer <admin key>`
 * with the filter in the query string (`from`, `to`, `gatewayId`, … as in `AuditLogFilter`,
 * `status` and `leg` as comma lists, `format`, `includeBodies`), or by `?token=` from
 * `auditExportUrl`. Needs logging.export (and logging.view_bodies for bodies). Errors before
 * the first byte are JSON with a status (400, 401, 403); a failure mid-stream aborts the
 * connection, so a cut download is never mistaken for a complete one.
 */
export function createAuditExportHandler(services: Services, logger: Logger) {
  return async function handleAuditExport(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET') return sendError(res, 405, { error: 'method_not_allowed', message: 'use GET' }, { allow: 'GET' });
    let request: ExportRequest;
    try {
      const params = new URL(req.url ?? '/', 'http://localhost').searchParams;
      const token = params.get('token');
      if (token !== null) {
        if ([...params.keys()].some((k) => k !== 'token')) throw new ValidationError('token', 'token: a link carries its own filter and format; pass no other parameters');
        request = await services.auditExport.redeemLink(token);
      } else {
        request = await fromQuery(services, params, req.headers.authorization);
      }
      services.auditExport.authorize(request.viewer, request.includeBodies);
    } catch (err) {
      if (err instanceof UnauthenticatedError) return sendError(res, 401, { error: 'unauthenticated', message: err.message }, { 'www-authenticate': 'Bearer realm="gatehouse"' });
      if (err instanceof ForbiddenError) return sendError(res, 403, { error: 'forbidden', capability: err.capability, message: err.message });
      if (err instanceof ValidationError) return sendError(res, 400, { error: 'invalid', field: err.field, message: err.message });
      if (err instanceof DomainError) return sendError(res, 400, { error: err.code.toLowerCase(), message: err.message });
      logger.error({ err }, 'audit export failed before streaming');
      return sendError(res, 500, { error: 'internal', message: 'the export could not start' });
    }

    const { format, includeBodies } = request;
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[format],
      'content-disposition': `attachment; filename="gatehouse-audit-${stamp}.${format}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    const write = async (chunk: string) => {
      if (!res.write(chunk) && !closed) await drainedOrClosed(res);
    };
    let rows = 0;
    try {
      if (format === 'csv') await write(csvHeader(includeBodies));
      if (format === 'json') await write('[');
      for await (const batch of services.auditExport.batches(request)) {
        if (closed) break;
        let chunk = '';
        for (const row of batch) {
          const entry = toExportedEntry(row, includeBodies);
          if (format === 'csv') chunk += csvRow(entry, includeBodies);
          else if (format === 'ndjson') chunk += `${JSON.stringify(entry)}\n`;
          else chunk += `${rows === 0 ? '\n' : ',\n'}${JSON.stringify(entry)}`;
          rows++;
        }
        await write(chunk);
      }
      if (closed) return;
      if (format === 'json') await write(rows === 0 ? ']\n' : '\n]\n');
      res.end();
    } catch (err) {
      logger.error({ err, rows }, 'audit export failed mid-stream; aborting the response');
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };
}

/**
 * Resolves when the response drains or closes, leaving no listener behind (a race of two
 * `events.once` leaves the loser's listeners on the response, one pair per wait).
 */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
