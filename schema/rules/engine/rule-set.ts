import RE2 from 're2';
import { RULE_PARTS, type RuleHook, type RulePart, type SnapshotRule } from '../../snapshot/index.js';
import type { EngineEvaluation, EngineVerdict } from '../engines/verdict.js';

/** Options of one engine call: the call's cancellation and the MCP client's request headers. */
export interface EngineCallOptions {
  readonly signal?: AbortSignal;
  readonly callerHeaders?: { readonly [name: string]: string | readonly string[] | undefined };
}
import { spanRewriter, type SpanRewriter } from './actions.js';
import { compileFinder, type TextFinder } from './finders.js';

/**
 * What the evaluator needs of a custom rule engine (`schema/rules/engines`): one
 * call per evaluation, which never throws (network failures, timeouts and bad answers
 * come back as `error` verdicts).
 */
export interface RuleEngineCaller {
  evaluate(evaluation: EngineEvaluation, options?: EngineCallOptions): Promise<EngineVerdict>;
}

/** How a compiled rule decides. `broken` rules could not be compiled and apply their failure mode on every call. */
export type RuleCheck =
  | { readonly kind: 'text'; readonly finder: TextFinder }
  | { readonly kind: 'engine'; readonly engineName: string; readonly client: RuleEngineCaller }
  | { readonly kind: 'broken'; readonly reason: string };

export interface CompiledRule {
  readonly rule: SnapshotRule;
  readonly parts: ReadonlySet<RulePart>;
  /** Undefined: every assignment. */
  readonly assignmentIds: ReadonlySet<string> | undefined;
  /** Undefined: every feature. Exposed (namespaced) names. */
  readonly features: ReadonlySet<string> | undefined;
  readonly check: RuleCheck;
  /** How a transforming action rewrites a match; undefined for block and alert_only. */
  readonly rewrite: SpanRewriter | undefined;
}

/** One gateway's rules, compiled once per snapshot and frozen. */
export interface CompiledRuleSet {
  readonly rules: readonly CompiledRule[];
  /** The rules that run on a leg for a part, in evaluation order (scope still to be checked per call). */
  forLeg(leg: RuleHook, part: RulePart): LegRules;
}

export interface LegRules {
  readonly rules: readonly CompiledRule[];
  /** Some rule of `rules` is limited to assignments or features: scope must be checked per call (otherwise every rule applies). */
  readonly scoped: boolean;
  /**
   * One RE2 set of the prefilter sources of this leg's regex rules (when there are two or
   * more): `match` over the joined values names the rules that can match anywhere, in
   * one pass, so the others are skipped without scanning.
   */
  readonly regexSet?: LegRegexSet;
}

export interface LegRegexSet {
  readonly set: RE2Set;
  readonly rules: readonly CompiledRule[];
  /** Index of each rule of `rules` in the set. */
  readonly indexOf: ReadonlyMap<CompiledRule, number>;
  /**
   * No source may hold a `^` (see `anchorsAtLineStart`): then the set may as well run over
   * the values joined *with their keys* (`key: value` lines, the PII finder's text, see
   * `SlotTexts`) as over the bare values, so a leg scanned by both joins its values once.
   * Sound because a value's neighbours in that text are `: ` or `\n` before it and `\n`
   * after it, which `\b`, `\B` and multiline `$` read as they read the bare join's `\n`;
   * a key can only add matches, which the set may (each rule then checks its own values).
   */
  readonly keyedTextSound: boolean;
}

/** The part of `RE2.Set` the evaluator uses. */
export interface RE2Set {
  match(text: string | Buffer): number[];
}

export interface RuleSetOptions {
  /**
   * The workspace's rule salt, opened once per snapshot; an Error when it could not be
   * opened (then `hash` rules are broken and apply their failure mode).
   */
  readonly hashSalt: string | Error | undefined;
  /** Engine callers by engine id (an Error when the engine could not be set up); built once per snapshot. */
  readonly engines: ReadonlyMap<string, RuleEngineCaller | Error>;
  /** Engine display names by id, for messages. */
  readonly engineNames?: ReadonlyMap<string, string>;
}

/**
 * Compiles the rules of one gateway (in snapshot order, which is evaluation order):
 * regexes with RE2 once, PII scanners restricted to their entity types, detectors with
 * their thresholds, scope sets, and the action's rewriter. A rule that cannot compile
 * (a pattern RE2 refuses, an unknown entity type, a missing engine, an unopenable salt)
 * does not fail the snapshot: it becomes `broken` and applies its failure mode, so a
 * fail-closed rule never lets traffic through because of a bad definition.
 */
export function compileRuleSet(rules: readonly SnapshotRule[], options: RuleSetOptions): CompiledRuleSet {
  const compiled = rules.map((rule) => compileRule(rule, options));
  const none: LegRules = Object.freeze({ rules: Object.freeze([]), scoped: false });
  // Looked up on every call: a table by leg then part, not a map keyed by a built string.
  const byLeg = { request: {} as Record<RulePart, LegRules>, response: {} as Record<RulePart, LegRules> };
  const sets = new Map<string, LegRegexSet | undefined>();
  for (const leg of ['request', 'response'] as const) {
    for (const part of RULE_PARTS) {
      const list = compiled.filter((c) => c.rule.hooks.includes(leg) && c.parts.has(part));
      const regexRules = list.filter((c) => c.check.kind === 'text' && c.check.finder.prefilterSource !== undefined);
      let regexSet: LegRegexSet | undefined;
      if (regexRules.length >= 2) {
        // Legs with the same regex rules share one set.
        const key = regexRules.map((c) => c.rule.id).join('\u0000');
        if (!sets.has(key)) sets.set(key, buildRegexSet(regexRules));
        regexSet = sets.get(key);
      }
      const scoped = list.some((c) => c.assignmentIds !== undefined || c.features !== undefined);
      byLeg[leg][part] = list.length === 0 ? none : Object.freeze({ rules: Object.freeze(list), scoped, ...(regexSet ? { regexSet } : {}) });
    }
  }
  Object.freeze(byLeg.request);
  Object.freeze(byLeg.response);
  return Object.freeze({
    rules: Object.freeze(compiled),
    forLeg: (leg: RuleHook, part: RulePart) => byLeg[leg]?.[part] ?? none,
  });
}

function buildRegexSet(rules: readonly CompiledRule[]): LegRegexSet | undefined {
  try {
    const sources = rules.map((c) => (c.check as { finder: TextFinder }).finder.prefilterSource!);
    const indexOf = new Map(rules.map((c, i) => [c, i] as const));
    return Object.freeze({ set: new RE2.Set(sources, 'u'), rules, indexOf, keyedTextSound: !sources.some(anchorsAtLineStart) });
  } catch {
    // Each rule still runs its own scan; the set only saves time.
    return undefined;
  }
}

/**
 * Whether a pattern source may hold a `^` assertion: any `^` that is not escaped and not
 * the first unit of a character class. Conservative (a literal `^` inside a class counts),
 * which only costs the keyed-text shortcut.
 */
export function anchorsAtLineStart(source: string): boolean {
  let classOpened = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
      classOpened = false;
      continue;
    }
    if (c === '^' && !classOpened) return true;
    classOpened = c === '[';
  }
  return false;
}

function compileRule(rule: SnapshotRule, options: RuleSetOptions): CompiledRule {
  const base = {
    rule,
    parts: new Set(rule.scope.parts),
    assignmentIds: rule.scope.assignmentIds.length === 0 ? undefined : new Set(rule.scope.assignmentIds),
    features: rule.scope.features.length === 0 ? undefined : new Set(rule.scope.features),
  };
  let rewrite: SpanRewriter | undefined;
  try {
    rewrite = spanRewriter(rule.action, typeof options.hashSalt === 'string' ? options.hashSalt : undefined);
  } catch (error) {
    const why = options.hashSalt instanceof Error ? options.hashSalt.message : messageOf(error);
    return Object.freeze({ ...base, rewrite: undefined, check: { kind: 'broken' as const, reason: `its hash action cannot run: ${why}` } });
  }
  return Object.freeze({ ...base, rewrite, check: compileCheck(rule, options) });
}

function compileCheck(rule: SnapshotRule, options: RuleSetOptions): RuleCheck {
  const detection = rule.detection;
  if (detection.kind === 'engine') {
    const client = options.engines.get(detection.engineId);
    const engineName = options.engineNames?.get(detection.engineId) ?? detection.engineId;
    if (client === undefined) return { kind: 'broken', reason: `rule engine ${detection.engineId} is not in the snapshot` };
    if (client instanceof Error) return { kind: 'broken', reason: `rule engine "${engineName}" cannot be used: ${client.message}` };
    return { kind: 'engine', engineName, client };
  }
  try {
    return { kind: 'text', finder: compileFinder(detection) };
  } catch (error) {
    return { kind: 'broken', reason: `its ${detection.kind} detection cannot be compiled: ${messageOf(error)}` };
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
