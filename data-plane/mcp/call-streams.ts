import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { sessionTag } from './session-id.js';
import { SseStream } from './sse.js';

/** How POST streams of calls are kept resumable. */
export interface CallStreamOptions {
  /**
   * How long a call whose SSE stream lost its client keeps running for the client to
   * resume it (GET with `Last-Event-ID`); after that it is cancelled upstream. Also how long
   * an answer that found no client waits for one. Default 30 s.
   */
  readonly resumeGraceMs: number;
  /** A call still unanswered after this long starts its SSE stream (a priming event), so its client can resume it. 0: only when a message comes. Default 5 s. */
  readonly primeAfterMs: number;
  /** The `retry` (ms) of the priming event: how soon clients reconnect. Default 1 s, and never more than a third of `resumeGraceMs` (a client must be back before its call is given up). */
  readonly retryMs: number;
  /** Events of one stream kept for replay; the oldest are dropped beyond it. Default 256. */
  readonly bufferEvents: number;
}

export const DEFAULT_CALL_STREAMS: CallStreamOptions = { resumeGraceMs: 30_000, primeAfterMs: 5_000, retryMs: 1_000, bufferEvents: 256 };

/** Event ids of POST streams are `p.<stream>.<seq>`; GET-stream ids (`session-streams.ts`) never start with `p.`. */
const ID_PREFIX = 'p.';

/** The stream and sequence number of a call stream's event id; undefined for anything else. */
export function parseEventId(eventId: string): { readonly stream: string; readonly seq: number } | undefined {
  if (!eventId.startsWith(ID_PREFIX)) return undefined;
  const dot = eventId.lastIndexOf('.');
  const seq = Number(eventId.slice(dot + 1));
  if (dot <= ID_PREFIX.length || !/^\d+$/.test(eventId.slice(dot + 1)) || !Number.isSafeInteger(seq)) return undefined;
  return { stream: eventId.slice(0, dot), seq };
}

/** What a call's relay writes to (`CallRegistry.relay`): the call's stream, whichever response carries it now. */
export interface CallStreamSink {
  /** False once the call's stream ended (answered, cancelled, or its client never came back). */
  readonly isOpen: boolean;
  send(message: string): void;
  /** Called once when the call's stream ends for good (not when a client connection drops and may resume). */
  onClose(listener: () => void): void;
  /** Closes the client's connection, keeping the call, for the client to poll the rest (SEP-1699). */
  pause(): void;
}

/** Told when a stream starts (it may outlive its POST response from then on) and once when it ends for good. */
export interface CallStreamLifecycle {
  started(): void;
  /** `delivered`: the stream's end (its answer, or the end of a cancelled stream) reached a client connection. */
  settled(delivered: boolean): void;
}

/**
 * What carries a call's stream to its client now: the SSE response of the POST or of a
 * resuming GET on this replica, or another replica's (`call-streams-shared.ts`).
 */
export interface StreamTarget {
  prime(eventId: string, retryMs: number): void;
  send(message: string, eventId: string): void;
  finish(message: string, eventId: string): void;
  end(): void;
  release(): void;
  onClose(listener: () => void): void;
}

interface StreamEvent {
  readonly seq: number;
  readonly data: string;
}

/**
 * The SSE stream of one call (`tools/call`, `prompts/get`, `resources/read`) as the client
 * sees it, across the HTTP responses that carry it: the POST's own, then, after the
 * connection dropped, the GET the client resumes it with (`Last-Event-ID`).
 *
 * Deferred like {@link SseStream}: a call answered before anything else is sent and before
 * `primeAfterMs` is answered with plain JSON. Once started, the stream opens with a priming
 * event (an id, `retry`, empty data) and every message carries an id, so the client can
 * resume from any point. A client connection that drops does not cancel the call (the spec:
 * disconnection is not cancellation); messages are kept (`bufferEvents`) while no
 * connection carries the stream, and the call is cancelled only when no client resumed it
 * within `resumeGraceMs`. A stream that never started has nothing to resume from: its
 * connection dropping cancels the call at once, as before.
 */
export class CallStream implements CallStreamSink {
  /** `p.<random>`, drawn when the stream starts (most calls answer as JSON and need none). */
  #id = '';
  #seq = 0;
  readonly #events: StreamEvent[] = [];
  /** The response carrying the stream now; undefined while the client is away. */
  #target: StreamTarget | undefined;
  #started = false;
  #ended = false;
  #settled = false;
  #primeTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  readonly #closeListeners: (() => void)[] = [];
  readonly #abandonListeners: (() => void)[] = [];

  constructor(
    private readonly registry: CallStreams,
    readonly sessionId: string,
    res: ServerResponse,
    private readonly lifecycle?: CallStreamLifecycle,
  ) {
    this.#attach(new SseStream(res, {}, { deferred: true }));
    const primeAfter = registry.options.primeAfterMs;
    if (primeAfter > 0) {
      this.#primeTimer = setTimeout(() => this.#start(), primeAfter);
      this.#primeTimer.unref();
    }
  }

  get id(): string {
    return this.#id;
  }

  /** True once the client was sent SSE headers (the answer is this stream, not JSON). */
  get started(): boolean {
    return this.#started;
  }

  get isOpen(): boolean {
    return !this.#ended;
  }

  send(message: string): void {
    if (this.#ended) return;
    this.#start();
    const seq = (this.#seq += 1);
    this.#events.push({ seq, data: message });
    if (this.#events.length > this.registry.options.bufferEvents) this.#events.shift();
    this.#target?.send(message, this.#eventId(seq));
  }

  /** Sends the answer and ends the stream; with no client connected, keeps it `resumeGraceMs` for the client to fetch. */
  finish(message: string): void {
    if (this.#ended) return;
    this.#start();
    const seq = (this.#seq += 1);
    this.#events.push({ seq, data: message });
    this.#end();
    if (this.#target) {
      this.#target.finish(message, this.#eventId(seq));
      this.#settle(true);
    } else {
      this.#graceTimer = setTimeout(() => this.#settle(false), this.registry.options.resumeGraceMs);
      this.#graceTimer.unref();
    }
  }

  /** Ends the stream without an answer (the call was cancelled). */
  end(): void {
    if (this.#ended) return;
    const connected = this.#target !== undefined;
    this.#end();
    this.#target?.end();
    this.#settle(connected);
  }

  /** Gives up a stream that never started: the caller answers with JSON. */
  release(): void {
    if (this.#started) return;
    this.#end();
    this.#target?.release();
  }

  /**
   * Closes the client's connection, keeping the call: the client polls for the rest with
   * GET and `Last-Event-ID` (SEP-1699), as an upstream that paused its own stream asks.
   */
  pause(): void {
    if (this.#ended || !this.#target) return;
    this.#start();
    this.#target.end();
  }

  onClose(listener: () => void): void {
    if (this.#ended) listener();
    else this.#closeListeners.push(listener);
  }

  /** Called when the stream is given up with the call unanswered: no client resumed it in time. */
  onAbandon(listener: () => void): void {
    this.#abandonListeners.push(listener);
  }

  /** Whether the stream still holds everything after `afterSeq` (or has sent nothing after it). */
  canResumeAfter(afterSeq: number): boolean {
    const oldest = this.#events[0]?.seq ?? this.#seq + 1;
    // An id this stream never sent, or events after it that were dropped: it cannot be resumed there.
    return afterSeq <= this.#seq && !(afterSeq + 1 < oldest && afterSeq < this.#seq);
  }

  /** Carries the stream on `res` from the event after `afterSeq`; false when the stream has none of it left. */
  resume(res: ServerResponse, afterSeq: number): boolean {
    if (!this.canResumeAfter(afterSeq)) return false;
    const stream = new SseStream(res);
    stream.prime(this.#eventId(afterSeq), this.registry.options.retryMs);
    this.resumeOn(stream, afterSeq);
    return true;
  }

  /** Carries the stream on `target` from the event after `afterSeq` (checked with {@link canResumeAfter}). */
  resumeOn(target: StreamTarget, afterSeq: number): void {
    clearTimeout(this.#graceTimer);
    // A connection the client gave up on without our noticing yet: closed, not a drop.
    const previous = this.#target;
    this.#target = undefined;
    previous?.end();
    for (const event of this.#events) if (event.seq > afterSeq) target.send(event.data, this.#eventId(event.seq));
    if (this.#ended) {
      target.end();
      this.#settle(true);
      return;
    }
    this.#attach(target);
  }

  #eventId(seq: number): string {
    return `${this.#id}.${seq}`;
  }

  #start(): void {
    if (this.#started || this.#ended) return;
    this.#started = true;
    this.#id = `${ID_PREFIX}${randomBytes(9).toString('base64url').replaceAll('-', '_')}`;
    clearTimeout(this.#primeTimer);
    this.registry.track(this);
    this.lifecycle?.started();
    this.#target?.prime(this.#eventId(0), this.registry.options.retryMs);
  }

  #attach(stream: StreamTarget): void {
    this.#target = stream;
    stream.onClose(() => {
      if (this.#target !== stream) return;
      this.#target = undefined;
      if (this.#ended) return;
      if (!this.#started) return this.#abandon();
      this.#graceTimer = setTimeout(() => this.#abandon(), this.registry.options.resumeGraceMs);
      this.#graceTimer.unref();
    });
  }

  #abandon(): void {
    if (this.#ended) return;
    this.#end();
    this.#settle(false);
    for (const listener of this.#abandonListeners) listener();
  }

  /** The stream is over for good: no longer resumable here. */
  #settle(delivered: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#graceTimer);
    this.registry.forget(this);
    if (this.#started) this.lifecycle?.settled(delivered);
  }

  #end(): void {
    this.#ended = true;
    clearTimeout(this.#primeTimer);
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}

/**
 * The resumable call streams of this replica, by stream id: a stream is tracked from its
 * priming event until it was delivered whole, cancelled, or given up. A `GET` with the
 * `Last-Event-ID` of one of them ({@link resume}) carries the rest of it; another replica
 * does not know the stream (the client's GET then opens the session's own stream there).
 */
export class CallStreams {
  readonly options: CallStreamOptions;
  readonly #streams = new Map<string, CallStream>();

  constructor(options: Partial<CallStreamOptions> = {}) {
    const merged = { ...DEFAULT_CALL_STREAMS, ...options };
    this.options = { ...merged, retryMs: Math.max(1, Math.min(merged.retryMs, Math.floor(merged.resumeGraceMs / 3))) };
  }

  /** Streams tracked now. */
  get size(): number {
    return this.#streams.size;
  }

  /** A new call's stream on its POST response. */
  open(sessionId: string, res: ServerResponse, lifecycle?: CallStreamLifecycle): CallStream {
    return new CallStream(this, sessionId, res, lifecycle);
  }

  /** Whether a `Last-Event-ID` is a POST stream's (`p.…`). */
  static isCallStreamEventId(lastEventId: string): boolean {
    return lastEventId.startsWith(ID_PREFIX);
  }

  /** Resumes the session's stream that `lastEventId` belongs to on `res`; false when this replica holds no such stream. */
  resume(sessionId: string, lastEventId: string, res: ServerResponse): boolean {
    const at = parseEventId(lastEventId);
    const stream = at && this.#streams.get(at.stream);
    if (!at || !stream || stream.sessionId !== sessionId) return false;
    return stream.resume(res, at.seq);
  }

  /** The stream `id` of the session with tag `tag`, if this replica holds it. */
  held(id: string, tag: string): CallStream | undefined {
    const stream = this.#streams.get(id);
    return stream && sessionTag(stream.sessionId) === tag ? stream : undefined;
  }

  /** @internal */
  track(stream: CallStream): void {
    this.#streams.set(stream.id, stream);
  }

  /** @internal */
  forget(stream: CallStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
  }
}
