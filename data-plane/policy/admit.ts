import type { CompiledGateway, CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import { authenticate, type Principal } from './authenticate.js';
import { authorize } from './authorize.js';
import { enforceKillSwitches } from './kill-switches.js';
import { pass, refuse, type StageResult } from './refusal.js';

/** What every message to `/mcp/<slug>` must carry through the stages before routing. */
export interface AdmissionRequest {
  readonly compiled: CompiledSnapshot | undefined;
  readonly gatewaySlug: string;
  readonly authorization: string | undefined;
  /** Epoch milliseconds, from the injectable clock. */
  readonly now: number;
}

/** A call that passed authentication, kill switches and authorization. */
export interface Admission {
  readonly compiled: CompiledSnapshot;
  readonly gateway: CompiledGateway;
  readonly principal: Principal;
}

/**
 * Runs the connection-level stages in order: a snapshot must be held (fail closed),
 * authenticate, find the gateway, kill switches, authorize. The first refusal ends it.
 * Authentication runs before the gateway look-up so an anonymous caller cannot probe
 * which gateways exist.
 */
export function admitRequest(request: AdmissionRequest): StageResult<Admission> {
  const { compiled } = request;
  if (!compiled) {
    return refuse(
      'SNAPSHOT_UNAVAILABLE',
      503,
      'this data plane has not received a gateway snapshot from the control plane yet; every call is refused until it does',
      { headers: { 'retry-after': '5' } },
    );
  }
  const authenticated = authenticate(compiled, request.authorization, request.now);
  if (!authenticated.ok) return authenticated;
  const principal = authenticated.value;

  const gateway = compiled.gatewaysBySlug.get(request.gatewaySlug);
  if (!gateway) {
    return refuse('GATEWAY_NOT_FOUND', 404, `there is no gateway "${request.gatewaySlug}" in workspace "${compiled.snapshot.workspace.name}"`);
  }
  const switches = enforceKillSwitches(compiled, gateway, principal);
  if (!switches.ok) return switches;
  const authorized = authorize(compiled, gateway, principal);
  if (!authorized.ok) return authorized;
  return pass({ compiled, gateway, principal });
}
