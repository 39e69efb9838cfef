import { z } from 'zod';
import { DEFAULT_INJECTION_THRESHOLD } from '../../schema/rules/detectors/index.js';
import { DEFAULT_MIN_CONFIDENCE, ENTITY_TYPES, isEntityType } from '../../schema/rules/pii/index.js';
import { checkPattern } from '../../schema/rules/regex.js';
import {
  RULE_HOOKS,
  RULE_PARTS,
  type RuleAction,
  type RuleDetection,
  type RuleHook,
  type RulePart,
} from '../../schema/snapshot/index.js';
import { displayName } from '../shared/input.js';

/**
 * The rule input as services receive it (GraphQL ids already decoded, nulls dropped) and
 * its zod schemas. What they output is in the snapshot's own shapes (`RuleDetection`,
 * `RuleAction`, …), so what is stored is exactly what compiles.
 */

/** Which leg scans each part: a rule must run on the hook of every part it names. */
export const PART_HOOK: { readonly [P in RulePart]: RuleHook } = {
  toolArguments: 'request',
  promptArguments: 'request',
  resourceUris: 'request',
  toolResults: 'response',
  resourceContents: 'response',
  promptMessages: 'response',
  relayedRequests: 'response',
  relayedAnswers: 'request',
};

/** Most patterns one regex rule may OR together. */
export const MAX_PATTERNS = 50;
const MAX_ALLOW_LIST = 1000;
const MAX_SCOPE_FEATURES = 500;
/** Longest `replace` text; it is written into every match. */
const MAX_REPLACEMENT = 1000;

const unitInterval = (what: string) => z.number().min(0, `${what} must be between 0 and 1`).max(1, `${what} must be between 0 and 1`);

function uniqueList<T extends z.ZodType>(item: T, what: string) {
  return z
    .array(item)
    .min(1, `at least one ${what} is needed`)
    .refine((list) => new Set(list).size === list.length, `lists a ${what} twice`);
}

const patterns = z
  .array(z.string())
  .min(1, 'at least one pattern is needed')
  .max(MAX_PATTERNS, `at most ${MAX_PATTERNS} patterns per rule`)
  .superRefine((list, ctx) => {
    list.forEach((pattern, i) => {
      const reason = checkPattern(pattern);
      if (reason !== undefined) ctx.addIssue({ code: 'custom', path: [i], message: `pattern ${JSON.stringify(pattern.slice(0, 200))} is refused: ${reason}` });
    });
  });

const detectionInput = z
  .strictObject({
    regex: z.strictObject({ patterns, caseInsensitive: z.boolean().default(true) }).optional(),
    pii: z
      .strictObject({
        entityTypes: uniqueList(z.string(), 'entity type').superRefine((list, ctx) => {
          list.forEach((type, i) => {
            if (!isEntityType(type)) {
              ctx.addIssue({ code: 'custom', path: [i], message: `unknown PII entity type "${type.slice(0, 60)}"; known types: ${ENTITY_TYPES.join(', ')}` });
            }
          });
        }),
        minConfidence: unitInterval('minConfidence').default(DEFAULT_MIN_CONFIDENCE),
        allowList: z.array(z.string().min(1).max(1000)).max(MAX_ALLOW_LIST, `at most ${MAX_ALLOW_LIST} allow-listed values`).default([]),
      })
      .optional(),
    engine: z.strictObject({ engineId: z.string().min(1) }).optional(),
    detector: z
      .strictObject({ detector: z.literal('prompt_injection'), threshold: unitInterval('threshold').default(DEFAULT_INJECTION_THRESHOLD) })
      .optional(),
  })
  .superRefine((d, ctx) => {
    const given = (['regex', 'pii', 'engine', 'detector'] as const).filter((k) => d[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `give exactly one of regex, pii, engine and detector (got ${given.length === 0 ? 'none' : given.join(' and ')})` });
    }
  })
  .transform((d): RuleDetection => {
    if (d.regex) return { kind: 'regex', patterns: d.regex.patterns, caseInsensitive: d.regex.caseInsensitive };
    if (d.pii) return { kind: 'pii', entityTypes: d.pii.entityTypes, minConfidence: d.pii.minConfidence, allowList: d.pii.allowList };
    if (d.engine) return { kind: 'engine', engineId: d.engine.engineId };
    return { kind: 'detector', detector: 'prompt_injection', threshold: d.detector!.threshold };
  });

const actionInput = z
  .strictObject({
    kind: z.enum(['block', 'redact', 'replace', 'mask', 'hash', 'alert_only']),
    text: z.string().max(MAX_REPLACEMENT, `at most ${MAX_REPLACEMENT} characters`).optional(),
    keepLast: z.int('keepLast must be a whole number').min(0, 'keepLast must be 0 or more').max(64, 'keepLast must be at most 64').optional(),
  })
  .superRefine((a, ctx) => {
    if (a.kind === 'replace' && a.text === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'a REPLACE action needs the text to write' });
    if (a.kind !== 'replace' && a.text !== undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'text applies to REPLACE only' });
    if (a.kind !== 'mask' && a.keepLast !== undefined) ctx.addIssue({ code: 'custom', path: ['keepLast'], message: 'keepLast applies to MASK only' });
  })
  .transform((a): RuleAction => {
    switch (a.kind) {
      case 'replace':
        return { kind: 'replace', text: a.text! };
      case 'mask':
        return { kind: 'mask', keepLast: a.keepLast ?? 4 };
      default:
        return { kind: a.kind };
    }
  });

const scopeInput = z.strictObject({
  assignmentIds: z.array(z.string().min(1)).max(500).default([]),
  features: z.array(z.string().trim().min(1, 'a feature name must not be empty').max(500)).max(MAX_SCOPE_FEATURES).default([]),
  parts: uniqueList(z.enum(RULE_PARTS), 'part'),
});

const ruleDefinitionFields = {
  name: displayName(),
  enabled: z.boolean().default(true),
  hooks: uniqueList(z.enum(RULE_HOOKS), 'hook'),
  scope: scopeInput,
  detection: detectionInput,
  action: actionInput,
  failureMode: z.enum(['open', 'closed']).default('closed'),
  raiseAlert: z.boolean().default(false),
};

/** Cross-field checks of a rule definition. */
function checkDefinition(
  rule: { hooks: RuleHook[]; scope: { parts: RulePart[] }; detection: RuleDetection; action: RuleAction },
  ctx: z.RefinementCtx,
): void {
  rule.scope.parts.forEach((part, i) => {
    const hook = PART_HOOK[part];
    if (!rule.hooks.includes(hook)) {
      ctx.addIssue({ code: 'custom', path: ['scope', 'parts', i], message: `${part} is scanned on the ${hook} hook, which this rule does not run on; add it to hooks` });
    }
  });
  if (rule.detection.kind === 'engine' && rule.action.kind !== 'block' && rule.action.kind !== 'alert_only') {
    ctx.addIssue({
      code: 'custom',
      path: ['action', 'kind'],
      message: "an engine rule applies its engine's verdict (block or modify): choose BLOCK to enforce it or ALERT_ONLY to only record it",
    });
  }
}

/** A whole rule definition: what an update is merged into and parsed with. */
export const ruleDefinitionInput = z.strictObject(ruleDefinitionFields).superRefine(checkDefinition);
export type RuleDefinition = z.output<typeof ruleDefinitionInput>;

/** `createRule`'s input: a definition, its gateway and optionally its place (0-based; default last). */
export const createRuleInput = z
  .strictObject({ ...ruleDefinitionFields, gatewayId: z.string().min(1), position: z.int().min(0).optional() })
  .superRefine(checkDefinition);

/** What `testRule` takes: a detection and an action; the rest defaults. */
export const testRuleInput = z.strictObject({
  name: displayName().default('test'),
  detection: detectionInput,
  action: actionInput,
});

/** The fields an update may change; omitted fields keep their value. */
export const updateRuleInput = z.strictObject({
  name: z.unknown().optional(),
  enabled: z.unknown().optional(),
  hooks: z.unknown().optional(),
  scope: z.unknown().optional(),
  detection: z.unknown().optional(),
  action: z.unknown().optional(),
  failureMode: z.unknown().optional(),
  raiseAlert: z.unknown().optional(),
});

/** A stored detection as the input shape, so an update can replace the rest and keep it. */
export function detectionToInput(detection: RuleDetection): Record<string, unknown> {
  switch (detection.kind) {
    case 'regex':
      return { regex: { patterns: [...detection.patterns], caseInsensitive: detection.caseInsensitive } };
    case 'pii':
      return { pii: { entityTypes: [...detection.entityTypes], minConfidence: detection.minConfidence, allowList: [...detection.allowList] } };
    case 'engine':
      return { engine: { engineId: detection.engineId } };
    case 'detector':
      return { detector: { detector: detection.detector, threshold: detection.threshold } };
  }
}

export function actionToInput(action: RuleAction): Record<string, unknown> {
  switch (action.kind) {
    case 'replace':
      return { kind: 'replace', text: action.text };
    case 'mask':
      return { kind: 'mask', keepLast: action.keepLast };
    default:
      return { kind: action.kind };
  }
}
