import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { AuditPolicyAction } from '../../schema/audit/types.js';
import type { SnapshotRule } from '../../schema/snapshot/index.js';
import { RpcError } from './json-rpc.js';
import type { CallAuditHook, RoutedTarget, RulesHook } from './router.js';
import type { Admission } from '../policy/admit.js';
import type { CompiledGateway, CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import { createRuleEngineClients, snapshotSecretOpener, type RuleEngineClient, type RuleEngineClientOptions } from '../../schema/rules/engines/index.js';
import { compileRuleSet, evaluateLeg, messageOf, type CompiledRuleSet, type LegCall, type LegOutcome, type RuleEngineCaller, type WalkLimits } from '../../schema/rules/engine/index.js';

/** JSON-RPC error code of a call a content rule ended, beside the other policy codes (-32050…). */
export const RULE_BLOCKED_RPC_CODE = -32070;

/** `error.data.code` of a rule's block, and of a rule that could not decide and fails closed. */
export type RuleBlockCode = 'RULE_BLOCKED' | 'RULE_FAILED_CLOSED';

export interface RulesRuntimeOptions {
  /** Options of the custom rule engine clients (retries, DNS, byte cap). */
  readonly engineClients?: RuleEngineClientOptions;
  /** Depth and size limits of the JSON walk. */
  readonly limits?: WalkLimits;
}

/** What one call brings to the rules besides its routed target. */
export interface RulesCallContext {
  /** Where policy actions go (the call's audit hook); absent: not reported. */
  readonly audit?: Pick<CallAuditHook, 'policy'>;
  /** The call's cancellation, passed on to rule engines. */
  readonly signal?: AbortSignal;
  /** The MCP client's request headers, for engines' `forwardHeaders`. */
  readonly headers?: { readonly [name: string]: string | readonly string[] | undefined };
}

interface SnapshotRuntime {
  readonly hashSalt: string | Error | undefined;
  readonly engines: Map<string, RuleEngineClient>;
  readonly byGateway: WeakMap<CompiledGateway, CompiledRuleSet | null>;
}

/**
 * The data plane's content-rule stage (pipeline stages 6 and 9). Compiles each gateway's
 * rules once per snapshot, lazily on its first call and cached on the compiled snapshot
 * and gateway (WeakMaps: a replaced snapshot's rule sets go with it). Engine clients are
 * built once per snapshot and closed when a newer snapshot of the workspace replaces it.
 */
export class RulesRuntime {
  readonly #options: RulesRuntimeOptions;
  readonly #snapshots = new WeakMap<CompiledSnapshot, SnapshotRuntime>();
  /** The latest snapshot seen per workspace, whose engine clients are open. */
  readonly #latest = new Map<string, { compiled: CompiledSnapshot; runtime: SnapshotRuntime }>();

  constructor(options: RulesRuntimeOptions = {}) {
    this.#options = options;
  }

  /** The gateway's compiled rules, or undefined when it has none. */
  ruleSet(compiled: CompiledSnapshot, gateway: CompiledGateway): CompiledRuleSet | undefined {
    const rules = compiled.snapshot.rules;
    if (rules.length === 0) return undefined;
    const runtime = this.#runtime(compiled);
    let set = runtime.byGateway.get(gateway);
    if (set === undefined) {
      const own = rules.filter((rule) => rule.gatewayId === gateway.gateway.id);
      set =
        own.length === 0
          ? null
          : compileRuleSet(own, {
              hashSalt: runtime.hashSalt,
              engines: runtime.engines as ReadonlyMap<string, RuleEngineCaller>,
              engineNames: new Map(compiled.snapshot.ruleEngines.map((engine) => [engine.id, engine.name])),
            });
      runtime.byGateway.set(gateway, set);
    }
    return set ?? undefined;
  }

  /** The rules hook of one call, or undefined when its gateway has no rules (the router then skips stages 6 and 9). */
  hook(admission: Admission, context: RulesCallContext = {}): RulesHook | undefined {
    const set = this.ruleSet(admission.compiled, admission.gateway);
    if (set === undefined) return undefined;
    const limits = this.#options.limits;
    const report = context.audit ? (action: AuditPolicyAction) => context.audit!.policy(action) : () => undefined;
    /** One leg of the call to `target`; `method` differs for what the upstream relays during it. */
    const legCall = (target: RoutedTarget, leg: 'request' | 'response', method = target.method): LegCall => {
      const { exposed } = target;
      const assignment = exposed.entry.assignment;
      const grant = admission.principal.grant;
      return {
        leg,
        method,
        assignmentId: assignment.id,
        featureNames: exposedNames(target),
        envelope: {
          workspace: { id: admission.compiled.workspaceId },
          gateway: { id: admission.gateway.gateway.id, slug: admission.gateway.gateway.slug },
          server: { id: assignment.serverId, name: assignment.serverName },
          feature: { type: exposed.featureType, name: target.upstreamName },
          caller: { userId: grant.userId, connectionId: grant.connectionId, hostId: grant.token.hostId },
        },
        ...(context.signal ? { signal: context.signal } : {}),
        ...(context.headers ? { callerHeaders: context.headers } : {}),
        report,
        ...(limits ? { limits } : {}),
      };
    };
    /** The target of the call (the router evaluates its request leg first): the scope of what the upstream relays during it. */
    let routed: RoutedTarget | undefined;
    /** The URL-mode elicitations a -32042 error lists, each read as a `relayedRequests` elicitation/create. */
    const urlElicitations = async (error: RpcError): Promise<RpcError> => {
      const data = error.data;
      if (routed === undefined || typeof data !== 'object' || data === null || !Array.isArray((data as { elicitations?: unknown }).elicitations)) return error;
      const asked = (data as { elicitations: unknown[] }).elicitations;
      const elicitations: unknown[] = [];
      for (const item of asked) {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          elicitations.push(item);
          continue;
        }
        const outcome = await evaluateLeg(set, legCall(routed, 'response', 'elicitation/create'), item as Record<string, unknown>);
        if (outcome.blocked) return blockError(outcome, 'response');
        elicitations.push(outcome.message);
      }
      return elicitations.every((item, i) => item === asked[i]) ? error : new RpcError(error.code, error.message, { ...data, elicitations });
    };
    return {
      async request(target, params) {
        routed = target;
        const outcome = await evaluateLeg(set, legCall(target, 'request'), params);
        if (outcome.blocked) throw blockError(outcome, 'request');
        return outcome.message;
      },
      async relayedRequest(method, params) {
        if (routed === undefined) return params;
        const outcome = await evaluateLeg(set, legCall(routed, 'response', method), params);
        if (outcome.blocked) throw blockError(outcome, 'response');
        return outcome.message;
      },
      async relayedAnswer(method, result) {
        if (routed === undefined) return result;
        const outcome = await evaluateLeg(set, legCall(routed, 'request', method), result as Record<string, unknown>);
        if (outcome.blocked) throw blockError(outcome, 'request');
        return outcome.message as typeof result;
      },
      async response(target, result) {
        const outcome = await evaluateLeg(set, legCall(target, 'response'), result as Record<string, unknown>);
        if (!outcome.blocked) return outcome.message as typeof result;
        // Tool results have an error form the model reads; prompts, resources and completions do not.
        if (target.method === 'tools/call') return blockedToolResult(outcome.rule, outcome.failedClosed ? outcome.message : undefined) as typeof result;
        throw blockError(outcome, 'response');
      },
      async upstreamError(target, error) {
        const asSent = { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) };
        const outcome = await evaluateLeg(set, { ...legCall(target, 'response'), upstreamError: true }, asSent);
        if (outcome.blocked) return blockError(outcome, 'response');
        const read = outcome.message === asSent ? error : new RpcError(error.code, String(outcome.message.message), outcome.message.data);
        return read.code === ErrorCode.UrlElicitationRequired ? urlElicitations(read) : read;
      },
    };
  }

  #runtime(compiled: CompiledSnapshot): SnapshotRuntime {
    let runtime = this.#snapshots.get(compiled);
    if (runtime !== undefined) return runtime;
    const { snapshot, secretKeys } = compiled;
    const open = snapshotSecretOpener(secretKeys);
    const usesHash = snapshot.rules.some((rule) => rule.action.kind === 'hash');
    let hashSalt: string | Error | undefined;
    if (usesHash) {
      try {
        const salt = snapshot.workspace.ruleHashSalt;
        hashSalt = salt === undefined ? new Error('the snapshot carries no rule salt') : open(salt);
      } catch (error) {
        hashSalt = new Error(`the workspace rule salt ${messageOf(error)}`);
      }
    }
    const engines = createRuleEngineClients(snapshot.ruleEngines ?? [], open, this.#options.engineClients);
    runtime = { hashSalt, engines, byGateway: new WeakMap() };
    this.#snapshots.set(compiled, runtime);
    const previous = this.#latest.get(compiled.workspaceId);
    if (previous === undefined || previous.compiled.version <= compiled.version) {
      this.#latest.set(compiled.workspaceId, { compiled, runtime });
      // Calls still running on the old snapshot finish: close() waits for in-flight requests.
      if (previous !== undefined && previous.compiled !== compiled) closeEngines(previous.runtime);
    }
    return runtime;
  }

  /** Closes every open engine client (data plane shutdown). */
  async close(): Promise<void> {
    const all = [...this.#latest.values()];
    this.#latest.clear();
    await Promise.all(all.map(({ runtime }) => closeEngines(runtime)));
  }
}

function closeEngines(runtime: SnapshotRuntime): Promise<void> {
  return Promise.all([...runtime.engines.values()].map((client) => client.close().catch(() => undefined))).then(() => undefined);
}

/** The exposed names a call answers to: the feature's, and for a template read the URI the client asked for. */
function exposedNames(target: RoutedTarget): readonly string[] {
  const { feature, featureType } = target.exposed;
  if (featureType !== 'resourceTemplates') return [feature.name];
  const prefix = feature.name.slice(0, feature.name.length - feature.upstreamName.length);
  return [feature.name, prefix + target.upstreamName];
}

function blockError(outcome: LegOutcome & { blocked: true }, leg: 'request' | 'response'): RpcError {
  const code: RuleBlockCode = outcome.failedClosed ? 'RULE_FAILED_CLOSED' : 'RULE_BLOCKED';
  return new RpcError(RULE_BLOCKED_RPC_CODE, outcome.message, { code, ruleId: outcome.rule.id, ruleName: outcome.rule.name, leg });
}

/** What a client gets in place of a tool result a rule blocked: an error result naming the rule. */
export function blockedToolResult(rule: SnapshotRule, failure?: string): { content: { type: 'text'; text: string }[]; isError: true } {
  const text = failure === undefined ? `Blocked by rule "${rule.name}"` : failure.charAt(0).toUpperCase() + failure.slice(1);
  return { content: [{ type: 'text', text }], isError: true };
}
