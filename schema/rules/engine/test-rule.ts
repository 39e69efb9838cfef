import type { SnapshotRule } from '../../snapshot/index.js';
import { rewriteSpans, spanRewriter } from './actions.js';
import { compileFinder } from './finders.js';

export interface RuleTestMatch {
  readonly start: number;
  readonly end: number;
  /** Entity type, `REGEX` or `PROMPT_INJECTION`. */
  readonly type: string;
  readonly text: string;
}

export interface RuleTestResult {
  /** What the rule found in the sample (for a detector: the spans of its signals), in text order. */
  readonly matches: readonly RuleTestMatch[];
  /** The sample as the rule would send it on (unchanged for block and alert_only). */
  readonly output: string;
  /** The rule's action is block and it matched: the call would be refused. */
  readonly blocked: boolean;
}

/**
 * Runs one rule over a sample text exactly as the data plane would over one string value,
 * without saving or sending anything (the control plane's `testRule`). Regex, PII and
 * detector rules only; a rule the data plane could not compile throws the reason.
 */
export function testRuleOnText(rule: SnapshotRule, sample: string, options: { readonly hashSalt: string }): RuleTestResult {
  const detection = rule.detection;
  if (detection.kind === 'engine') {
    throw new Error(`rule "${rule.name}" uses a custom rule engine; testRule runs regex, PII and detector rules only (use the engine's test connection instead)`);
  }
  const finder = compileFinder(detection);
  const rewrite = spanRewriter(rule.action, options.hashSalt);
  const found = finder.find([{ key: '', value: sample }]);
  const spans = [...(found.matches[0] ?? [])].sort((a, b) => a.start - b.start || a.end - b.end);
  const matches = spans.map((m) => ({ start: m.start, end: m.end, type: m.type, text: sample.slice(m.start, m.end) }));
  if (spans.length === 0) return { matches, output: sample, blocked: false };
  if (rule.action.kind === 'block') return { matches, output: sample, blocked: true };
  if (rewrite === undefined) return { matches, output: sample, blocked: false };
  const output = finder.wholeValue ? rewrite(sample, spans[0]!.type) : rewriteSpans(sample, spans, rewrite);
  return { matches, output, blocked: false };
}
