import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DataPlaneLogger } from '../logger.js';
import type { CallFacts } from './call-facts.js';

/** What the worker is started with. */
export interface EntryWorkerData {
  readonly scrubKeys?: readonly string[] | undefined;
}

/** Main thread → worker: build the entries of these calls. */
export interface BuildRequest {
  readonly id: number;
  readonly facts: readonly CallFacts[];
}

/** Worker → main thread: the entries of each call of the request, in order, as JSON. */
export interface BuildReply {
  readonly id: number;
  /** The JSON of each entry of each call (a batch body is their concatenation). */
  readonly texts: string[][];
  /** Calls whose build threw (their entries are empty). */
  readonly failed: readonly { readonly index: number; readonly message: string }[];
  /** False when the token vocabulary could not be loaded (entries carry no token estimates). */
  readonly tokensLoaded: boolean;
}

/** The worker died (or was stopped) before answering; the caller builds those calls itself. */
export class EntryWorkerUnavailable extends Error {
  override readonly name = 'EntryWorkerUnavailable';
}

/** Worker deaths within {@link CRASH_WINDOW_MS} after which the builder stops restarting it. */
const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 60_000;

/**
 * Builds audit entries on a worker thread, so serializing, scrubbing and counting tokens
 * (most of the audit's CPU) never holds up a call on the event loop: building on the
 * event loop, even in 2 ms slices, delayed calls that arrived during a slice by up to a
 * slice per await of their own path (the p95/p99 of sequential calls; data-plane/README.md).
 *
 * Facts go over by structured clone (strings are copied, not parsed); the entries come
 * back as their JSON texts. A worker that dies fails its requests with {@link EntryWorkerUnavailable}
 * (the shipper then builds those calls on the event loop: nothing is lost) and is started
 * again on the next request, unless it died {@link MAX_CRASHES} times within a minute.
 */
export class EntryBuilderWorker {
  #worker: Worker | undefined;
  #sequence = 0;
  readonly #pending = new Map<number, { resolve(reply: BuildReply): void; reject(error: Error): void }>();
  readonly #crashes: number[] = [];
  #closed = false;
  #warnedTokens = false;

  constructor(
    private readonly data: EntryWorkerData,
    private readonly logger?: DataPlaneLogger,
  ) {}

  /** False once the worker kept dying (or after close): build on the event loop instead. */
  get usable(): boolean {
    if (this.#closed) return false;
    const now = Date.now();
    while (this.#crashes.length > 0 && now - this.#crashes[0]! > CRASH_WINDOW_MS) this.#crashes.shift();
    return this.#crashes.length < MAX_CRASHES;
  }

  build(facts: readonly CallFacts[]): Promise<BuildReply> {
    if (!this.usable) return Promise.reject(new EntryWorkerUnavailable('the audit entry worker is not available'));
    const worker = (this.#worker ??= this.#start());
    const id = (this.#sequence += 1);
    return new Promise<BuildReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        worker.postMessage({ id, facts } satisfies BuildRequest);
      } catch (error) {
        // A value that cannot be cloned (never expected: facts are JSON values and strings).
        this.#pending.delete(id);
        reject(new EntryWorkerUnavailable(`the call facts could not be sent to the audit entry worker: ${String(error)}`));
      }
    });
  }

  /** Stops the worker; requests still waiting fail with {@link EntryWorkerUnavailable}. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failAll('the audit entry worker was stopped');
    await worker?.terminate();
  }

  /** The worker thread, for tests that need it to die. */
  get thread(): Worker | undefined {
    return this.#worker;
  }

  #start(): Worker {
    const worker = startEntryWorker(this.data);
    worker.unref();
    worker.on('message', (reply: BuildReply) => {
      const waiting = this.#pending.get(reply.id);
      if (!waiting) return;
      this.#pending.delete(reply.id);
      if (!reply.tokensLoaded && !this.#warnedTokens) {
        this.#warnedTokens = true;
        this.logger?.warn('the cl100k_base vocabulary could not be loaded; audit entries carry no token estimates');
      }
      waiting.resolve(reply);
    });
    const gone = (why: string) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      if (this.#closed) return;
      this.#crashes.push(Date.now());
      this.logger?.error({ crashes: this.#crashes.length }, `the audit entry worker stopped (${why}); its calls are built on the event loop${this.usable ? ' and it is restarted on the next flush' : ' from now on'}`);
      this.#failAll(`the audit entry worker stopped (${why})`);
    };
    worker.on('error', (error) => gone(error.message));
    worker.on('exit', (code) => gone(`exit code ${code}`));
    return worker;
  }

  #failAll(message: string): void {
    for (const waiting of this.#pending.values()) waiting.reject(new EntryWorkerUnavailable(message));
    this.#pending.clear();
  }
}

/**
 * The worker's heap. A request carries at most ~1 MiB of call text (one call alone when
 * its bodies are larger; the shipper chunks them), and what it builds is garbage once
 * answered, so a young generation of 4 MiB keeps scavenges short without the 16–32 MiB
 * V8 reserves for an isolate by default. The old generation holds the token counter's
 * caches and the scrubber (a few MiB); its cap also bounds how far V8 lets it grow past
 * that (measured under 32 sessions of calls: the data plane's RSS settled ~10 MiB lower
 * with a 64 MiB cap than with 256), and a build that would exceed it kills the worker
 * (the shipper then builds those calls on the event loop) instead of the process.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 };

/**
 * The worker runs `entry-worker.mjs` next to this module when it is there (the bundle
 * `npm run build` writes), else the TypeScript source through tsx's loader (tests and
 * `tsx` runs; Node applies the parent's `--import` hooks to no worker).
 */
function startEntryWorker(data: EntryWorkerData): Worker {
  const bundled = new URL('./entry-worker.mjs', import.meta.url);
  if (existsSync(fileURLToPath(bundled))) return new Worker(bundled, { workerData: data, resourceLimits: WORKER_LIMITS });
  const source = new URL('./entry-worker.ts', import.meta.url).href;
  // tsx's ESM entry (`tsx/esm/api`, "import" condition), found through its exports map.
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: { './esm/api': { import: { default: string } } } };
  const tsx = new URL(exports['./esm/api'].import.default, pathToFileURL(manifest)).href;
  return new Worker(`import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(source)});`, { eval: true, workerData: data, resourceLimits: WORKER_LIMITS });
}
