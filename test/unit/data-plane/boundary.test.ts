import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DATA_PLANE = fileURLToPath(new URL('../../../data-plane/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('data-plane boundary', () => {
  it('never imports the control plane', () => {
    const files = sources(DATA_PLANE);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const specifiers = [...readFileSync(file, 'utf8').matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]!);
      for (const specifier of specifiers) expect(specifier.includes('control-plane'), `${file} imports ${specifier}`).toBe(false);
    }
  });
});
