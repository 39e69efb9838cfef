import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const RULES = fileURLToPath(new URL('../../../schema/rules/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** Packages the rules library may use: linear-time regex and the HTTP client of rule engines. */
const PACKAGES = new Set(['re2', 'undici']);
const SCHEMA = fileURLToPath(new URL('../../../schema/', import.meta.url));

/**
 * `schema/rules/` is a library both planes run (the data plane enforces rules with it; the
 * control plane's `testRule`, pattern checks at save and engine test-connections must behave
 * exactly the same), so it lives in `schema/`, the one place the planes share, and depends
 * on nothing of either plane: node builtins, two packages, the rest of `schema/` and itself.
 */
describe('rules library', () => {
  it('imports only node: builtins, re2, undici, schema/ and itself', () => {
    const files = sources(RULES);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/\bfrom\s+'([^']+)'/g)) {
        const target = specifier!.startsWith('.') ? resolve(dirname(file), specifier!) : undefined;
        const ok = specifier!.startsWith('node:') || PACKAGES.has(specifier!) || (target !== undefined && (target.startsWith(RULES) || target.startsWith(SCHEMA)));
        expect(ok, `${file} imports ${specifier}`).toBe(true);
      }
    }
  });
});
