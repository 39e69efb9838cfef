import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SNAPSHOT_DIR = fileURLToPath(new URL('../../../schema/snapshot/', import.meta.url));

describe('schema/snapshot boundary', () => {
  it('imports only itself, node builtins and zod, so either plane can depend on it', () => {
    const files = readdirSync(SNAPSHOT_DIR).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const text = readFileSync(SNAPSHOT_DIR + file, 'utf8');
      const specifiers = [...text.matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]!);
      for (const specifier of specifiers) {
        expect(
          specifier.startsWith('./') || specifier.startsWith('node:') || specifier === 'zod',
          `${file} imports ${specifier}`,
        ).toBe(true);
      }
    }
  });
});
