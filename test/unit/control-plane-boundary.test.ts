import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CONTROL_PLANE = fileURLToPath(new URL('../../control-plane/', import.meta.url));
const DATA_PLANE = fileURLToPath(new URL('../../data-plane/', import.meta.url));
/** The launcher is the one composition root allowed to run both planes in one process (DESIGN §2). */
const COMPOSITION_ROOT = join(CONTROL_PLANE, 'cli');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('control-plane boundary', () => {
  it('never imports the data plane outside the launcher', () => {
    const files = sources(CONTROL_PLANE).filter((file) => !file.startsWith(COMPOSITION_ROOT));
    expect(files.length).toBeGreaterThan(20);
    for (const file of files) {
      const specifiers = [...readFileSync(file, 'utf8').matchAll(/\b(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!);
      for (const specifier of specifiers) {
        const reachesDataPlane =
          specifier.startsWith('#data-plane') || (specifier.startsWith('.') && resolve(dirname(file), specifier).startsWith(DATA_PLANE));
        expect(reachesDataPlane, `${relative(CONTROL_PLANE, file)} imports ${specifier}`).toBe(false);
      }
    }
  });
});
