import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createScrubber, type Scrubber } from '../../schema/audit/scrub.js';
import { AUDIT_FORMAT_VERSION, type AuditEntry } from '../../schema/audit/types.js';
import { MAX_AUDIT_BATCH_ENTRIES } from '../../schema/audit/validate.js';
import { silentLogger, type DataPlaneLogger } from '../logger.js';
import { auditMetrics, type AuditDropReason } from './audit-metrics.js';
import type { AuditSink, AuditedCall } from './call-auditor.js';
import { buildCallEntryTexts, callFacts, type CallFacts } from './call-facts.js';
import { EntryBuilderWorker, EntryWorkerUnavailable } from './entry-builder.js';
import { TokenEstimator } from './token-estimator.js';
import { AuditShipError, httpAuditTransport, type AuditTransport } from './transport.js';

export interface AuditShipperOptions {
  readonly transport: AuditTransport;
  readonly logger?: DataPlaneLogger;
  /** Bound of the buffer in entries (built or not, in flight included); past it new calls are dropped. Default 50,000. */
  readonly maxBufferedEntries?: number;
  /** Ship what is buffered at least this often. Default 200 ms. */
  readonly flushIntervalMs?: number;
  /** Entries per batch, and the buffered count that triggers a flush at once. Default 1000 (at most 5000). */
  readonly batchEntries?: number;
  /** Estimated size of one batch at most (bodies make entries large; serializing one holds the event loop). Default 1 MiB. */
  readonly maxBatchBytes?: number;
  /** Batches in flight at once. Default 2. */
  readonly concurrency?: number;
  /** First retry delay after a failed batch; doubles per failure, with jitter. Default 100 ms. */
  readonly initialRetryDelayMs?: number;
  /** Longest retry delay. Default 10 s. */
  readonly maxRetryDelayMs?: number;
  /** How long `close()` keeps shipping what is buffered. Default 5 s. */
  readonly closeTimeoutMs?: number;
  /** Secret key names scrubbed from bodies and headers (see `schema/audit/scrub.ts`). Default: its list plus `mcp-session-id`. */
  readonly scrubKeys?: readonly string[];
  /** In [0, 1): the jitter source. Default `Math.random`. */
  readonly random?: () => number;
  /**
   * Where entries are built: on the event loop in slices (the default), or on a worker
   * thread (`GATEHOUSE_AUDIT_BUILD_ON=worker`; the event loop is its fallback when it dies).
   */
  readonly buildOn?: 'worker' | 'event-loop';
}

/** Counters of one shipper (the metrics add up every shipper of the process). */
export interface AuditShipperStats {
  shipped: number;
  dropped: number;
  failures: number;
}

/** A name for this data-plane process in `dataPlaneInstance`: host, pid and a per-start suffix. */
export function dataPlaneInstanceName(): string {
  return `${hostname().slice(0, 180)}/${process.pid}/${randomBytes(3).toString('hex')}`;
}

/**
 * The data plane's audit pipeline after a call: a bounded in-memory buffer of finished
 * calls, turned into entries (`buildCallEntryTexts`: serializing, scrubbing, token counts)
 * and shipped in batches (every `flushIntervalMs`, or at once when `batchEntries` are
 * waiting). On the event loop (the default) entries are built soon after their calls
 * end, once {@link EAGER_CALLS} are waiting, in an immediate of at most
 * {@link EAGER_SLICE_MS}: building the whole 200 ms flush at once, even in 2 ms slices,
 * held up the calls arriving meanwhile. What is left is built in the flush. With
 * `buildOn: 'worker'` they are built on a worker thread in the flush.
 *
 * A batch that fails to ship (network error, 408, 429, 5xx) is kept, with the same entry
 * ids, and retried after an exponential backoff with jitter, so the control plane's
 * idempotent ingest stores it once. A 400 naming an entry drops that entry and resends
 * the rest; a 413 halves the batch; 401/403 drop the batch (the token is not valid).
 * When the buffer is full, new calls are dropped and counted
 * (`gatehouse_data_plane_audit_dropped_entries_total{reason="buffer_full"}`), with a
 * warning at most every 10 s, and the next batch tells the control plane how many were
 * lost (`droppedEntries`). Nothing here ever blocks or fails a call.
 */
/** Longest stretch the flush builds entries before it yields the event loop to calls. */
const BUILD_SLICE_MS = 2;
/**
 * Calls waiting that start an eager build (in an immediate, between requests). One call
 * at a time costs ~1.7× the CPU per call of a batch (caches are cold by then) and moved
 * the sequential p50; the whole 200 ms flush at once moved the p99. Eight was between
 * the two on both (audit/README.md, "Where entries are built").
 */
const EAGER_CALLS = 8;
/** Longest stretch of one eager build: a client's next request waits at most this long behind it. */
const EAGER_SLICE_MS = 0.5;

/**
 * Calls per request to the entry worker: its answer is deserialized on the event loop in
 * one go (~10 µs a call), so a request stays well under a millisecond of it.
 */
const WORKER_CHUNK_CALLS = 48;
/** Characters of request and answer text per request to the entry worker, roughly (see entry-builder.ts). */
const WORKER_CHUNK_CHARS = 1024 * 1024;

export class AuditShipper implements AuditSink {
  readonly capacity: number;
  readonly stats: AuditShipperStats = { shipped: 0, dropped: 0, failures: 0 };
  readonly #transport: AuditTransport;
  readonly #logger: DataPlaneLogger;
  readonly #flushIntervalMs: number;
  readonly #batchEntries: number;
  readonly #maxBatchBytes: number;
  readonly #concurrency: number;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #closeTimeoutMs: number;
  readonly #random: () => number;
  readonly #deps: { scrubber: Scrubber; tokens: TokenEstimator };
  readonly #metrics = auditMetrics();
  readonly #unregister: () => void;
  /** Finished calls not built into entries yet, and their estimated entry count. */
  #calls: { readonly call: AuditedCall; readonly legs: number }[] = [];
  #callEntries = 0;
  /** Estimated entries of calls the worker is building. */
  #buildingEntries = 0;
  readonly #worker: EntryBuilderWorker | undefined;
  /**
   * Built entries waiting for a batch, as their JSON, made when each was built (on the
   * event loop or the worker): a batch's body is the concatenation, where one
   * `JSON.stringify` of a 1 MiB batch held the event loop for several milliseconds. Only
   * the text is kept: entry objects waiting here for up to a flush interval survived
   * scavenges and were copied by each.
   */
  #pending: string[] = [];
  #inFlight = 0;
  #inFlightEntries = 0;
  /** Dropped since the last batch that reported drops was accepted. */
  #droppedUnreported = 0;
  #batchLimit: number;
  #failures = 0;
  #retryAt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;
  #eagerScheduled = false;
  readonly #eagerBuild = (): void => {
    this.#eagerScheduled = false;
    if (this.#pumping) return; // the flush builds what is buffered
    this.#buildFor(EAGER_SLICE_MS, this.#calls.length);
    if (this.#calls.length >= EAGER_CALLS) this.#scheduleEager();
  };
  #pumping: Promise<void> | undefined;
  #pumpAgain = false;
  #closing = false;
  #closed = false;
  #tokensLoaded = false;
  readonly #warned = new Map<string, { at: number; suppressed: number }>();
  readonly #idle = new Set<() => void>();

  constructor(options: AuditShipperOptions) {
    if (!options.transport || typeof options.transport.send !== 'function') throw new TypeError('audit shipper option "transport" is required');
    const positive = (name: keyof AuditShipperOptions, value: number | undefined, fallback: number) => {
      const result = value ?? fallback;
      if (!Number.isInteger(result) || result <= 0) throw new TypeError(`audit shipper option "${name}" must be a positive integer, got ${String(value)}`);
      return result;
    };
    this.capacity = positive('maxBufferedEntries', options.maxBufferedEntries, 50_000);
    this.#flushIntervalMs = positive('flushIntervalMs', options.flushIntervalMs, 200);
    this.#batchEntries = positive('batchEntries', options.batchEntries, 1000);
    if (this.#batchEntries > MAX_AUDIT_BATCH_ENTRIES) throw new TypeError(`audit shipper option "batchEntries" must be at most ${MAX_AUDIT_BATCH_ENTRIES}`);
    this.#maxBatchBytes = positive('maxBatchBytes', options.maxBatchBytes, 1024 * 1024);
    this.#concurrency = positive('concurrency', options.concurrency, 2);
    this.#initialDelayMs = positive('initialRetryDelayMs', options.initialRetryDelayMs, 100);
    this.#maxDelayMs = Math.max(positive('maxRetryDelayMs', options.maxRetryDelayMs, 10_000), this.#initialDelayMs);
    this.#closeTimeoutMs = positive('closeTimeoutMs', options.closeTimeoutMs, 5_000);
    this.#transport = options.transport;
    this.#logger = options.logger ?? silentLogger();
    this.#random = options.random ?? Math.random;
    this.#batchLimit = this.#batchEntries;
    this.#deps = {
      scrubber: options.scrubKeys ? createScrubber({ keys: options.scrubKeys }) : createScrubber({ extraKeys: ['mcp-session-id'] }),
      tokens: new TokenEstimator(this.#logger),
    };
    this.#worker = options.buildOn === 'worker' ? new EntryBuilderWorker({ scrubKeys: options.scrubKeys }, this.#logger) : undefined;
    this.#unregister = this.#metrics.register(this);
    this.#timer = setInterval(() => void this.#pump(), this.#flushIntervalMs);
    this.#timer.unref();
  }

  /** The worker entries are built on (`buildOn: 'worker'`), for tests that need it to die. */
  get entryWorker(): EntryBuilderWorker | undefined {
    return this.#worker;
  }

  /** Entries buffered: calls not built yet (estimated), built entries, batches in flight. */
  buffered(): number {
    return this.#callEntries + this.#buildingEntries + this.#pending.length + this.#inFlightEntries;
  }

  load(): number {
    return this.buffered() / this.capacity;
  }

  accept(call: AuditedCall): boolean {
    const legs = call.legCount();
    if (this.#closed) {
      this.#drop(legs, 'shutdown');
      return false;
    }
    if (this.buffered() + legs > this.capacity) {
      this.#drop(legs, 'buffer_full');
      this.#warn('full', `the audit buffer is full (${this.capacity} entries); entries of new calls are dropped until the control plane catches up`);
      return false;
    }
    this.#calls.push({ call, legs });
    this.#callEntries += legs;
    if (this.#callEntries + this.#pending.length >= this.#batchEntries) this.#schedule();
    else if (this.#calls.length >= EAGER_CALLS) this.#scheduleEager();
    return true;
  }

  /** Ships everything buffered now (tests, shutdown); resolves when the buffer is empty or a batch failed. */
  async flush(): Promise<void> {
    await this.#pump();
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.add(resolve));
  }

  /**
   * Stops the timer and ships what is buffered, retrying as usual, for at most
   * `closeTimeoutMs`; what is still unshipped then is dropped (`reason="shutdown"`) and
   * logged. Calls finishing after this are dropped the same way.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#timer);
    const deadline = Date.now() + this.#closeTimeoutMs;
    while (this.buffered() > 0 && Date.now() < deadline) {
      await this.#pump();
      const wait = Math.min(25, Math.max(1, deadline - Date.now()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#idle.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const left = this.buffered();
    if (left > 0) {
      this.#drop(left, 'shutdown');
      this.#calls = [];
      this.#callEntries = 0;
      this.#pending = [];
      this.#logger.warn({ entries: left, timeoutMs: this.#closeTimeoutMs }, 'audit entries could not be shipped before shutdown and are lost');
    }
    this.#unregister();
    await this.#worker?.close();
    await this.#transport.close?.(left > 0);
  }

  /** Builds buffered calls in the next immediate (event-loop building, once the token counter is loaded). */
  #scheduleEager(): void {
    if (this.#eagerScheduled || !this.#tokensLoaded || this.#closed || this.#worker?.usable) return;
    this.#eagerScheduled = true;
    setImmediate(this.#eagerBuild);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#pump();
    });
  }

  /** One flush: build entries of finished calls, then start batches up to the concurrency. */
  #pump(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return this.#pumping;
    }
    this.#pumping = (async () => {
      try {
        do {
          this.#pumpAgain = false;
          await this.#build();
          this.#dispatch();
        } while (this.#pumpAgain);
      } catch (error) {
        this.#logger.error({ err: error }, 'the audit flush failed');
      } finally {
        this.#pumping = undefined;
      }
    })();
    return this.#pumping;
  }

  async #build(): Promise<void> {
    if (this.#calls.length === 0) return;
    if (this.#worker?.usable && (await this.#buildInWorker(this.#worker))) return;
    if (this.#calls.length === 0) return;
    if (!this.#tokensLoaded) {
      await this.#deps.tokens.ready();
      this.#tokensLoaded = true;
    }
    // Build in slices of at most BUILD_SLICE_MS, yielding the event loop between them, so
    // a flush never holds up the calls in flight for longer than that.
    // Only the calls buffered now: calls that finish meanwhile wait for the next flush,
    // so a steady stream of them cannot keep this one from shipping.
    let remaining = this.#calls.length;
    while (remaining > 0 && this.#calls.length > 0) {
      remaining -= this.#buildFor(BUILD_SLICE_MS, remaining);
      if (remaining > 0 && this.#calls.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Builds the entries of at most `maxCalls` buffered calls, oldest first, stopping once
   * `budgetMs` has passed; returns how many calls it took off the buffer.
   */
  #buildFor(budgetMs: number, maxCalls: number): number {
    const started = performance.now();
    const calls = this.#calls;
    const count = Math.min(maxCalls, calls.length);
    let taken = 0;
    while (taken < count) {
      const { call, legs } = calls[taken]!;
      taken += 1;
      this.#callEntries -= legs;
      const before = this.#pending.length;
      try {
        buildCallEntryTexts(call, this.#deps, this.#pending);
      } catch (error) {
        this.#pending.length = before; // none of a call's entries, rather than some
        this.#drop(legs, 'rejected');
        this.#logger.error({ err: error, correlationId: call.correlationId }, 'building the audit entries of a call failed');
      }
      if (performance.now() - started >= budgetMs) break;
    }
    calls.splice(0, taken);
    return taken;
  }

  /**
   * Builds the calls buffered now on the worker, a chunk at a time. False when the worker
   * became unavailable: the calls it had not built are back at the head of the buffer
   * for the event loop.
   */
  async #buildInWorker(worker: EntryBuilderWorker): Promise<boolean> {
    let remaining = this.#calls.length;
    while (remaining > 0) {
      // At most WORKER_CHUNK_CALLS calls, and about WORKER_CHUNK_CHARS of their texts (a
      // call with large bodies may go alone): the worker's heap is small on purpose.
      let count = 0;
      let chars = 0;
      while (count < remaining && count < WORKER_CHUNK_CALLS && (count === 0 || chars < WORKER_CHUNK_CHARS)) {
        const { call } = this.#calls[count]!;
        chars += (call.requestText?.length ?? 0) + (call.responseBody?.length ?? 0);
        count += 1;
      }
      const taken = this.#calls.splice(0, count);
      remaining -= taken.length;
      let building = 0;
      for (const { legs } of taken) building += legs;
      this.#callEntries -= building;
      this.#buildingEntries += building;
      const facts: CallFacts[] = [];
      const owners: { readonly call: AuditedCall; readonly legs: number }[] = [];
      for (const item of taken) {
        const one = callFacts(item.call);
        if (one) {
          facts.push(one);
          owners.push(item);
        }
      }
      try {
        if (facts.length === 0) continue;
        const reply = await worker.build(facts);
        for (const texts of reply.texts) for (const text of texts) this.#pending.push(text);
        for (const { index, message } of reply.failed) {
          this.#drop(owners[index]!.legs, 'rejected');
          this.#logger.error({ err: { message }, correlationId: owners[index]!.call.correlationId }, 'building the audit entries of a call failed');
        }
      } catch (error) {
        if (!(error instanceof EntryWorkerUnavailable)) throw error;
        if (this.#closed) return true; // counted as dropped by close()
        this.#calls.unshift(...taken);
        this.#callEntries += building;
        return false;
      } finally {
        this.#buildingEntries -= building;
      }
    }
    return true;
  }

  #dispatch(): void {
    while (this.#inFlight < this.#concurrency && this.#pending.length > 0 && Date.now() >= this.#retryAt) {
      const count = this.#batchSize();
      void this.#send(this.#pending.splice(0, count));
    }
  }

  /** How many of the pending entries the next batch takes. */
  #batchSize(): number {
    let count = 0;
    let bytes = 0;
    const limit = Math.min(this.#batchLimit, this.#pending.length);
    while (count < limit) {
      bytes += this.#pending[count]!.length + 1;
      if (count > 0 && bytes > this.#maxBatchBytes) break;
      count++;
    }
    return count;
  }

  async #send(texts: string[]): Promise<void> {
    this.#inFlight += 1;
    this.#inFlightEntries += texts.length;
    const reported = this.#droppedUnreported;
    let requeue: string[] = [];
    // As `JSON.stringify` would write the batch, from the entries' own JSON.
    const body = `{"formatVersion":${AUDIT_FORMAT_VERSION},"entries":[${texts.join(',')}]${reported > 0 ? `,"droppedEntries":${reported}` : ''}}`;
    try {
      await this.#transport.send({ body, entries: texts.length });
      this.#droppedUnreported -= reported;
      this.stats.shipped += texts.length;
      this.#metrics.shipped.inc(texts.length);
      this.#failures = 0;
      this.#batchLimit = Math.min(this.#batchEntries, this.#batchLimit * 2);
    } catch (caught) {
      const error = caught instanceof AuditShipError ? caught : new AuditShipError('INTERNAL', caught instanceof Error ? caught.message : String(caught), { retriable: true });
      const { retriable, status, index, field } = error.details;
      if (retriable) {
        requeue = texts;
        this.stats.failures += 1;
        this.#metrics.shipFailures.inc();
        const delay = Math.max(this.#nextDelay(), error.details.retryAfterMs ?? 0);
        this.#retryAt = Date.now() + delay;
        clearTimeout(this.#retryTimer);
        this.#retryTimer = setTimeout(() => void this.#pump(), delay);
        this.#retryTimer.unref();
        this.#warn('retry', `shipping audit entries failed; retrying in ${delay} ms: ${error.message}`, { buffered: this.buffered() });
      } else if (status === 400 && index !== undefined && index >= 0 && index < texts.length) {
        this.#drop(1, 'rejected');
        const refused = JSON.parse(texts[index]!) as Pick<AuditEntry, 'correlationId' | 'leg'>;
        this.#logger.error({ field, correlationId: refused.correlationId, leg: refused.leg }, `the control plane refused an audit entry; dropped it: ${error.message}`);
        requeue = texts.filter((_, i) => i !== index);
      } else if (status === 413 && texts.length > 1) {
        this.#batchLimit = Math.max(1, Math.floor(texts.length / 2));
        requeue = texts;
      } else {
        this.#drop(texts.length, 'rejected');
        this.#logger.error({ status, entries: texts.length }, `the control plane refused a batch of audit entries; dropped it: ${error.message}`);
      }
    } finally {
      this.#inFlight -= 1;
      this.#inFlightEntries -= texts.length;
      if (requeue.length > 0) this.#pending.unshift(...requeue);
    }
    if (this.#pending.length > 0 && Date.now() >= this.#retryAt) this.#schedule();
    for (const resolve of [...this.#idle]) {
      this.#idle.delete(resolve);
      resolve();
    }
  }

  /** Exponential backoff with equal jitter: half the step fixed, half random. */
  #nextDelay(): number {
    const step = Math.min(this.#maxDelayMs, this.#initialDelayMs * 2 ** Math.min(this.#failures, 30));
    this.#failures += 1;
    return Math.round(step / 2 + this.#random() * (step / 2));
  }

  #drop(entries: number, reason: AuditDropReason): void {
    if (entries <= 0) return;
    this.stats.dropped += entries;
    this.#droppedUnreported += entries;
    this.#metrics.dropped.inc({ reason }, entries);
  }

  /** A warning at most every 10 s per kind, saying how many were suppressed meanwhile. */
  #warn(kind: string, message: string, extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    const last = this.#warned.get(kind);
    if (last && now - last.at < 10_000) {
      last.suppressed += 1;
      return;
    }
    this.#warned.set(kind, { at: now, suppressed: 0 });
    this.#logger.warn({ ...extra, dropped: this.stats.dropped, suppressedSinceLastWarning: last?.suppressed ?? 0 }, message);
  }
}

/**
 * The shipper both launch paths use: batches POSTed to the control plane's
 * `/ingest/audit` with the data-plane token.
 */
export function controlPlaneAuditShipper(options: {
  readonly url: string | (() => string);
  readonly token: string;
  readonly logger?: DataPlaneLogger;
  readonly maxBufferedEntries?: number;
  /** `GATEHOUSE_AUDIT_BUILD_ON`; default the event loop. */
  readonly buildOn?: 'event-loop' | 'worker' | undefined;
}): AuditShipper {
  return new AuditShipper({
    transport: httpAuditTransport({ url: options.url, token: options.token }),
    ...(options.buildOn ? { buildOn: options.buildOn } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.maxBufferedEntries === undefined ? {} : { maxBufferedEntries: options.maxBufferedEntries }),
  });
}
