import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4 (header form), enough for JSON POSTs to AWS APIs such as
 * Bedrock's ApplyGuardrail. Follows the published algorithm: canonical request →
 * string to sign → HMAC chain of date / region / service / `aws4_request`.
 */

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials (STS) add `x-amz-security-token`. */
  readonly sessionToken?: string;
}

export interface SigV4Request {
  readonly method: string;
  /** The URL as sent: its pathname is the (once-encoded) wire path. */
  readonly url: URL;
  /** Headers to sign besides `host`, `x-amz-date`, `x-amz-content-sha256` (and the token). */
  readonly headers: { readonly [name: string]: string };
  readonly body: string | Uint8Array;
}

export interface SigV4Options {
  readonly credentials: AwsCredentials;
  readonly region: string;
  /** The signing name, e.g. `bedrock` (not the endpoint prefix `bedrock-runtime`). */
  readonly service: string;
  readonly now: Date;
  /** Encode path segments once more (every service but S3). Default true. */
  readonly doubleEncodePath?: boolean;
}

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Uint8Array, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 percent-encoding of everything but unreserved characters (AWS's UriEncode). */
export function awsUriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20150830T123600Z`. */
export function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.[0-9]{3}/, '');
}

function canonicalUri(pathname: string, doubleEncode: boolean): string {
  const path = pathname === '' ? '/' : pathname;
  if (!doubleEncode) return path.split('/').map((segment) => awsUriEncode(decodeURIComponent(segment))).join('/');
  return path.split('/').map((segment) => awsUriEncode(segment)).join('/');
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params]
    .map(([key, value]) => [awsUriEncode(key), awsUriEncode(value)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

export interface SigV4Parts {
  readonly canonicalRequest: string;
  readonly stringToSign: string;
  readonly signedHeaders: string;
  readonly scope: string;
  readonly signature: string;
}

/** Every intermediate of the signature (tests and debugging compare them with AWS's examples). */
export function sigV4Parts(request: SigV4Request, headers: { readonly [name: string]: string }, options: SigV4Options): SigV4Parts {
  const date = amzDate(options.now);
  const canonicalHeaders = Object.entries(headers)
    .map(([name, value]) => [name.toLowerCase(), value.trim().replace(/\s+/g, ' ')] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = canonicalHeaders.map(([name]) => name).join(';');
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalUri(request.url.pathname, options.doubleEncodePath ?? true),
    canonicalQuery(request.url.searchParams),
    canonicalHeaders.map(([name, value]) => `${name}:${value}\n`).join(''),
    signedHeaders,
    headers['x-amz-content-sha256'] ?? sha256Hex(request.body),
  ].join('\n');
  const scope = `${date.slice(0, 8)}/${options.region}/${options.service}/aws4_request`;
  const stringToSign = [SIGV4_ALGORITHM, date, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${options.credentials.secretAccessKey}`, date.slice(0, 8)), options.region), options.service),
    'aws4_request',
  );
  const signature = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
  return { canonicalRequest, stringToSign, signedHeaders, scope, signature };
}

/**
 * The headers to add to the request: `authorization`, `x-amz-date`,
 * `x-amz-content-sha256` and, for temporary credentials, `x-amz-security-token`. Signs
 * `host` (from the URL, as undici sends it) and every header in `request.headers`.
 */
export function signSigV4(request: SigV4Request, options: SigV4Options): Record<string, string> {
  const added: Record<string, string> = {
    'x-amz-date': amzDate(options.now),
    'x-amz-content-sha256': sha256Hex(request.body),
  };
  if (options.credentials.sessionToken) added['x-amz-security-token'] = options.credentials.sessionToken;
  const signed: Record<string, string> = { host: request.url.host };
  for (const [name, value] of Object.entries(request.headers)) signed[name.toLowerCase()] = value;
  Object.assign(signed, added);
  const parts = sigV4Parts(request, signed, options);
  added['authorization'] =
    `${SIGV4_ALGORITHM} Credential=${options.credentials.accessKeyId}/${parts.scope}, SignedHeaders=${parts.signedHeaders}, Signature=${parts.signature}`;
  return added;
}
