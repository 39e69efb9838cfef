import type { GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './error-types.js';
import '../workspaces/workspace.graphql.js';
import '../access/access.graphql.js';
import '../people/user.graphql.js';
import '../api-keys/api-key.graphql.js';
import '../servers/server.graphql.js';
import '../servers/threats/threat.graphql.js';
import '../identities/identity.graphql.js';
import '../gateways/gateway.graphql.js';
import '../rules/rule.graphql.js';
import '../hosts/host.graphql.js';
import '../data-planes/data-plane.graphql.js';
import '../audit/audit-log.graphql.js';
import '../audit/audit-report.graphql.js';
import '../audit/audit-export.graphql.js';
import '../audit/otlp-exporter.graphql.js';
import '../alerts/alert.graphql.js';
import '../access-requests/access-request.graphql.js';

let schema: GraphQLSchema | undefined;

/** The control-plane schema, built once per process. */
export function getSchema(): GraphQLSchema {
  schema ??= builder.toSchema({ sortSchema: true });
  return schema;
}
