import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SnapshotCompileError, compileGatewaySnapshotWithDiagnostics } from '../../../control-plane/snapshot/compile.js';
import type { SnapshotSource } from '../../../control-plane/snapshot/source.js';
import { parseGatewaySnapshot } from '../../../schema/snapshot/index.js';

/**
 * Golden cases for the snapshot compiler: each `test/golden/snapshot/<case>.json` holds
 * `{ description, input, expected, diagnostics? }`, where `expected` is the compiled
 * snapshot or `{ error }`, and `diagnostics` what the compiler withheld (name collisions),
 * present only when there is any. `UPDATE_GOLDEN=1 npx vitest run --config test/vitest.config.ts test/unit/snapshot/golden.test.ts`
 * rewrites `expected` from the compiler; review the diff before keeping it.
 */
const GOLDEN_DIR = fileURLToPath(new URL('../../golden/snapshot/', import.meta.url));
const OPTIONS = { version: 7, generatedAt: '2025-06-01T12:00:00.000Z' } as const;
const update = process.env.UPDATE_GOLDEN === '1';

interface GoldenCase {
  description: string;
  input: SnapshotSource;
  expected: unknown;
  diagnostics?: unknown;
}

function compileCase(input: SnapshotSource): { expected: unknown; diagnostics?: unknown } {
  try {
    const { snapshot, diagnostics } = compileGatewaySnapshotWithDiagnostics(input, OPTIONS);
    return { expected: snapshot, ...(diagnostics.length > 0 && { diagnostics }) };
  } catch (err) {
    if (!(err instanceof SnapshotCompileError)) throw err;
    return { expected: { error: { name: err.name, message: err.message, problems: err.problems } } };
  }
}

const files = readdirSync(GOLDEN_DIR)
  .filter((file) => file.endsWith('.json'))
  .sort();

describe('snapshot compiler golden cases', () => {
  it('has cases', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(file.replace(/\.json$/, ''), () => {
      const filePath = path.join(GOLDEN_DIR, file);
      const golden = JSON.parse(readFileSync(filePath, 'utf8')) as GoldenCase;
      // A JSON round trip, as the snapshot would travel.
      const { expected: actual, diagnostics } = JSON.parse(JSON.stringify(compileCase(golden.input))) as { expected: unknown; diagnostics?: unknown };

      if (update) {
        const next = { description: golden.description, input: golden.input, expected: actual, ...(diagnostics !== undefined && { diagnostics }) };
        writeFileSync(filePath, `${JSON.stringify(next, null, 2)}\n`);
        return;
      }
      expect(actual).toEqual(golden.expected);
      expect(diagnostics).toEqual(golden.diagnostics);
      if (!(typeof actual === 'object' && actual !== null && 'error' in actual)) {
        // What the compiler emits, a data plane accepts.
        expect(() => parseGatewaySnapshot(actual)).not.toThrow();
      }
    });
  }
});
