import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { DataPlaneLogger } from '../logger.js';
import { parseEventId, type CallStreams, type StreamTarget } from './call-streams.js';
import type { ForwardedSessionMessage, SharedSessionForwards, StreamForward } from './session-forwards.js';
import { SseStream } from './sse.js';

/** How long a replica asked to resume a stream it does not hold waits for the one that does. */
const DEFAULT_ATTACH_WAIT_MS = 2_000;

/** A resuming GET on this replica, carrying another replica's stream to the client. */
interface Carried {
  readonly res: ServerResponse;
  readonly lastEventId: string;
  readonly retryMs: number;
  /** Set once the holder answered. */
  stream?: SseStream;
  /** The replica holding the call. */
  holder?: string;
  attached(found: boolean): void;
}

/**
 * Resumption of call streams across replicas (with `REDIS_URL`). A client whose call's
 * stream dropped may resume it (`GET` + `Last-Event-ID`) through any replica. The replica
 * that gets the GET and does not hold the stream asks the others (`stream-resume`, with
 * the session tag it verified); the one holding it answers `stream-attached`, then sends
 * the events after the client's `Last-Event-ID` and every later one (`stream-event`) and
 * `stream-end` when the stream is over. The carrying replica writes them to the client's
 * response as its own SSE stream; when the client leaves again it says `stream-left`, and
 * the holder keeps the call for the grace period as after any dropped connection.
 *
 * Everything goes over the session-forward channel (Redis pub/sub: ordered per sender, at
 * most once). Nobody answering within `attachWaitMs` (no replica holds the stream, or
 * Redis is away): the GET is served as any other (the session's own stream).
 */
export class SharedCallStreams {
  /** This replica, as `to`/`from` of stream messages. */
  readonly replica = randomBytes(9).toString('base64url');
  /** GETs on this replica waiting for, or carrying, another replica's stream, by stream id. */
  readonly #carried = new Map<string, Carried>();
  /** Streams held here and carried by another replica: `stream, carrier` → the target. */
  readonly #serving = new Map<string, RemoteTarget>();

  constructor(
    private readonly streams: CallStreams,
    private readonly forwards: SharedSessionForwards,
    private readonly logger: DataPlaneLogger,
    private readonly attachWaitMs = DEFAULT_ATTACH_WAIT_MS,
  ) {}

  /** Carries the stream of `lastEventId` from the replica holding it; false when none answered (serve the GET otherwise). */
  async resume(tag: string, lastEventId: string, res: ServerResponse): Promise<boolean> {
    const at = parseEventId(lastEventId);
    if (!at || this.#carried.has(at.stream)) return false;
    const found = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.attachWaitMs);
      timer.unref();
      const carried: Carried = {
        res,
        lastEventId,
        retryMs: this.streams.options.retryMs,
        attached: (ok) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      this.#carried.set(at.stream, carried);
      void this.forwards.publishForward({ kind: 'stream-resume', tag, stream: at.stream, after: at.seq, from: this.replica });
    });
    if (!found) this.#carried.delete(at.stream);
    return found;
  }

  /** A forwarded message about a stream; false when it is not one (the caller handles it). */
  onMessage(message: ForwardedSessionMessage): boolean {
    if (message.kind === 'stream-resume') {
      this.#serve(message.tag, message.stream, message.after, message.from);
      return true;
    }
    if (!message.kind.startsWith('stream-')) return false;
    const forward = message as StreamForward;
    if (forward.to !== this.replica) return true;
    if (forward.kind === 'stream-left') {
      this.#serving.get(servingKey(forward.stream, forward.from))?.left();
      return true;
    }
    const carried = this.#carried.get(forward.stream);
    if (!carried) {
      // The holder answered after this replica gave up waiting: it must not count on a carrier.
      if (forward.kind === 'stream-attached') void this.forwards.publishForward({ kind: 'stream-left', to: forward.from, stream: forward.stream, from: this.replica });
      return true;
    }
    switch (forward.kind) {
      case 'stream-attached':
        carried.holder = forward.from;
        this.#open(forward.stream, carried);
        break;
      case 'stream-event':
        carried.stream?.send(forward.data, forward.id);
        break;
      case 'stream-end':
        this.#carried.delete(forward.stream);
        carried.stream?.end();
        break;
    }
    return true;
  }

  /** The holder's answer arrived: the client's response becomes the stream. */
  #open(id: string, carried: Carried): void {
    if (carried.stream) return;
    if (carried.res.destroyed) {
      // The client left while this replica waited for the holder.
      this.#carried.delete(id);
      if (carried.holder) void this.forwards.publishForward({ kind: 'stream-left', to: carried.holder, stream: id, from: this.replica });
      carried.attached(true);
      return;
    }
    const stream = new SseStream(carried.res);
    carried.stream = stream;
    stream.prime(carried.lastEventId, carried.retryMs);
    stream.onClose(() => {
      if (this.#carried.get(id) !== carried) return;
      this.#carried.delete(id);
      // The client left again: the holder keeps the call for its grace period.
      if (carried.holder) void this.forwards.publishForward({ kind: 'stream-left', to: carried.holder, stream: id, from: this.replica });
    });
    carried.attached(true);
  }

  /** Another replica asks for a stream: if it is held here, send it the rest. */
  #serve(tag: string, id: string, after: number, carrier: string): void {
    const stream = this.streams.held(id, tag);
    if (!stream || !stream.canResumeAfter(after)) return;
    const key = servingKey(id, carrier);
    const target = new RemoteTarget(this.forwards, carrier, id, () => this.#serving.delete(key));
    this.#serving.set(key, target);
    void this.forwards.publishForward({ kind: 'stream-attached', to: carrier, stream: id, from: this.replica });
    this.logger.debug({ stream: id }, 'a call stream held here is resumed through another replica');
    stream.resumeOn(target, after);
  }
}

function servingKey(stream: string, carrier: string): string {
  return `${stream}\u0000${carrier}`;
}

/** A call stream held here, carried to its client by another replica: every write is a forwarded message. */
class RemoteTarget implements StreamTarget {
  #open = true;
  readonly #listeners: (() => void)[] = [];

  constructor(
    private readonly forwards: SharedSessionForwards,
    private readonly to: string,
    private readonly stream: string,
    private readonly done: () => void,
  ) {}

  prime(): void {
    // The carrying replica primed its response when it attached.
  }

  release(): void {
    // Never deferred: a carried stream has started.
  }

  send(message: string, eventId: string): void {
    if (this.#open) void this.forwards.publishForward({ kind: 'stream-event', to: this.to, stream: this.stream, id: eventId, data: message });
  }

  finish(message: string, eventId: string): void {
    this.send(message, eventId);
    this.end();
  }

  end(): void {
    if (!this.#open) return;
    void this.forwards.publishForward({ kind: 'stream-end', to: this.to, stream: this.stream });
    this.#close();
  }

  /** The carrying replica's client left. */
  left(): void {
    this.#close();
  }

  onClose(listener: () => void): void {
    if (this.#open) this.#listeners.push(listener);
    else listener();
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.done();
    for (const listener of this.#listeners.splice(0)) listener();
  }
}
