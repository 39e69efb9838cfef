import { handleStreamOrSingleExecutionResult } from '@envelop/core';
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DomainError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Context } from './context.js';

/** Extensions a client can switch on, per domain error. */
function extensionsOf(err: DomainError): Record<string, unknown> {
  const ext: Record<string, unknown> = { code: err.code };
  for (const key of ['capability', 'field', 'resourceType'] as const) {
    const value = (err as unknown as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) ext[key] = value;
  }
  return ext;
}

/**
 * Shapes every error leaving an execution: domain errors become GraphQL errors with a
 * stable `extensions.code`; GraphQL's own errors pass as they are; anything else is
 * logged with the request id and replaced by a masked error carrying that id.
 */
export function formatExecutionError(error: GraphQLError, requestId: string, logger: Logger): GraphQLError {
  const original = error.originalError;
  if (original instanceof DomainError) {
    return new GraphQLError(original.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: extensionsOf(original),
    });
  }
  // Errors without a path come from the request itself (variable coercion, validation): the
  // client's fault and already phrased for it.
  if (!original || original instanceof GraphQLError || error.path === undefined) return error;
  logger.error({ err: original, requestId, path: error.path }, 'unexpected error in GraphQL execution');
  return new GraphQLError(`Unexpected error. Request id: ${requestId}`, {
    nodes: error.nodes,
    path: error.path,
    extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
  });
}

export function useDomainErrors(logger: Logger): Plugin<Context> {
  const mapResult = (result: ExecutionResult, ctx: Context) =>
    result.errors ? { ...result, errors: result.errors.map((e) => formatExecutionError(e, ctx.requestId, ctx.logger ?? logger)) } : result;
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: (payload) =>
        handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
          if (result.errors?.length) setResult(mapResult(result, args.contextValue as Context));
        }),
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: (payload) =>
        handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
          if (result.errors?.length) setResult(mapResult(result, args.contextValue as Context));
        }),
      onSubscribeError: () => undefined,
    }),
  };
}
