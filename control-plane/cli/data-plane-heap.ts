import { setFlagsFromString } from 'node:v8';
import { DataPlaneConfigError } from '#data-plane/config.js';

/**
 * How far V8 lets the old generation grow past what survived the last mark-compact, in
 * percent, in a `gatehouse data-plane` process (V8's `--heap-growing-percent`).
 *
 * V8 picks that factor from the heap's limit: on a machine with gigabytes of memory the
 * limit is ~4 GB and the factor up to 4×, so a data plane with ~30 MB live lets ~100 MB
 * of dead audit records, batch bodies and request objects pile up before it collects
 * them; its RSS then wanders between ~150 and ~270 MB with the load, none of it live. At
 * 25% the old generation is collected once it grows by a quarter (or by V8's minimum
 * step of 8 MB, whichever is more): RSS stays near the live heap, for a few more
 * mark-compacts (marking ~30 MB, mostly on V8's helper threads). Measured with
 * test/bench/memory-breakdown.ts (figures in data-plane/README.md, "Memory").
 */
export const DATA_PLANE_HEAP_GROWING_PERCENT = 25;

/** Environment variable that overrides {@link DATA_PLANE_HEAP_GROWING_PERCENT}; `0` keeps V8's own policy. */
export const HEAP_GROWING_PERCENT_VARIABLE = 'GATEHOUSE_DATA_PLANE_HEAP_GROWING_PERCENT';

/**
 * Sets the heap growing percent of this process, once, at start-up: a
 * `--heap-growing-percent` the process was launched with wins, then
 * `GATEHOUSE_DATA_PLANE_HEAP_GROWING_PERCENT` (0: V8's own policy), then
 * {@link DATA_PLANE_HEAP_GROWING_PERCENT}. V8 reads the flag whenever it sets the next GC
 * limit, so setting it after launch takes effect (Node refuses it in `NODE_OPTIONS`).
 * Returns the percent in force, or undefined for V8's own policy.
 */
export function applyDataPlaneHeapPolicy(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const launchedWith = execArgv.find((arg) => /^--heap[-_]growing[-_]percent=/.test(arg));
  if (launchedWith !== undefined) {
    const value = Number(launchedWith.split('=')[1]);
    return Number.isInteger(value) && value > 0 ? value : undefined;
  }
  const configured = env[HEAP_GROWING_PERCENT_VARIABLE];
  let percent = DATA_PLANE_HEAP_GROWING_PERCENT;
  if (configured !== undefined && configured !== '') {
    percent = Number(configured);
    if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
      throw new DataPlaneConfigError(HEAP_GROWING_PERCENT_VARIABLE, `expected a whole number of percent from 0 (V8's own policy) to 1000, got ${JSON.stringify(configured)}`);
    }
    if (percent === 0) return undefined;
  }
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
