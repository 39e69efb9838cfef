/**
 * The Gatehouse SDK: a typed client for the control plane's GraphQL API, with a document
 * and result types for every query, mutation and subscription (generated from
 * `sdk/operations/*.graphql` by `npm run codegen`).
 */
export { GatehouseClient, type GatehouseClientOptions, type RequestOptions } from './client.js';
export {
  GatehouseAuthError,
  GatehouseError,
  GatehouseMutationError,
  GatehouseNetworkError,
  type GatehouseClientErrorCode,
  type GatehouseErrorOptions,
  type MutationFailure,
  type MutationFailureTypename,
} from './errors.js';
export { isMutationFailure, unwrap, type MutationSuccess, type PayloadFieldOf } from './unwrap.js';
export * from './generated/graphql.js';
