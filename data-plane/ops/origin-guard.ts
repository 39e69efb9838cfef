import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataPlaneConfig } from '../config.js';
import { errorMessage } from '../mcp/json-rpc.js';

/**
 * JSON-RPC code of a request refused by Host or Origin validation: the generic server
 * error, as the MCP SDK's own DNS-rebinding protection answers.
 */
export const ORIGIN_REFUSED_RPC_CODE = -32000;

export type OriginVerdict = { readonly ok: true } | { readonly ok: false; readonly code: 'HOST_NOT_ALLOWED' | 'ORIGIN_NOT_ALLOWED'; readonly message: string };

/**
 * DNS-rebinding protection for the MCP endpoint (spec: servers MUST validate `Origin`).
 * A page on `evil.example` whose name is rebound to 127.0.0.1 reaches us with
 * `Host: evil.example` and `Origin: http://evil.example`; both are refused. Built once
 * from the frozen config; each check is a set look-up.
 */
export function createOriginGuard(config: Pick<DataPlaneConfig, 'allowedHosts' | 'allowedOrigins'>): (req: IncomingMessage) => OriginVerdict {
  const anyHost = config.allowedHosts.includes('*');
  const hosts = new Set(config.allowedHosts);
  const anyOrigin = config.allowedOrigins.includes('*');
  const exactOrigins = new Set(config.allowedOrigins.filter((origin) => !origin.endsWith(':*')));
  const anyPortOrigins = new Set(config.allowedOrigins.filter((origin) => origin.endsWith(':*')).map((origin) => origin.slice(0, -2)));
  const hostList = config.allowedHosts.join(', ');

  return function checkOrigin(req: IncomingMessage): OriginVerdict {
    if (!anyHost) {
      const host = hostnameOf(req.headers.host);
      if (host === undefined || !hosts.has(host)) {
        return {
          ok: false,
          code: 'HOST_NOT_ALLOWED',
          message: `the Host header ${req.headers.host === undefined ? '(missing)' : `"${req.headers.host}"`} is not allowed (allowed: ${hostList}); an operator can add it to GATEHOUSE_DATA_PLANE_ALLOWED_HOSTS`,
        };
      }
    }
    const origin = req.headers.origin;
    // Non-browser clients send no Origin; only browsers are exposed to DNS rebinding.
    if (origin === undefined || anyOrigin) return { ok: true };
    if (exactOrigins.has(origin.toLowerCase()) || anyPortOrigins.has(originWithoutPort(origin))) return { ok: true };
    return {
      ok: false,
      code: 'ORIGIN_NOT_ALLOWED',
      message: `requests from origin "${origin}" are not allowed; an operator can add it to GATEHOUSE_DATA_PLANE_ALLOWED_ORIGINS`,
    };
  };
}

/** Writes the 403 for a refused Host or Origin. */
export function sendOriginRefusal(res: ServerResponse, verdict: Extract<OriginVerdict, { ok: false }>): void {
  const body = errorMessage(null, { code: ORIGIN_REFUSED_RPC_CODE, message: verdict.message, data: { code: verdict.code } });
  res.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

/** `Host` without its port, lower-cased, IPv6 brackets removed; undefined if malformed. */
export function hostnameOf(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const host = header.toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return host.slice(1, end);
  }
  const colon = host.indexOf(':');
  if (colon < 0) return host;
  if (!/^\d{1,5}$/.test(host.slice(colon + 1))) return undefined;
  return host.slice(0, colon);
}

/** `scheme://host` of an Origin (lower-cased, port dropped); '' if it is not a URL origin. */
function originWithoutPort(origin: string): string {
  if (!URL.canParse(origin)) return '';
  const url = new URL(origin);
  if (url.origin === 'null') return '';
  return `${url.protocol}//${url.hostname}`;
}
