import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface OperationLimits {
  /** Deepest selection set allowed (the operation's root fields are depth 1). */
  readonly maxDepth: number;
  /** Highest estimated cost: each field costs 1, multiplied by the page sizes above it. */
  readonly maxCost: number;
  /** Page size assumed for a connection without `first`/`last` (the server default). */
  readonly defaultPageSize?: number;
  /** Largest page a connection returns. */
  readonly maxPageSize?: number;
}

/**
 * A variable page size counts as the largest page the server returns, so the result does
 * not depend on variables and validation stays cacheable per document.
 */
function pageSize(args: readonly { name: { value: string }; value: { kind: string } }[], fallback: number, maxPage: number, isConnection: boolean): number {
  for (const arg of args) {
    if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
    const v = arg.value as { kind: string; value?: string; name?: { value: string } };
    if (v.kind === Kind.INT) return Math.min(maxPage, Math.max(1, Number(v.value)));
    if (v.kind === Kind.VARIABLE) return maxPage;
  }
  return isConnection ? fallback : 1;
}

/**
 * Rejects operations that are too deep or too costly before they execute, with an error
 * that gives the measured value and the limit. Fragments are followed; cycles are left to
 * graphql-js's own NoFragmentCycles rule.
 */
export function operationLimitsRule(limits: OperationLimits): ValidationRule {
  const fallback = limits.defaultPageSize ?? 20;
  const maxPage = limits.maxPageSize ?? 100;
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    }
    const measure = (set: SelectionSetNode, depth: number, multiplier: number, seen: Set<string>): { depth: number; cost: number } => {
      let maxDepth = depth;
      let cost = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          if (sel.name.value.startsWith('__')) continue;
          const isConnection = sel.selectionSet?.selections.some((s) => s.kind === Kind.FIELD && (s.name.value === 'edges' || s.name.value === 'pageInfo')) ?? false;
          const size = pageSize(sel.arguments ?? [], fallback, maxPage, isConnection);
          cost += multiplier;
          if (sel.selectionSet) {
            const inner = measure(sel.selectionSet, depth + 1, multiplier * size, seen);
            maxDepth = Math.max(maxDepth, inner.depth);
            cost += inner.cost;
          }
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          const inner = measure(sel.selectionSet, depth, multiplier, seen);
          maxDepth = Math.max(maxDepth, inner.depth);
          cost += inner.cost;
        } else {
          const name = sel.name.value;
          const fragment = fragments.get(name);
          if (!fragment || seen.has(name)) continue;
          const inner = measure(fragment.selectionSet, depth, multiplier, new Set(seen).add(name));
          maxDepth = Math.max(maxDepth, inner.depth);
          cost += inner.cost;
        }
      }
      return { depth: maxDepth, cost };
    };
    return {
      OperationDefinition(node) {
        const { depth, cost } = measure(node.selectionSet, 1, 1, new Set());
        if (depth > limits.maxDepth) {
          context.reportError(
            new GraphQLError(`operation is ${depth} levels deep; the limit is ${limits.maxDepth}`, {
              nodes: [node],
              extensions: { code: 'QUERY_TOO_DEEP', depth, limit: limits.maxDepth },
            }),
          );
        } else if (cost > limits.maxCost) {
          context.reportError(
            new GraphQLError(`operation has an estimated cost of ${cost}; the limit is ${limits.maxCost}. Request smaller pages.`, {
              nodes: [node],
              extensions: { code: 'QUERY_TOO_COSTLY', cost, limit: limits.maxCost },
            }),
          );
        }
      },
    };
  };
}

/** Yoga plugin applying {@link operationLimitsRule} to every operation, HTTP or WebSocket. */
export function useOperationLimits(limits: OperationLimits): Plugin {
  const rule = operationLimitsRule(limits);
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(rule);
    },
  };
}
