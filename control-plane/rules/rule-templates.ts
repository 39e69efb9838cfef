import { RULE_PARTS, type RuleAction, type RuleHook, type RulePart } from '../../schema/snapshot/index.js';

/**
 * Ready-made rules. A template is a whole rule definition in the service's input shape
 * (what `ruleDefinitionInput` parses), so creating from one runs the same validation as
 * any other rule; GraphQL also shows it as a ready `CreateRuleInput`.
 */
export interface RuleTemplate {
  /** Stable key, used by `createRuleFromTemplate`. */
  readonly key: string;
  readonly name: string;
  readonly description: string;
  readonly definition: RuleTemplateDefinition;
}

export interface RuleTemplateDefinition {
  readonly name: string;
  readonly hooks: readonly RuleHook[];
  readonly scope: { readonly assignmentIds: readonly string[]; readonly features: readonly string[]; readonly parts: readonly RulePart[] };
  readonly detection:
    | { readonly regex: { readonly patterns: readonly string[]; readonly caseInsensitive: boolean } }
    | { readonly pii: { readonly entityTypes: readonly string[]; readonly minConfidence: number; readonly allowList: readonly string[] } }
    | { readonly detector: { readonly detector: 'prompt_injection'; readonly threshold: number } };
  readonly action: RuleAction;
  readonly failureMode: 'open' | 'closed';
  readonly raiseAlert: boolean;
}

const BOTH: readonly RuleHook[] = ['request', 'response'];
const EVERY_PART: readonly RulePart[] = RULE_PARTS;
const everywhere = { assignmentIds: [], features: [], parts: EVERY_PART };

/**
 * Instruction-override phrases seen in direct and indirect (tool-result) injections, in
 * RE2 syntax. Deliberately narrow (each needs an override verb and an instruction noun)
 * to keep false positives on ordinary text low; the prompt-injection detector scores more.
 */
const INJECTION_PHRASES = [
  String.raw`\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|every\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding|original|system)\s+(?:instructions?|prompts?|messages?|rules|guidelines|directions)`,
  String.raw`\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|hidden\s+(?:prompt|instructions)|initial\s+instructions)`,
  String.raw`\byou\s+are\s+now\s+(?:in\s+)?(?:developer\s+mode|DAN\b|jailbroken|unrestricted)`,
  String.raw`\bdo\s+not\s+(?:tell|inform|alert|mention\s+(?:this|it)\s+to)\s+the\s+user`,
  String.raw`<\s*/?\s*(?:important|system|instructions?)\s*>`,
  String.raw`\bnew\s+instructions\s*:`,
];

export const RULE_TEMPLATES: readonly RuleTemplate[] = Object.freeze([
  {
    key: 'us-ssn',
    name: 'US Social Security numbers',
    description: 'Redacts US SSNs (SSA-valid area, group and serial; unformatted numbers need a context word) in both directions.',
    definition: {
      name: 'Redact US SSNs',
      hooks: BOTH,
      scope: everywhere,
      detection: { pii: { entityTypes: ['US_SSN'], minConfidence: 0.5, allowList: [] } },
      action: { kind: 'redact' },
      failureMode: 'closed',
      raiseAlert: false,
    },
  },
  {
    key: 'credit-card',
    name: 'Credit card numbers',
    description: 'Masks card numbers that pass the Luhn check and a known issuer prefix, keeping the last four digits.',
    definition: {
      name: 'Mask credit card numbers',
      hooks: BOTH,
      scope: everywhere,
      detection: { pii: { entityTypes: ['CREDIT_CARD'], minConfidence: 0.5, allowList: [] } },
      action: { kind: 'mask', keepLast: 4 },
      failureMode: 'closed',
      raiseAlert: false,
    },
  },
  {
    key: 'phone-number',
    name: 'Phone numbers',
    description: 'Masks phone numbers (E.164 and common national formats), keeping the last two digits.',
    definition: {
      name: 'Mask phone numbers',
      hooks: BOTH,
      scope: everywhere,
      detection: { pii: { entityTypes: ['PHONE_NUMBER'], minConfidence: 0.5, allowList: [] } },
      action: { kind: 'mask', keepLast: 2 },
      failureMode: 'closed',
      raiseAlert: false,
    },
  },
  {
    key: 'api-keys-and-secrets',
    name: 'API keys and secrets',
    description:
      'Redacts AWS keys, GitHub, Slack and Stripe tokens, JWTs, private key blocks and high-entropy strings next to words like "key" or "token", and raises an alert.',
    definition: {
      name: 'Redact API keys and secrets',
      hooks: BOTH,
      scope: everywhere,
      detection: {
        pii: {
          entityTypes: ['AWS_ACCESS_KEY', 'AWS_SECRET_KEY', 'GITHUB_TOKEN', 'SLACK_TOKEN', 'STRIPE_KEY', 'JWT', 'PRIVATE_KEY', 'HIGH_ENTROPY_SECRET'],
          minConfidence: 0.5,
          allowList: [],
        },
      },
      action: { kind: 'redact' },
      failureMode: 'closed',
      raiseAlert: true,
    },
  },
  {
    key: 'prompt-injection-phrases',
    name: 'Prompt-injection phrases',
    description:
      'Blocks calls whose arguments or results contain instruction-override phrases ("ignore previous instructions", "reveal your system prompt", <IMPORTANT> tags), and raises an alert.',
    definition: {
      name: 'Block prompt-injection phrases',
      hooks: BOTH,
      scope: everywhere,
      detection: { regex: { patterns: INJECTION_PHRASES, caseInsensitive: true } },
      action: { kind: 'block' },
      failureMode: 'closed',
      raiseAlert: true,
    },
  },
  {
    key: 'prompt-injection-detector',
    name: 'Prompt injection (detector)',
    description:
      'Scores arguments and results with the built-in prompt-injection detector (override phrases, role markers, hidden Unicode, encoded blocks) and blocks above the threshold.',
    definition: {
      name: 'Block prompt injection',
      hooks: BOTH,
      scope: everywhere,
      detection: { detector: { detector: 'prompt_injection', threshold: 0.5 } },
      action: { kind: 'block' },
      failureMode: 'closed',
      raiseAlert: true,
    },
  },
]);

export function findRuleTemplate(key: string): RuleTemplate | undefined {
  return RULE_TEMPLATES.find((template) => template.key === key);
}
