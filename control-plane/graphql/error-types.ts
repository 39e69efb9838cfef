import { RoleInUseError } from '../access/role.service.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { builder } from './builder.js';
import { encodeGlobalId } from './global-id.js';

/** Every expected mutation failure implements this interface. */
export const ErrorInterface = builder.interfaceRef<Error & { code: string }>('Error').implement({
  description: 'An expected failure, returned as a member of a mutation payload union.',
  fields: (t) => ({
    message: t.exposeString('message'),
    code: t.exposeString('code', { description: 'Stable machine code: NOT_FOUND, FORBIDDEN, VALIDATION, CONFLICT.' }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  description: 'The referenced object does not exist in this workspace.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    resourceType: t.exposeString('resourceType'),
    id: t.id({ resolve: (e) => encodeGlobalId(e.resourceType, e.resourceId) }),
  }),
});

builder.objectType(ForbiddenError, {
  name: 'ForbiddenError',
  description: 'The caller lacks a capability the action needs.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    capability: t.exposeString('capability', { description: 'The missing capability.' }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  description: 'An input value is invalid.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ field: t.exposeString('field', { nullable: true, description: 'Dotted path of the invalid input field.' }) }),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  description: 'The action conflicts with the current state (a duplicate name, a wrong lifecycle state).',
  interfaces: [ErrorInterface],
  fields: (t) => ({ field: t.exposeString('field', { nullable: true }) }),
});

builder.objectType(RoleInUseError, {
  name: 'RoleInUseError',
  description: 'The role is still assigned and cannot be deleted.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    userCount: t.exposeInt('userCount'),
    apiKeyCount: t.exposeInt('apiKeyCount'),
  }),
});

/** The failures every mutation can return. */
export const COMMON_ERRORS = [NotFoundError, ForbiddenError, ValidationError, ConflictError] as const;
