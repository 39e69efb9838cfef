import type { GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './error-types.js';
import '../workspaces/workspace.graphql.js';
import '../access/access.graphql.js';
import '../people/user.graphql.js';
import '../api-keys/api-key.graphql.js';
import '../servers/server.graphql.js';
import '../identities/identity.graphql.js';
import '../gateways/gateway.graphql.js';
import '../hosts/host.graphql.js';
import '../data-planes/data-plane.graphql.js';

let schema: GraphQLSchema | undefined;

/** The control-plane schema, built once per process. */
export function getSchema(): GraphQLSchema {
  schema ??= builder.toSchema({ sortSchema: true });
  return schema;
}
