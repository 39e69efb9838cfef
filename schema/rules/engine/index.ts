export { rewriteSpans, spanRewriter, type Match, type SpanRewriter } from './actions.js';
export { evaluateLeg, FAIL_OPEN_ACTION, MODIFY_ACTION, type LegCall, type LegOutcome } from './evaluate.js';
export { PROMPT_INJECTION, RuleCompileError, compileFinder, type FinderResult, type TextFinder } from './finders.js';
export { DEFAULT_WALK_LIMITS, PartTooComplexError, errorPartOf, partOf, type PartAccess, type Slot, type WalkLimits } from './parts.js';
export { compileRuleSet, messageOf, type CompiledRule, type CompiledRuleSet, type LegRules, type EngineCallOptions, type RuleCheck, type RuleEngineCaller, type RuleSetOptions } from './rule-set.js';
export { testRuleOnText, type RuleTestMatch, type RuleTestResult } from './test-rule.js';
