import type { AuditPolicyAction } from '../../audit/types.js';
import type { JsonValue, RuleHook, SnapshotRule } from '../../snapshot/index.js';
import type { EngineEvaluation } from '../engines/verdict.js';
import { utf8View } from '../regex.js';
import { rewriteSpans, type Match } from './actions.js';
import { DEFAULT_WALK_LIMITS, PartTooComplexError, errorPartOf, partOf, type PartAccess, type Slot, type WalkLimits } from './parts.js';
import { SlotTexts } from './finders.js';
import { messageOf, type CompiledRule, type CompiledRuleSet, type RuleEngineCaller } from './rule-set.js';

/** One leg of one routed call, as the evaluator sees it. */
export interface LegCall {
  readonly leg: RuleHook;
  readonly method: string;
  readonly assignmentId: string;
  /** The exposed names the call answers to (a resource read through a template: the template and the URI). */
  readonly featureNames: readonly string[];
  /** The envelope fields of engine calls, minus hook and payload. */
  readonly envelope: Omit<EngineEvaluation, 'hook' | 'payload'>;
  readonly signal?: AbortSignal;
  /** The MCP client's request headers (engines copy those named in their `forwardHeaders`). */
  readonly callerHeaders?: { readonly [name: string]: string | readonly string[] | undefined };
  /** Where every rule that acted (or failed) is reported. */
  readonly report: (action: AuditPolicyAction) => void;
  readonly limits?: WalkLimits;
  /** The message is the upstream's JSON-RPC error answering `method` (response leg), not its result. */
  readonly upstreamError?: boolean;
}

export type LegOutcome =
  | { readonly blocked: false; readonly message: Record<string, unknown> }
  | {
      readonly blocked: true;
      readonly rule: SnapshotRule;
      /** For the caller: names the rule, never its patterns or the matched text. */
      readonly message: string;
      /** The rule could not decide and fails closed (as opposed to a match or an engine's block). */
      readonly failedClosed: boolean;
    };

/** Audit `action` of a fail-open failure: the rule could not decide and let the call through. */
export const FAIL_OPEN_ACTION = 'fail_open';
/** Audit `action` of an engine's accepted `modify`. */
export const MODIFY_ACTION = 'modify';

/**
 * Runs a gateway's rules on one leg. Rules apply in order and each sees the previous
 * ones' output; the first block (or fail-closed failure) ends the evaluation. Text rules
 * read the part's string values (see `parts.ts`); engine rules get the part as JSON and
 * may replace it. Whatever acts is reported, with entity types but never matched text.
 */
export async function evaluateLeg(set: CompiledRuleSet, call: LegCall, message: Record<string, unknown>): Promise<LegOutcome> {
  const part = call.upstreamError ? errorPartOf(call.method, call.envelope.feature.type) : partOf(call.method, call.leg, call.envelope.feature.type);
  if (part === undefined) return { blocked: false, message };
  const legRules = set.forLeg(call.leg, part.part);
  const rules = legRules.scoped ? legRules.rules.filter((c) => inScope(c, call)) : legRules.rules;
  if (rules.length === 0) return { blocked: false, message };
  const regexSet = legRules.regexSet;

  const limits = call.limits ?? DEFAULT_WALK_LIMITS;
  let current = message;
  let slots: Slot[] | undefined;
  /** The joined forms of `slots` as they are now, shared by the rules; replaced after any rewrite. */
  let texts: SlotTexts | undefined;
  /** Set indexes of the regex rules that can match the current values (`regexSet`); recomputed after any rewrite. */
  let setHits: number[] | undefined;
  let unreadable: Error | undefined;
  /** `slots` hold values that `current` does not have yet. */
  let dirty = false;

  for (const compiled of rules) {
    const { rule, check } = compiled;
    let failure: { publicReason: string; detail: string } | undefined;
    try {
      if (check.kind === 'broken') {
        failure = { publicReason: 'the rule cannot be evaluated (its definition could not be compiled)', detail: `rule cannot run: ${check.reason}` };
      } else if (check.kind === 'engine') {
        if (dirty) current = part.rebuild(current, slots!.map((s) => s.value), limits);
        dirty = false;
        const outcome = await runEngine(compiled, check.engineName, check.client, part, current, call);
        if (outcome.kind === 'failure') failure = outcome;
        else if (outcome.kind === 'block') return outcome.result;
        else if (outcome.kind === 'modified') {
          current = outcome.message;
          slots = undefined;
          texts = undefined;
          setHits = undefined;
          unreadable = undefined;
        }
      } else {
        if (slots === undefined && unreadable === undefined) {
          try {
            slots = part.extract(current, limits);
            texts = new SlotTexts(slots);
          } catch (error) {
            if (!(error instanceof PartTooComplexError)) throw error;
            unreadable = error;
          }
        }
        if (unreadable !== undefined || slots === undefined || texts === undefined) {
          failure = { publicReason: `the message is too large or too deeply nested to inspect`, detail: `rule cannot inspect the ${part.part}: ${unreadable?.message ?? 'unreadable'}` };
        } else {
          // The leg's regex set says in one pass which regex rules can match at all; the others are skipped.
          const setIndex = regexSet?.indexOf.get(compiled);
          if (setIndex !== undefined) setHits ??= regexSet!.set.match(utf8View(setText(slots, texts, regexSet!.keyedTextSound)));
          if (setIndex === undefined || setHits!.includes(setIndex)) {
            const result = check.finder.find(slots, texts);
            const types = typesOf(result.matches);
            if (types.length > 0) {
              if (rule.action.kind === 'block') {
                call.report(textAction(rule, types, result.detail, 'block'));
                return { blocked: true, rule, message: `blocked by rule "${rule.name}"`, failedClosed: false };
              }
              if (rule.action.kind !== 'alert_only' && compiled.rewrite !== undefined) {
                const rewrite = compiled.rewrite;
                let rewritten = false;
                for (let i = 0; i < slots.length; i++) {
                  const found = result.matches[i];
                  if (found === undefined || found.length === 0) continue;
                  const slot = slots[i]!;
                  const value = check.finder.wholeValue ? rewrite(slot.value, found[0]!.type) : rewriteSpans(slot.value, found, rewrite);
                  if (value !== slot.value) {
                    slots[i] = { key: slot.key, value };
                    rewritten = true;
                  }
                }
                if (rewritten) {
                  dirty = true;
                  texts = new SlotTexts(slots);
                  setHits = undefined;
                }
              }
              call.report(textAction(rule, types, result.detail, rule.action.kind));
            }
          }
        }
      }
    } catch (error) {
      failure = { publicReason: 'the rule failed while inspecting the message', detail: `rule failed: ${messageOf(error)}` };
    }
    if (failure !== undefined) {
      const closed = rule.failureMode === 'closed';
      call.report({
        ruleId: rule.id,
        ruleName: rule.name,
        action: closed ? 'block' : FAIL_OPEN_ACTION,
        findings: [],
        detail: `${failure.detail}; failure mode ${rule.failureMode}`,
        alert: rule.raiseAlert,
      });
      if (closed) return { blocked: true, rule, message: `blocked by rule "${rule.name}": ${failure.publicReason}, and the rule fails closed`, failedClosed: true };
    }
  }
  // Nothing rewritten: the message goes on as it came, untouched.
  if (dirty) current = part.rebuild(current, slots!.map((s) => s.value), limits);
  return { blocked: false, message: current };
}

/**
 * What the leg's regex set reads: a lone value as it is; several values joined, with
 * their keys when a PII rule already joined them so and the set allows it
 * (`LegRegexSet#keyedTextSound`), bare otherwise (after a rewrite, the bare join of the
 * new values costs less than the keyed one: fewer pieces to flatten).
 */
function setText(slots: readonly Slot[], texts: SlotTexts, keyedTextSound: boolean): string {
  if (slots.length === 0) return '';
  if (slots.length === 1) return slots[0]!.value;
  return keyedTextSound && texts.hasKeyed ? texts.keyed.text : texts.bare.text;
}

/** The audit entry of a text rule that acted. */
function textAction(rule: SnapshotRule, findings: string[], detail: string | undefined, action: string): AuditPolicyAction {
  return detail
    ? { ruleId: rule.id, ruleName: rule.name, findings, alert: rule.raiseAlert, detail, action }
    : { ruleId: rule.id, ruleName: rule.name, findings, alert: rule.raiseAlert, action };
}

function inScope(compiled: CompiledRule, call: LegCall): boolean {
  if (compiled.assignmentIds !== undefined && !compiled.assignmentIds.has(call.assignmentId)) return false;
  if (compiled.features !== undefined && !call.featureNames.some((name) => compiled.features!.has(name))) return false;
  return true;
}

/** The entity types found, in first-found order (a few at most: a list is cheaper than a `Set`). */
function typesOf(matches: ReadonlyArray<readonly Match[] | undefined>): string[] {
  const types: string[] = [];
  for (const found of matches) {
    if (found === undefined) continue;
    for (const m of found) if (!types.includes(m.type)) types.push(m.type);
  }
  return types;
}

type EngineOutcome =
  | { readonly kind: 'pass' }
  | { readonly kind: 'modified'; readonly message: Record<string, unknown> }
  | { readonly kind: 'block'; readonly result: LegOutcome & { blocked: true } }
  | { readonly kind: 'failure'; readonly publicReason: string; readonly detail: string };

/**
 * One engine call. `block` and `modify` are applied unless the rule is `alert_only`
 * (then they are only reported); `error` verdicts, and a `modify` whose payload does
 * not fit the part's MCP shape, are failures for the rule's failure mode.
 */
async function runEngine(
  compiled: CompiledRule,
  engineName: string,
  client: RuleEngineCaller,
  part: PartAccess,
  message: Record<string, unknown>,
  call: LegCall,
): Promise<EngineOutcome> {
  const { rule } = compiled;
  const verdict = await client.evaluate({ ...call.envelope, hook: call.leg, payload: part.payload(message) as JsonValue }, {
    ...(call.signal ? { signal: call.signal } : {}),
    ...(call.callerHeaders ? { callerHeaders: call.callerHeaders } : {}),
  });
  const alertOnly = rule.action.kind === 'alert_only';
  const base = { ruleId: rule.id, ruleName: rule.name, findings: [] as string[], alert: rule.raiseAlert };
  switch (verdict.verdict) {
    case 'pass':
      return { kind: 'pass' };
    case 'block':
      call.report({ ...base, action: alertOnly ? 'alert_only' : 'block', detail: `rule engine "${engineName}" blocked: ${verdict.reason}` });
      if (alertOnly) return { kind: 'pass' };
      return { kind: 'block', result: { blocked: true, rule, message: `blocked by rule "${rule.name}": ${verdict.reason}`, failedClosed: false } };
    case 'modify': {
      const wrong = part.checkPayload(verdict.payload);
      if (wrong !== undefined) {
        return { kind: 'failure', publicReason: `its rule engine answered an invalid modification`, detail: `rule engine "${engineName}" answered modify with an invalid ${part.part} payload: ${wrong}` };
      }
      call.report({ ...base, action: alertOnly ? 'alert_only' : MODIFY_ACTION, detail: `rule engine "${engineName}" modified the ${part.part}` });
      if (alertOnly) return { kind: 'pass' };
      return { kind: 'modified', message: part.replacePayload(message, verdict.payload) };
    }
    case 'error':
      return {
        kind: 'failure',
        publicReason: `its rule engine "${engineName}" could not decide (${verdict.code})`,
        detail: `rule engine "${engineName}" failed (${verdict.code}): ${verdict.reason}`,
      };
  }
}
