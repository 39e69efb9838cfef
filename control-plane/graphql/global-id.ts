import { ValidationError } from '../errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Opaque global IDs: base64url of `Typename:uuid`. Clients must treat them as strings. */
export function encodeGlobalId(typename: string, id: string | number | bigint): string {
  return Buffer.from(`${typename}:${id}`, 'utf8').toString('base64url');
}

export function decodeGlobalId(globalId: string, field = 'id'): { typename: string; id: string } {
  const raw = Buffer.from(globalId, 'base64url').toString('utf8');
  const sep = raw.indexOf(':');
  const typename = raw.slice(0, sep);
  const id = raw.slice(sep + 1);
  if (sep <= 0 || !/^[A-Z][A-Za-z]*$/.test(typename) || !(UUID.test(id) || /^\d+$/.test(id))) {
    throw new ValidationError(field, `${field}: "${globalId.slice(0, 80)}" is not a valid ID`);
  }
  return { typename, id };
}

/** Decodes an ID that must name a `typename`, returning the database id. */
export function decodeIdOf(typename: string, globalId: string, field: string): string {
  const decoded = decodeGlobalId(globalId, field);
  if (decoded.typename !== typename) {
    throw new ValidationError(field, `${field}: expected a ${typename} ID, got a ${decoded.typename} ID`);
  }
  return decoded.id;
}

/** Decodes a list of IDs of one type; the field of a bad one is `field.<index>`. */
export function decodeIds(typename: string, ids: readonly (string | number)[], field: string): string[] {
  return ids.map((id, i) => decodeIdOf(typename, String(id), `${field}.${i}`));
}

/** GraphQL passes omitted optional input fields as null; services treat absent and null alike. */
export function stripNulls<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));
}
