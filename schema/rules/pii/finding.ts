/** The entity types the built-in recognizers report; rules select from these. */
export const ENTITY_TYPES = [
  'EMAIL_ADDRESS',
  'PHONE_NUMBER',
  'US_SSN',
  'CREDIT_CARD',
  'IBAN_CODE',
  'IP_ADDRESS',
  'AWS_ACCESS_KEY',
  'AWS_SECRET_KEY',
  'GITHUB_TOKEN',
  'SLACK_TOKEN',
  'STRIPE_KEY',
  'JWT',
  'PRIVATE_KEY',
  'HIGH_ENTROPY_SECRET',
] as const;

export type EntityType = (typeof ENTITY_TYPES)[number];

/** One recognized entity: a half-open UTF-16 span `[start, end)` of the scanned string. */
export interface Finding {
  readonly entityType: EntityType;
  readonly start: number;
  readonly end: number;
  /** 0..1: the recognizer's base confidence, raised by context words before the span. */
  readonly confidence: number;
  /** The matched text; present unless the scanner was built with `includeText: false`. */
  readonly text?: string;
}

export function isEntityType(value: string): value is EntityType {
  return (ENTITY_TYPES as readonly string[]).includes(value);
}
