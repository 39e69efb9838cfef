import { createHash } from 'node:crypto';
import type { FeatureType, GatewaySnapshot } from './types.js';

/**
 * Canonical JSON: `JSON.stringify` output with every object's keys in ascending UTF-16
 * code-unit order (plain `Array.prototype.sort` order) at every depth, no whitespace,
 * array order kept, members whose value is `undefined` dropped. Two values equal as JSON
 * encode to the same string whatever order their keys were built or parsed in.
 *
 * Throws `TypeError` on anything JSON cannot carry exactly (undefined in an array,
 * non-finite numbers, functions, bigints, symbols, objects with `toJSON`), so a hash
 * never silently covers less than its input.
 */
export function canonicalJson(value: unknown): string {
  const chunks: string[] = [];
  encodeCanonical(value, (chunk) => chunks.push(chunk));
  return chunks.join('');
}

/** Lowercase hex SHA-256 of a string's UTF-8 bytes. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** `sha256Hex(canonicalJson(value))`, fed to the hash in pieces so no single huge string is built. */
export function sha256CanonicalJson(value: unknown): string {
  const hash = createHash('sha256');
  encodeCanonical(value, (chunk) => hash.update(chunk, 'utf8'));
  return hash.digest('hex');
}

/** The parts of a snapshot its content hash covers: all of it but version, hash and time. */
export type SnapshotContent = Omit<GatewaySnapshot, 'version' | 'contentHash' | 'generatedAt'>;

/**
 * The `contentHash` of a snapshot: SHA-256 of the canonical JSON of everything except
 * `version`, `contentHash` and `generatedAt`. Accepts a whole snapshot or its content.
 */
export function computeSnapshotContentHash(snapshot: SnapshotContent | GatewaySnapshot): string {
  const { version: _version, contentHash: _hash, generatedAt: _at, ...content } = snapshot as GatewaySnapshot;
  return sha256CanonicalJson(content);
}

/**
 * The fields of a feature definition that a pin covers, per feature type: identity,
 * human-facing text and schema, and for tools their `annotations` too: a tool that
 * turns from `readOnlyHint` into `destructiveHint` (or the reverse, to dodge a client's
 * confirmation) is a rug pull an admin must re-approve. Icons and `_meta` are not
 * covered, nor annotations of resources and templates (display hints only).
 */
export const PINNED_FIELDS: { readonly [T in FeatureType]: readonly string[] } = {
  tools: ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'],
  prompts: ['name', 'title', 'description', 'arguments'],
  resources: ['uri', 'name', 'title', 'description', 'mimeType'],
  resourceTemplates: ['uriTemplate', 'name', 'title', 'description', 'mimeType'],
};

/**
 * Hash of an MCP feature definition as an upstream lists it (a `Tool`, `Prompt`,
 * `Resource` or `ResourceTemplate`): `sha256Hex(canonicalJson(covered))` where
 * `covered` is `{ featureType, ...PINNED_FIELDS }` with absent fields as null. Discovery
 * stores it, pins approve it, and a data plane recomputes it on live definitions, all
 * with this one function.
 */
export function hashFeatureDefinition(featureType: FeatureType, definition: { readonly [key: string]: unknown }): string {
  const covered: { [key: string]: unknown } = { featureType };
  for (const field of PINNED_FIELDS[featureType]) covered[field] = definition[field] ?? null;
  return sha256Hex(canonicalJson(covered));
}

/**
 * Emits the canonical encoding in chunks: the outer two levels structurally, each value
 * below them (a gateway, the token map) as one `JSON.stringify` of a key-sorted view.
 * Leaning on `JSON.stringify` is what makes a 50 MB snapshot hash in a few hundred
 * milliseconds; a value with array-index keys ("0", "17"), which ECMAScript always
 * enumerates first, is encoded by hand instead.
 */
function encodeCanonical(value: unknown, emit: (chunk: string) => void): void {
  try {
    encodeLevel(value, 0, emit);
  } catch (err) {
    if (!(err instanceof NotJsonError)) throw err;
    throw new TypeError(`canonical JSON: $${err.segments.reverse().join('')} ${err.problem}`);
  }
}

const STRUCTURAL_DEPTH = 2;

function encodeLevel(value: unknown, depth: number, emit: (chunk: string) => void): void {
  if (depth >= STRUCTURAL_DEPTH || typeof value !== 'object' || value === null) {
    emit(encodeWhole(value));
    return;
  }
  if (Array.isArray(value)) {
    emit('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) emit(',');
      within(`[${i}]`, () => {
        if (value[i] === undefined) throw new NotJsonError('is undefined');
        encodeLevel(value[i], depth + 1, emit);
      });
    }
    emit(']');
    return;
  }
  assertPlain(value);
  const object = value as { [key: string]: unknown };
  const keys = Object.keys(object).sort();
  emit('{');
  let first = true;
  for (const key of keys) {
    const item = object[key];
    if (item === undefined) continue;
    emit(`${first ? '' : ','}${JSON.stringify(key)}:`);
    first = false;
    within(`.${key}`, () => encodeLevel(item, depth + 1, emit));
  }
  emit('}');
}

function encodeWhole(value: unknown): string {
  let prepared: unknown;
  try {
    prepared = withSortedKeys(value);
  } catch (err) {
    if (err !== HAS_INDEX_KEYS && err !== NOT_JSON) throw err;
    // The exact path, which also names where a non-JSON value sits.
    return encodeByHand(value);
  }
  return JSON.stringify(prepared);
}

/** Thrown inside the fast path when an object has a key JSON.stringify would reorder. */
const HAS_INDEX_KEYS = Symbol('has array-index keys');
/** Thrown inside the fast path on a value JSON cannot carry; the exact path reports it. */
const NOT_JSON = Symbol('not JSON');

class NotJsonError extends TypeError {
  readonly segments: string[] = [];
  constructor(readonly problem: string) {
    super(problem);
  }
}

function within<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof NotJsonError) err.segments.push(segment);
    throw err;
  }
}

function hasToJson(object: object): boolean {
  return typeof (object as { toJSON?: unknown }).toJSON === 'function';
}

function assertPlain(object: object): void {
  if (hasToJson(object)) throw new NotJsonError('has a toJSON method; pass plain data');
}

function checkScalar(value: unknown): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new NotJsonError(`is ${value}`);
      return;
    default:
      throw new NotJsonError(value === undefined ? 'is undefined' : `is a ${typeof value}`);
  }
}

/**
 * The fast path. Returns `value` itself when every object in it already has its keys
 * in canonical order (the common case: the compiler builds its objects that way, and
 * the validator's schemas list keys sorted), and a reordered copy of the parts that do
 * not otherwise. No closures or paths here: it runs once per object of the snapshot.
 */
function withSortedKeys(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw NOT_JSON;
      return value;
    case 'object':
      break;
    default:
      throw NOT_JSON;
  }
  if (value === null) return null;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === undefined) throw NOT_JSON;
      const canonical = withSortedKeys(item);
      if (canonical !== item) {
        copy ??= value.slice();
        copy[i] = canonical;
      }
    }
    return copy ?? value;
  }
  if (hasToJson(value)) throw NOT_JSON;
  const object = value as { [key: string]: unknown };
  // First pass without allocating: most objects are already canonical and stay as they are.
  let previous = '';
  let first = true;
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    const code = key.charCodeAt(0);
    if (code >= 48 && code <= 57 && isArrayIndex(key)) throw HAS_INDEX_KEYS;
    if (!first && previous > key) return sortedCopy(object);
    first = false;
    previous = key;
    const item = object[key];
    if (item !== undefined && typeof item === 'object' && item !== null && withSortedKeys(item) !== item) {
      return sortedCopy(object);
    }
    if (item !== undefined && typeof item !== 'object') withSortedKeys(item);
  }
  return object;
}

/** A copy of `object` with keys in canonical order and every value canonical. */
function sortedCopy(object: { [key: string]: unknown }): { [key: string]: unknown } {
  const keys = Object.keys(object).sort();
  const copy: { [key: string]: unknown } = {};
  for (const key of keys) {
    const item = object[key];
    if (item === undefined) continue;
    // defineProperty, so a key named __proto__ stays data instead of replacing the prototype.
    Object.defineProperty(copy, key, { value: withSortedKeys(item), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** The slow, exact path: builds the encoding itself. */
function encodeByHand(value: unknown): string {
  if (typeof value !== 'object' || value === null) {
    if (value !== null) checkScalar(value);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    const items = value.map((item: unknown, i) =>
      within(`[${i}]`, () => {
        if (item === undefined) throw new NotJsonError('is undefined');
        return encodeByHand(item);
      }),
    );
    return `[${items.join(',')}]`;
  }
  assertPlain(value);
  const object = value as { [key: string]: unknown };
  const members: string[] = [];
  for (const key of Object.keys(object).sort()) {
    const item = object[key];
    if (item === undefined) continue;
    members.push(`${JSON.stringify(key)}:${within(`.${key}`, () => encodeByHand(item))}`);
  }
  return `{${members.join(',')}}`;
}

function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9][0-9]{0,9})$/.test(key) && Number(key) < 4294967295;
}
