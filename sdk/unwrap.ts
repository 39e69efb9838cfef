import { GatehouseMutationError, type MutationFailure, type MutationFailureTypename } from './errors.js';

const FAILURE_TYPENAMES: ReadonlySet<string> = new Set<MutationFailureTypename>([
  'ConflictError',
  'ForbiddenError',
  'NotFoundError',
  'RoleInUseError',
  'ValidationError',
]);

/** The fields of a mutation result whose value is a payload union (every generated mutation's). */
export type PayloadFieldOf<TResult> = {
  [K in keyof TResult]: TResult[K] extends { readonly __typename: string } ? K : never;
}[keyof TResult] &
  string;

/** The success member of a mutation payload union, e.g. `{ __typename: 'CreateRoleSuccess', role }`. */
export type MutationSuccess<TPayload> = Exclude<TPayload, { readonly __typename: MutationFailureTypename }>;

/** True when a payload union member is one of the error types. */
export function isMutationFailure<TPayload extends { readonly __typename: string }>(
  payload: TPayload,
): payload is Extract<TPayload, MutationFailure> {
  return FAILURE_TYPENAMES.has(payload.__typename);
}

/**
 * Returns the success member of a mutation's payload union, or throws a
 * {@link GatehouseMutationError} carrying the error member.
 *
 * @example
 * const { role } = unwrap(await client.request(CreateRoleDocument, { input }), 'createRole');
 */
export function unwrap<TResult, K extends PayloadFieldOf<TResult>>(result: TResult, field: K): MutationSuccess<TResult[K]> {
  const payload = result[field] as { readonly __typename: string } | null | undefined;
  if (payload === null || typeof payload !== 'object' || typeof payload.__typename !== 'string') {
    throw new TypeError(`unwrap: the result has no payload union at "${field}" (select __typename in the mutation)`);
  }
  if (isMutationFailure(payload)) throw new GatehouseMutationError(field, payload as MutationFailure);
  return payload as MutationSuccess<TResult[K]>;
}
