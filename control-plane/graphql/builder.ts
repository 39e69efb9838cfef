import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin, { type AuthFailure } from '@pothos/plugin-scope-auth';
import { ForbiddenError } from '../errors.js';
import type { Context } from './context.js';
import { decodeGlobalId, encodeGlobalId } from './global-id.js';

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The capability named by the first failed `capability` scope, for the error message. */
function missingCapability(failure: AuthFailure): string | undefined {
  switch (failure.kind) {
    case 'AuthScope':
      return failure.scope === 'capability' ? String(failure.parameter) : undefined;
    case 'AnyAuthScopes':
    case 'AllAuthScopes':
      for (const f of failure.failures) {
        const found = missingCapability(f);
        if (found) return found;
      }
      return undefined;
    default:
      return undefined;
  }
}

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { capability: string };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSONObject: { Input: Record<string, unknown>; Output: Record<string, unknown> };
  };
}>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({ capability: (capability: string) => ctx.viewer.capabilities.has(capability) }),
    unauthorizedError: (_parent, _ctx, _info, result) =>
      new ForbiddenError(missingCapability(result.failure) ?? 'unknown', result.message),
  },
  errors: {
    defaultTypes: [],
    defaultResultOptions: { name: ({ fieldName }) => `${pascal(fieldName)}Success` },
    defaultUnionOptions: { name: ({ fieldName }) => `${pascal(fieldName)}Payload` },
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
    encodeGlobalID: encodeGlobalId,
    decodeGlobalID: (globalId) => decodeGlobalId(globalId),
    nodesQueryOptions: false,
  },
});

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp in UTC.',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value).toISOString()),
  parseValue: (value) => {
    const d = new Date(String(value));
    if (typeof value !== 'string' || Number.isNaN(d.getTime())) throw new TypeError('DateTime must be an ISO-8601 string');
    return d;
  },
});

builder.scalarType('JSONObject', {
  description: 'A JSON object.',
  serialize: (value) => value,
  parseValue: (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('JSONObject must be an object');
    return value as Record<string, unknown>;
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
