import { GraphQLError, Kind, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../graphql/context.js';

/** The only root fields a data-plane token may select. */
export const DATA_PLANE_ROOT_FIELDS: ReadonlySet<string> = new Set(['snapshots', 'acknowledgeSnapshot', 'rejectSnapshot', '__typename']);

/**
 * A data-plane token is not an admin credential: it may run only the snapshot operations.
 * Capabilities already keep it out of every gated field; this closes the ungated ones
 * (`viewer`, `node`) too, by refusing any other root field before execution.
 */
export function useDataPlaneOperations(): Plugin<Context> {
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const error = check(args.contextValue as Context, args.document, args.operationName);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe: ({ args, setResultAndStopExecution }) => {
      const error = check(args.contextValue as Context, args.document, args.operationName);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}

function check(ctx: Context | undefined, document: DocumentNode, operationName: string | null | undefined): GraphQLError | null {
  if (!ctx?.viewer?.dataPlaneId) return null;
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation) return null; // graphql-js reports it
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || !DATA_PLANE_ROOT_FIELDS.has(selection.name.value)) {
      const what = selection.kind === Kind.FIELD ? `field ${selection.name.value}` : 'a fragment';
      return new GraphQLError(
        `a data-plane token may only subscribe to snapshots and acknowledge or reject them, not select ${what}`,
        { extensions: { code: 'FORBIDDEN', http: { status: 403 } } },
      );
    }
  }
  return null;
}
