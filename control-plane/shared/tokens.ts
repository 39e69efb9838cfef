import { createHash, randomBytes } from 'node:crypto';

/**
 * Secrets Gatehouse hands out: a recognisable prefix (so secret scanners and people can
 * tell what leaked) followed by 256 random bits. Only their SHA-256 is stored; with that
 * much entropy a fast hash is as safe as a slow one and keeps look-ups O(1).
 */
export const TOKEN_PREFIXES = {
  /** Admin API keys for the control plane's GraphQL API. */
  adminApiKey: 'gh_admin_',
  /** API access tokens a headless agent presents to a gateway; scoped to one connection. */
  accessToken: 'gh_at_',
  /** Tokens a data plane subscribes to the control plane with. */
  dataPlane: 'gh_dp_',
} as const;

export function generateToken(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** What a list shows of a token: its prefix and first characters, never enough to use. */
export function tokenDisplayPrefix(token: string): string {
  const prefix = Object.values(TOKEN_PREFIXES).find((p) => token.startsWith(p)) ?? '';
  return token.slice(0, prefix.length + 6);
}
