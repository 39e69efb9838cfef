import { SnapshotSecretError, openSnapshotSecret, type EncryptedSecret, type SnapshotAssignment } from '../../schema/snapshot/index.js';
import { UpstreamError } from './upstream-error.js';

/**
 * Opens one snapshot secret with the snapshot key its `keyId` names. A key that was not
 * delivered, or a secret that fails authentication, fails this assignment only.
 */
export function openSecret(
  assignment: SnapshotAssignment,
  secret: EncryptedSecret,
  secretKeys: ReadonlyMap<string, Uint8Array>,
  what: string,
): string {
  const key = secretKeys.get(secret.keyId);
  if (!key) {
    throw new UpstreamError(
      'UPSTREAM_CREDENTIAL',
      assignment.serverName,
      `the ${what} of server "${assignment.serverName}" is sealed with snapshot key ${secret.keyId}, which this data plane was not given`,
    );
  }
  try {
    return openSnapshotSecret(key, secret);
  } catch (error) {
    if (!(error instanceof SnapshotSecretError)) throw error;
    throw new UpstreamError('UPSTREAM_CREDENTIAL', assignment.serverName, `the ${what} of server "${assignment.serverName}" cannot be opened (${error.code})`);
  }
}

/**
 * The headers to attach to every request to this assignment's upstream (shared
 * scheme). Personal credentials and OAuth token brokering are refused until they exist.
 */
export function sharedUpstreamHeaders(
  assignment: SnapshotAssignment,
  secretKeys: ReadonlyMap<string, Uint8Array>,
): Record<string, string> {
  const auth = assignment.upstreamAuth;
  switch (auth.kind) {
    case 'none':
      return {};
    case 'headers': {
      const headers: Record<string, string> = {};
      for (const header of auth.headers) {
        headers[header.name] = openSecret(assignment, header.value, secretKeys, `header ${header.name}`);
      }
      return headers;
    }
    case 'oauth':
      throw new UpstreamError(
        'UPSTREAM_UNSUPPORTED',
        assignment.serverName,
        `server "${assignment.serverName}" authenticates with OAuth, which this data plane does not broker yet`,
      );
    case 'personal':
      throw new UpstreamError(
        'UPSTREAM_UNSUPPORTED',
        assignment.serverName,
        `server "${assignment.serverName}" uses each user's own credential, which this data plane does not broker yet`,
      );
  }
}

/** Decrypts a managed server's `secretEnv` into plain variables for the child's environment. */
export function managedSecretEnv(
  assignment: SnapshotAssignment,
  secretEnv: { readonly [name: string]: EncryptedSecret },
  secretKeys: ReadonlyMap<string, Uint8Array>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, secret] of Object.entries(secretEnv)) {
    env[name] = openSecret(assignment, secret, secretKeys, `environment variable ${name}`);
  }
  return env;
}
