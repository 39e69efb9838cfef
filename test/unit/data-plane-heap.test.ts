import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DATA_PLANE_HEAP_GROWING_PERCENT, HEAP_GROWING_PERCENT_VARIABLE, applyDataPlaneHeapPolicy } from '../../control-plane/cli/data-plane-heap.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Runs the policy in a fresh Node process with V8's GC tracing on, forces a full GC and
 * returns what the policy answered and the growing factor V8 then used for the next
 * old-generation limit (`[HeapController] Limit: … (<factor>)`).
 */
function inChild(env: Record<string, string>, nodeFlags: string[] = []): { percent: string; factor: number } {
  const code = [
    "const { applyDataPlaneHeapPolicy } = await import('./control-plane/cli/data-plane-heap.ts');",
    'console.log(`policy ${applyDataPlaneHeapPolicy()}`);',
    'const keep = Array.from({ length: 100000 }, (_, i) => ({ i }));',
    'globalThis.gc();',
    'console.log(keep.length);',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--expose-gc', '--trace-gc-verbose', ...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: REPO,
    env: { ...process.env, [HEAP_GROWING_PERCENT_VARIABLE]: '', ...env },
    encoding: 'utf8',
  });
  const factors = [...out.matchAll(/\[HeapController\] Limit: .*\((\d+\.\d)\)/g)].map((m) => Number(m[1]));
  return { percent: /^policy (\S+)$/m.exec(out)![1]!, factor: factors.at(-1)! };
}

describe('the data-plane heap policy', () => {
  it('makes V8 collect the old generation once it grows by a quarter', () => {
    const { percent, factor } = inChild({});
    expect(percent).toBe(String(DATA_PLANE_HEAP_GROWING_PERCENT));
    // V8 prints the factor with one decimal: 1.25 shows as 1.2.
    expect(Math.abs(factor - (1 + DATA_PLANE_HEAP_GROWING_PERCENT / 100))).toBeLessThan(0.06);
  });

  it('takes the percent from GATEHOUSE_DATA_PLANE_HEAP_GROWING_PERCENT, and 0 leaves V8 its own', () => {
    expect(inChild({ [HEAP_GROWING_PERCENT_VARIABLE]: '60' })).toEqual({ percent: '60', factor: 1.6 });
    expect(inChild({ [HEAP_GROWING_PERCENT_VARIABLE]: '0' }).percent).toBe('undefined');
  });

  it('leaves a --heap-growing-percent the process was launched with alone', () => {
    expect(inChild({ [HEAP_GROWING_PERCENT_VARIABLE]: '60' }, ['--heap-growing-percent=70'])).toEqual({ percent: '70', factor: 1.7 });
  });

  it('refuses a value that is not a percent, naming the variable', () => {
    expect(() => applyDataPlaneHeapPolicy([], { [HEAP_GROWING_PERCENT_VARIABLE]: 'lots' })).toThrow(/GATEHOUSE_DATA_PLANE_HEAP_GROWING_PERCENT: expected a whole number/);
    expect(() => applyDataPlaneHeapPolicy([], { [HEAP_GROWING_PERCENT_VARIABLE]: '-5' })).toThrow(HEAP_GROWING_PERCENT_VARIABLE);
  });
});
