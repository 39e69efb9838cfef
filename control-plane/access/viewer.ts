import { ForbiddenError } from '../errors.js';

/**
 * Who is calling, resolved once per request from its credential. Every service call takes
 * a viewer and reads and writes only inside `viewer.workspaceId`.
 */
export interface Viewer {
  readonly workspaceId: string;
  /** Stable label for logs and the change log: `api_key:<id>` or `system`. */
  readonly actor: string;
  readonly apiKeyId: string | null;
  readonly roleId: string;
  readonly capabilities: ReadonlySet<string>;
  /**
   * Set when the caller is a data plane (actor `data_plane:<id>`): it holds only the
   * internal `snapshots.receive` capability and may call only the snapshot operations.
   */
  readonly dataPlaneId?: string;
}

export function can(viewer: Viewer, capability: string): boolean {
  return viewer.capabilities.has(capability);
}

/** Throws {@link ForbiddenError} naming the capability when the viewer lacks it. */
export function requireCapability(viewer: Viewer, capability: string): void {
  if (!viewer.capabilities.has(capability)) throw new ForbiddenError(capability);
}

/**
 * Guards against privilege escalation: a viewer may hand out (to a key, a user or a role)
 * only capabilities it holds itself.
 */
export function requireCapabilitiesHeld(viewer: Viewer, capabilities: Iterable<string>): void {
  for (const capability of capabilities) {
    if (!viewer.capabilities.has(capability)) {
      throw new ForbiddenError(
        capability,
        `you cannot grant ${capability}, a capability your own role does not have`,
      );
    }
  }
}
