import { createHash } from 'node:crypto';
import type { CompiledSnapshot, TokenGrant } from '../snapshot/compiled-snapshot.js';
import { pass, refuse, type Refusal, type StageResult } from './refusal.js';

/** Prefix of Gatehouse API access tokens; anything else is not ours to look up. */
export const ACCESS_TOKEN_PREFIX = 'gh_at_';

/** Who is calling, as authentication established it. */
export interface Principal {
  readonly kind: 'access-token';
  readonly grant: TokenGrant;
}

const REALM = 'gatehouse';

/**
 * Stage 2: authenticates the `Authorization: Bearer gh_at_…` header against the
 * snapshot's token hashes (SHA-256, one map look-up). Missing, malformed, unknown
 * (revoked tokens are absent from the snapshot) or expired tokens get 401 with a
 * `WWW-Authenticate: Bearer` challenge (RFC 6750). OAuth access tokens (JWTs verified
 * with keys from the snapshot) plug in here later, keyed off the token's shape.
 */
export function authenticate(
  compiled: CompiledSnapshot,
  authorization: string | undefined,
  now: number,
): StageResult<Principal> {
  if (authorization === undefined || authorization.trim() === '') {
    return unauthenticated('this gateway requires an access token: send "Authorization: Bearer gh_at_…"', undefined);
  }
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  if (!match) {
    return unauthenticated('the Authorization header must be "Bearer <access token>"', 'invalid_request');
  }
  const token = match[1]!;
  if (!token.startsWith(ACCESS_TOKEN_PREFIX)) {
    return unauthenticated('the bearer token is not a Gatehouse API access token (they start with gh_at_)', 'invalid_token');
  }
  const tokenHash = createHash('sha256').update(token).digest('hex');
  const grant = compiled.tokensByHash.get(tokenHash);
  if (!grant) {
    return unauthenticated('the access token is unknown or was revoked; ask an admin for a new one', 'invalid_token');
  }
  if (grant.expiresAtMs !== null && grant.expiresAtMs <= now) {
    return unauthenticated(`the access token expired at ${grant.token.expiresAt}; ask an admin for a new one`, 'invalid_token');
  }
  return pass({ kind: 'access-token', grant });
}

function unauthenticated(message: string, error: 'invalid_request' | 'invalid_token' | undefined): Refusal {
  // RFC 6750 §3.1: no error code when the request carried no credentials at all.
  const challenge =
    error === undefined
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="${error}", error_description="${message.replace(/["\\]/g, '')}"`;
  return refuse('UNAUTHENTICATED', 401, message, { headers: { 'www-authenticate': challenge } });
}
