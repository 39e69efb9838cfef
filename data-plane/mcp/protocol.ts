/** Protocol versions this gateway speaks to clients, newest first. */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;

export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];

/** Assumed when a client sends no `MCP-Protocol-Version` header (as the spec prescribes). */
export const DEFAULT_PROTOCOL_VERSION = '2025-03-26';

/** The version to answer `initialize` with: the client's if we speak it, else our latest. */
export function negotiateProtocolVersion(requested: unknown): string {
  return typeof requested === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(requested)
    ? requested
    : LATEST_PROTOCOL_VERSION;
}

export function isSupportedProtocolVersion(version: string): boolean {
  return (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(version);
}

/** Reported in `serverInfo.version`. */
export const GATEHOUSE_VERSION = '0.1.0';
