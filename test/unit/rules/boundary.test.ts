import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const RULES = fileURLToPath(new URL('../../../data-plane/rules/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('rules building blocks', () => {
  it('import only node: builtins and each other', () => {
    const files = sources(RULES);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/\bfrom\s+'([^']+)'/g)) {
        const ok = specifier!.startsWith('node:') || (specifier!.startsWith('./') || specifier!.startsWith('../')) && !specifier!.includes('control-plane');
        expect(ok, `${file} imports ${specifier}`).toBe(true);
      }
    }
  });
});
