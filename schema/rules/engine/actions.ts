import { createHash } from 'node:crypto';
import type { RuleAction } from '../../snapshot/index.js';

/** A span of one string value that a rule matched; `type` is the entity type, `REGEX` or `PROMPT_INJECTION`. */
export interface Match {
  readonly start: number;
  readonly end: number;
  readonly type: string;
}

/** Rewrites one matched span; built once per rule. Absent for `block` and `alert_only`. */
export type SpanRewriter = (matched: string, type: string) => string;

/**
 * The rewriter of a transforming action: `redact` → `[REDACTED:<TYPE>]`; `replace` → the
 * rule's text; `mask` → `*` for every character but the last `keepLast` (a match no
 * longer than `keepLast` is starred whole, so a short secret is never shown in full);
 * `hash` → `sha256:<hex>` of salt ‖ match (UTF-8), stable across calls and replicas.
 */
export function spanRewriter(action: RuleAction, hashSalt: string | undefined): SpanRewriter | undefined {
  switch (action.kind) {
    case 'redact': {
      // One string per type, built once: a template literal would allocate a new (unflattened) string per match.
      const redacted = new Map<string, string>();
      return (_matched, type) => {
        let text = redacted.get(type);
        if (text === undefined) {
          text = `[REDACTED:${type}]`;
          redacted.set(type, text);
        }
        return text;
      };
    }
    case 'replace': {
      const text = action.text;
      return () => text;
    }
    case 'mask': {
      const keep = Math.max(0, Math.floor(action.keepLast));
      return (matched) => mask(matched, keep);
    }
    case 'hash': {
      if (hashSalt === undefined) throw new Error('the workspace rule salt is not available');
      const salt = hashSalt;
      return (matched) => `sha256:${createHash('sha256').update(salt, 'utf8').update(matched, 'utf8').digest('hex')}`;
    }
    case 'block':
    case 'alert_only':
      return undefined;
  }
}

/** Counts code points, so a surrogate pair is one masked character and is never split. */
function mask(matched: string, keep: number): string {
  let ascii = true;
  for (let i = 0; i < matched.length; i++) {
    const c = matched.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    if (matched.length <= keep) return '*'.repeat(matched.length);
    return '*'.repeat(matched.length - keep) + (keep === 0 ? '' : matched.slice(matched.length - keep));
  }
  const points = Array.from(matched);
  if (points.length <= keep) return '*'.repeat(points.length);
  return '*'.repeat(points.length - keep) + points.slice(points.length - keep).join('');
}

/** `text` with each (sorted, non-overlapping) match rewritten. */
export function rewriteSpans(text: string, matches: readonly Match[], rewrite: SpanRewriter): string {
  let out = '';
  let from = 0;
  for (const m of matches) {
    out += text.slice(from, m.start) + rewrite(text.slice(m.start, m.end), m.type);
    from = m.end;
  }
  return out + text.slice(from);
}
