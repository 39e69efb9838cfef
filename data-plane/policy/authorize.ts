import type { CompiledGateway, CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import type { Principal } from './authenticate.js';
import { pass, refuse, type StageResult } from './refusal.js';

/**
 * Stage 4: the principal may use this gateway. A token reaches exactly its connection's
 * gateway; a connection that acts for a user also needs that user active and in an
 * enabled team provisioned to the gateway (`gatewaysByUser`, built once per snapshot).
 * A machine connection (no user) is authorized by its connection alone.
 */
export function authorize(
  compiled: CompiledSnapshot,
  gateway: CompiledGateway,
  principal: Principal,
): StageResult<void> {
  const { grant } = principal;
  const slug = gateway.gateway.slug;
  if (grant.connection.gatewayId !== gateway.gateway.id) {
    const reachable = grant.gateway ? `gateway "${grant.gateway.slug}"` : 'another gateway';
    return refuse('FORBIDDEN', 403, `this access token belongs to a connection for ${reachable}, not gateway "${slug}"`);
  }
  if (grant.userId === null) return pass(undefined);
  if (!grant.user || grant.user.state !== 'active') {
    const state = grant.user?.state ?? 'unknown';
    return refuse('FORBIDDEN', 403, `user ${grant.userId} is ${state}, not active; only active users may call`);
  }
  if (!compiled.gatewaysByUser.get(grant.userId)?.has(gateway.gateway.id)) {
    return refuse(
      'FORBIDDEN',
      403,
      `user ${grant.userId} is not in an enabled team provisioned to gateway "${slug}"; an admin can provision the gateway to one of their teams`,
    );
  }
  return pass(undefined);
}
