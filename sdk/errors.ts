import type { GraphQLFormattedError } from 'graphql';
import type { ErrorFieldsFragment } from './generated/graphql.js';

/**
 * Stable codes of the failures the SDK itself detects. Errors the server reports carry the
 * server's `extensions.code` instead (`FORBIDDEN`, `QUERY_TOO_COSTLY`, `INTERNAL_SERVER_ERROR`, …).
 */
export type GatehouseClientErrorCode =
  /** The control plane refused the API key (HTTP 401, or graphql-ws close code 4403). */
  | 'UNAUTHENTICATED'
  /** The control plane could not be reached, or the connection broke, on every attempt. */
  | 'NETWORK_ERROR'
  /** No response within `timeoutMs`. */
  | 'TIMEOUT'
  /** A response that is not a GraphQL response (a proxy's error page, an empty body, …). */
  | 'HTTP_ERROR'
  /** A GraphQL error without `extensions.code`. */
  | 'GRAPHQL_ERROR'
  /** The subscription socket closed with an error. */
  | 'SUBSCRIPTION_CLOSED';

export interface GatehouseErrorOptions {
  readonly status?: number;
  readonly errors?: readonly GraphQLFormattedError[];
  readonly requestId?: string;
  readonly cause?: unknown;
}

/**
 * Every error the SDK throws. `code` is stable; switch on it (or on the subclass) rather
 * than on the message.
 */
export class GatehouseError extends Error {
  override readonly name: string = 'GatehouseError';
  /** The server's `extensions.code` of the first error, or a {@link GatehouseClientErrorCode}. */
  readonly code: string;
  /** HTTP status of the response, when there was one. */
  readonly status: number | undefined;
  /** The response's top-level GraphQL errors, as sent; empty when the failure had none. */
  readonly errors: readonly GraphQLFormattedError[];
  /**
   * Correlation id to quote to an operator: the server's `extensions.requestId` when it sent
   * one, otherwise the `x-request-id` this client sent (the server logs under it).
   */
  readonly requestId: string | undefined;

  constructor(code: string, message: string, options: GatehouseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.errors = options.errors ?? [];
    this.requestId = options.requestId;
  }
}

/** The API key is missing, unknown or revoked. Never retried. */
export class GatehouseAuthError extends GatehouseError {
  override readonly name = 'GatehouseAuthError';

  constructor(message: string, options: GatehouseErrorOptions = {}) {
    super('UNAUTHENTICATED', message, options);
  }
}

/** The request never got a response: connection refused or reset on every attempt, or a timeout. */
export class GatehouseNetworkError extends GatehouseError {
  override readonly name = 'GatehouseNetworkError';
  /** How many times the request was sent. */
  readonly attempts: number;

  constructor(code: 'NETWORK_ERROR' | 'TIMEOUT', message: string, attempts: number, options: GatehouseErrorOptions = {}) {
    super(code, message, options);
    this.attempts = attempts;
  }
}

/** An expected failure, returned as a member of a mutation's payload union. */
export type MutationFailure = ErrorFieldsFragment;

/** The `__typename`s of {@link MutationFailure}. */
export type MutationFailureTypename = MutationFailure['__typename'];

/**
 * A mutation returned one of its error union members instead of success data; thrown by
 * {@link unwrap}. The request itself succeeded, so `status` is undefined and `errors` empty.
 * `failure` is the member as sent, a discriminated union on `__typename`.
 */
export class GatehouseMutationError extends GatehouseError {
  override readonly name = 'GatehouseMutationError';
  readonly __typename: MutationFailureTypename;
  /** The mutation field that failed, e.g. `createTeam`. */
  readonly mutation: string;
  readonly failure: MutationFailure;
  /** ForbiddenError: the capability the caller lacks. */
  readonly capability: string | undefined;
  /** ValidationError: dotted path of the invalid input; ConflictError: the conflicting field, if any. */
  readonly field: string | null | undefined;
  /** NotFoundError: the type of the missing object. */
  readonly resourceType: string | undefined;
  /** NotFoundError: the global ID that was not found. */
  readonly id: string | undefined;
  /** RoleInUseError: users still holding the role. */
  readonly userCount: number | undefined;
  /** RoleInUseError: API keys still holding the role. */
  readonly apiKeyCount: number | undefined;

  constructor(mutation: string, failure: MutationFailure) {
    super(failure.code, `${mutation}: ${failure.message}`);
    this.mutation = mutation;
    this.failure = failure;
    this.__typename = failure.__typename;
    this.capability = 'capability' in failure ? failure.capability : undefined;
    this.field = 'field' in failure ? failure.field : undefined;
    this.resourceType = 'resourceType' in failure ? failure.resourceType : undefined;
    this.id = 'id' in failure ? failure.id : undefined;
    this.userCount = 'userCount' in failure ? failure.userCount : undefined;
    this.apiKeyCount = 'apiKeyCount' in failure ? failure.apiKeyCount : undefined;
  }
}
