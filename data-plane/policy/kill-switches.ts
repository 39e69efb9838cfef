import type { CompiledGateway, CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import type { Principal } from './authenticate.js';
import { pass, refuse, type StageResult } from './refusal.js';

/**
 * Stage 3: refuses the call when anything it touches is switched off, naming what: the
 * workspace, the gateway (disabled or archived), the caller's host, connection or user.
 * The snapshot's `enabled` flags already fold in the switches above them, so each level
 * is one flag; the order below reports the widest switch first. Assignment-level switches
 * apply per feature when the call is routed.
 */
export function enforceKillSwitches(
  compiled: CompiledSnapshot,
  gateway: CompiledGateway,
  principal: Principal,
): StageResult<void> {
  const { snapshot } = compiled;
  const { grant } = principal;
  const slug = gateway.gateway.slug;
  if (!snapshot.workspace.enabled) {
    return disabled(`workspace "${snapshot.workspace.name}" is switched off; every gateway in it refuses calls`, 'workspace');
  }
  if (gateway.gateway.archived) {
    return disabled(`gateway "${slug}" is archived; an admin can restore it`, 'gateway');
  }
  if (!gateway.gateway.enabled) {
    return disabled(`gateway "${slug}" is switched off by an admin`, 'gateway');
  }
  if (grant.host && !grant.host.enabled) {
    return disabled(`host "${grant.host.name}" is switched off by an admin`, 'host');
  }
  if (!grant.connection.enabled || !grant.token.enabled) {
    return disabled(`connection ${grant.connectionId} is switched off by an admin`, 'connection');
  }
  if (grant.user && !grant.user.enabled) {
    return disabled(`user ${grant.userId} is switched off by an admin`, 'user');
  }
  if (grant.user?.state === 'deactivated') {
    return disabled(`user ${grant.userId} is deactivated`, 'user');
  }
  return pass(undefined);
}

function disabled(message: string, level: string) {
  return refuse('DISABLED', 403, message, { detail: { level } });
}
