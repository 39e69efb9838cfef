import { z } from 'zod';
import { ValidationError } from '../errors.js';

/**
 * Parses GraphQL input with a zod schema at the edge. The first issue becomes a
 * {@link ValidationError} naming the field as a dotted path under `prefix`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = 'input'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = [prefix, ...issue.path.map(String)].join('.');
  throw new ValidationError(field, `${field}: ${issue.message}`);
}

/** A trimmed, non-empty display name of at most `max` characters. */
export const displayName = (max = 100) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

export const description = z.string().trim().max(1000, 'must be at most 1000 characters');

export const email = z
  .string()
  .trim()
  .max(254, 'must be at most 254 characters')
  .regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'must be an email address')
  .transform((s) => s.toLowerCase());
