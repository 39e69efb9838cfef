/**
 * Expected failures of the domain. Services throw them; GraphQL mutations return them as
 * typed members of their result unions; queries surface them as GraphQL errors carrying
 * `extensions.code`. Anything else is unexpected and is masked before it leaves.
 */
export type DomainErrorCode = 'NOT_FOUND' | 'FORBIDDEN' | 'VALIDATION' | 'CONFLICT' | 'UNAUTHENTICATED';

export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode;
}

export class NotFoundError extends DomainError {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND' as const;
  constructor(
    readonly resourceType: string,
    readonly resourceId: string,
  ) {
    super(`${resourceType} ${resourceId} was not found`);
  }
}

export class ForbiddenError extends DomainError {
  override readonly name = 'ForbiddenError';
  readonly code = 'FORBIDDEN' as const;
  constructor(
    /** The capability the caller lacks. */
    readonly capability: string,
    message = `this action needs the ${capability} capability, which your role does not have`,
  ) {
    super(message);
  }
}

export class ValidationError extends DomainError {
  override readonly name = 'ValidationError';
  readonly code = 'VALIDATION' as const;
  constructor(
    /** The input field at fault, as a dotted path (`input.email`). */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export class ConflictError extends DomainError {
  override readonly name = 'ConflictError';
  readonly code = 'CONFLICT' as const;
  constructor(
    message: string,
    /** The field whose value conflicts, if one does. */
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

export class UnauthenticatedError extends DomainError {
  override readonly name = 'UnauthenticatedError';
  readonly code = 'UNAUTHENTICATED' as const;
}

/** Postgres unique violation (23505), seen through pg or PGlite. */
export function isUniqueViolation(err: unknown): err is { code: string; constraint?: string } {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

/** Postgres foreign-key violation (23503). */
export function isForeignKeyViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23503';
}
