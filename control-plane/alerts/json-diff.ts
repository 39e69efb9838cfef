/** One difference between two JSON values, at a JSON Pointer (RFC 6901) path. */
export interface JsonChange {
  readonly path: string;
  readonly op: 'add' | 'remove' | 'replace';
  readonly old?: unknown;
  readonly new?: unknown;
}

export interface JsonDiff {
  readonly changes: readonly JsonChange[];
  /** More changes existed than `maxChanges`; only the first ones are listed. */
  readonly truncated: boolean;
}

export interface JsonDiffOptions {
  /** Changes listed at most. Default 20. */
  readonly maxChanges?: number;
  /** Strings longer than this are cut (with `…`), and so are serialized objects. Default 2000. */
  readonly maxValueChars?: number;
}

const pointer = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A small, bounded structural diff of two JSON values, for alerts a person reads (the
 * definition a feature was pinned to against the one discovery saw). Objects are compared
 * key by key (sorted), arrays index by index; anything else is replaced whole.
 */
export function jsonDiff(before: unknown, after: unknown, options: JsonDiffOptions = {}): JsonDiff {
  const maxChanges = options.maxChanges ?? 20;
  const maxChars = options.maxValueChars ?? 2000;
  const changes: JsonChange[] = [];
  let truncated = false;

  const clip = (value: unknown): unknown => {
    if (typeof value === 'string') return value.length > maxChars ? `${value.slice(0, maxChars)}…` : value;
    if (typeof value !== 'object' || value === null) return value;
    const json = JSON.stringify(value);
    return json.length > maxChars ? `${json.slice(0, maxChars)}…` : value;
  };
  const push = (change: JsonChange) => {
    if (changes.length >= maxChanges) truncated = true;
    else changes.push(change);
  };

  const walk = (a: unknown, b: unknown, path: string): void => {
    if (truncated) return;
    if (isObject(a) && isObject(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const key of keys) {
        const p = `${path}/${pointer(key)}`;
        if (!(key in b)) push({ path: p, op: 'remove', old: clip(a[key]) });
        else if (!(key in a)) push({ path: p, op: 'add', new: clip(b[key]) });
        else walk(a[key], b[key], p);
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const p = `${path}/${i}`;
        if (i >= b.length) push({ path: p, op: 'remove', old: clip(a[i]) });
        else if (i >= a.length) push({ path: p, op: 'add', new: clip(b[i]) });
        else walk(a[i], b[i], p);
      }
      return;
    }
    if (!sameJson(a, b)) push({ path: path || '/', op: 'replace', old: clip(a), new: clip(b) });
  };

  walk(before, after, '');
  return { changes, truncated };
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
