import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FeatureType } from '../../schema/snapshot/index.js';
import type { CompiledGateway, CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import type { RelayedMessage } from '../upstream/relay.js';
import type { SubscriptionHook } from './router.js';
import { sessionTag, type SessionClaims } from './session-id.js';
import type { SharedSessionForwards } from './session-forwards.js';
import { SseStream } from './sse.js';

export interface SessionStreamsOptions {
  /** Events kept per session for `Last-Event-ID` replay; older ones are dropped. */
  readonly bufferSize: number;
  /** A session with no open GET stream and no activity for this long is forgotten. */
  readonly idleMs: number;
  /** A gateway's sessions are told of list changes at most once per this many ms (plus one trailing notice); 0: every time. */
  readonly listChangedRepeatMs?: number;
}

/** One event of a session's GET stream: its SSE id and its JSON-RPC message. */
export interface SessionEvent {
  readonly id: string;
  readonly data: string;
}

/**
 * The GET-stream events of every session, kept where any replica can read them (Redis:
 * `session-state-redis.ts`), so a client whose stream dropped can reconnect through any
 * replica with `Last-Event-ID` and get what it missed.
 */
export interface SharedSessionEvents {
  /** Appends an event to the session's log, keeping the newest `max` for `keepMs`. Never throws (the event stays in this replica's buffer). */
  recordEvent(tag: string, event: SessionEvent, max: number, keepMs: number): Promise<void>;
  /** The session's logged events, oldest first; undefined when they cannot be read. */
  readEvents(tag: string): Promise<SessionEvent[] | undefined>;
  /** Drops the session's log (it ended). Never throws (the log expires anyway). */
  forgetEvents(tag: string): Promise<void>;
}

export const DEFAULT_SESSION_STREAMS: SessionStreamsOptions = { bufferSize: 256, idleMs: 10 * 60 * 1000, listChangedRepeatMs: 1_000 };

interface Subscription {
  readonly upstreamKey: string;
  readonly upstreamUri: string;
}

/** What this replica holds for one client session: its GET stream, recent events, subscriptions. */
class SessionChannel {
  /** Distinguishes this channel's event ids from an earlier one's (a restart, another replica). */
  readonly nonce = randomBytes(6).toString('base64url');
  /** The session's tag: what other replicas name it by. */
  readonly tag: string;
  readonly events: { readonly id: string; readonly seq: number; readonly data: string }[] = [];
  seq = 0;
  stream: SseStream | undefined;
  readonly subscriptions = new Map<string, Subscription>();

  constructor(
    sessionId: string,
    readonly gatewayId: string,
    readonly expiresAt: number,
    public lastActive: number,
  ) {
    this.tag = sessionTag(sessionId);
  }
}

/** What this replica's event ids look like (`<nonce>-<seq>`); a `Last-Event-ID` is echoed back only in this shape. */
const EVENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Upstream list-change notifications and the feature types (of an entry) they concern. */
const LIST_CHANGED: { readonly [method: string]: readonly FeatureType[] } = {
  'notifications/tools/list_changed': ['tools'],
  'notifications/prompts/list_changed': ['prompts'],
  'notifications/resources/list_changed': ['resources', 'resourceTemplates'],
};

/**
 * The server-to-client side of sessions on this replica: one GET SSE stream per session
 * (a second one gets 409), carrying the gateway's own `notifications/<type>/list_changed`
 * when any upstream of the session's gateway changes a list it serves, and
 * `notifications/resources/updated` (URI namespaced) for the session's subscriptions.
 * Every event gets an id; a client reconnecting with `Last-Event-ID` gets what it
 * missed from a bounded in-memory buffer, and with Redis from the session's shared log,
 * whichever replica it reconnects through (subscriptions stay on the replica that took
 * them; their updates reach the stream wherever it is).
 */
export class SessionStreams {
  private readonly channels = new Map<string, SessionChannel>();
  /** When each gateway's sessions were last told of a list change, by `gateway, method` (one per upstream change, however many replicas relay it). */
  private readonly listChangedAt = new Map<string, number>();
  /** A list change to tell once the second since the last one ends. */
  private readonly listChangedLater = new Map<string, NodeJS.Timeout>();
  /** This replica, so that its own relayed list changes are not told twice. */
  readonly replica = randomBytes(9).toString('base64url');

  constructor(
    private readonly options: SessionStreamsOptions,
    private readonly snapshot: () => CompiledSnapshot | undefined,
    /**
     * With Redis: a subscription's `resources/updated` for a session whose GET stream is on
     * another replica goes there, and an unsubscribe made elsewhere reaches the replica
     * holding the subscription. `unwatched` is told when no session here watches an
     * upstream URI any more (to unsubscribe the upstream session).
     */
    private readonly shared?: {
      readonly forwards: SharedSessionForwards;
      readonly unwatched: (upstreamKey: string, upstreamUri: string) => void;
      /** Every session's events, readable by every replica: a GET stream resumed through another replica replays what the client missed. */
      readonly events?: SharedSessionEvents;
    },
  ) {}

  get size(): number {
    return this.channels.size;
  }

  /**
   * Opens the session's GET stream, replaying the events after `lastEventId`: from the
   * shared log when there is one (whichever replica the client was on before, see
   * {@link missedEvents}), else from this replica's buffer. Resolves false (and writes
   * nothing) when the session already has an open stream.
   */
  async open(sessionId: string, claims: SessionClaims, maxAgeMs: number, res: ServerResponse, lastEventId: string | undefined, now: number): Promise<boolean> {
    const channel = this.channel(sessionId, claims, maxAgeMs, now);
    if (channel.stream?.isOpen) return false;
    const seqBefore = channel.seq;
    const logged = this.shared?.events ? await this.shared.events.readEvents(channel.tag) : undefined;
    // A second GET of the session may have opened the stream while the log was read, or
    // this one's client gone away (a stream on a closed response would never be told).
    if (channel.stream?.isOpen) return false;
    if (res.destroyed) return true;
    const stream = new SseStream(res);
    channel.stream = stream;
    stream.onClose(() => {
      if (channel.stream === stream) channel.stream = undefined;
      channel.lastActive = Date.now();
    });
    // A priming event with an id, so the client can resume even if nothing is sent: where it
    // resumed from (what follows is the replay), else where the session's log ends (any
    // replica finds it there), else where this buffer ends.
    const primingId = lastEventId !== undefined && EVENT_ID.test(lastEventId) ? lastEventId : logged?.length ? logged.at(-1)!.id : `${channel.nonce}-${channel.seq}`;
    res.write(`id: ${primingId}\ndata: \n\n`);
    const missed =
      lastEventId === undefined
        ? channel.events.filter((event) => event.seq > seqBefore) // pushed here while the log was read
        : logged
          ? missedEvents(logged, lastEventId, this.replay(channel, lastEventId))
          : this.replay(channel, lastEventId);
    for (const event of missed) stream.send(event.data, event.id);
    return true;
  }

  /** Forgets a session (DELETE): closes its stream. */
  end(sessionId: string): void {
    // Its log too: what an ended session was told has no reader left.
    void this.shared?.events?.forgetEvents(sessionTag(sessionId));
    const channel = this.channels.get(sessionId);
    if (!channel) return;
    this.channels.delete(sessionId);
    channel.stream?.end();
  }

  /** Subscriptions of one session, for the router. */
  subscriptions(sessionId: string, claims: SessionClaims, maxAgeMs: number, now: number): SubscriptionHook {
    return {
      add: (exposedUri, upstreamKey, upstreamUri) => {
        this.channel(sessionId, claims, maxAgeMs, now).subscriptions.set(exposedUri, { upstreamKey, upstreamUri });
      },
      remove: (exposedUri) => {
        this.channels.get(sessionId)?.subscriptions.delete(exposedUri);
        // The subscription may have been made through another replica: it drops it there.
        if (this.shared) void this.shared.forwards.publishForward({ kind: 'session-unsubscribe', tag: sessionTag(sessionId), uri: exposedUri });
        let remaining = 0;
        for (const channel of this.channels.values()) if (channel.gatewayId === claims.gatewayId && channel.subscriptions.has(exposedUri)) remaining += 1;
        return remaining;
      },
    };
  }

  /** The upstream URIs sessions on this replica are subscribed to through one upstream connection. */
  upstreamSubscriptions(upstreamKey: string): Set<string> {
    const uris = new Set<string>();
    for (const channel of this.channels.values()) {
      for (const subscription of channel.subscriptions.values()) if (subscription.upstreamKey === upstreamKey) uris.add(subscription.upstreamUri);
    }
    return uris;
  }

  /** A session-wide notification from an upstream connection: translated and queued for the sessions it concerns. */
  onUpstreamNotification(upstreamKey: string, notification: RelayedMessage): void {
    const compiled = this.snapshot();
    // Without sessions here there is nobody to tell, unless other replicas have some.
    if (!compiled || (this.channels.size === 0 && !this.shared)) return;
    const types = LIST_CHANGED[notification.method];
    if (types) {
      const gateways = gatewaysServing(compiled, upstreamKey, types);
      if (gateways.size === 0) return;
      // Here at once, and to the replicas whose sessions' GET streams are elsewhere (a replica
      // may have no upstream session of its own to tell it; they throttle what is relayed).
      this.listChanged(gateways, notification.method, false);
      if (this.shared) void this.shared.forwards.publishForward({ kind: 'list-changed', gateways: [...gateways], method: notification.method, from: this.replica });
      return;
    }
    if (notification.method === 'notifications/resources/updated') {
      const uri = notification.params?.uri;
      if (typeof uri !== 'string') return;
      for (const channel of this.channels.values()) {
        for (const [exposedUri, subscription] of channel.subscriptions) {
          if (subscription.upstreamKey === upstreamKey && subscription.upstreamUri === uri) {
            this.push(channel, { method: notification.method, params: { ...notification.params, uri: exposedUri } });
          }
        }
      }
    }
  }

  /** Another replica's upstream changed a list these gateways serve. */
  onSharedListChanged(gatewayIds: readonly string[], method: string, from: string): void {
    if (from !== this.replica && LIST_CHANGED[method]) this.listChanged(new Set(gatewayIds), method, true);
  }

  /**
   * Tells the sessions of these gateways on this replica that a list changed. What this
   * replica's own upstream sessions report is told at once. What other replicas relay
   * (`throttled`) is told at once unless a change was told within `listChangedRepeatMs`;
   * then once when that window ends, so none is lost, and the same change reported by
   * several replicas comes out as two notifications at most.
   */
  private listChanged(gateways: ReadonlySet<string>, method: string, throttled: boolean): void {
    const now = Date.now();
    const repeatMs = this.options.listChangedRepeatMs ?? 0;
    const fresh = new Set<string>();
    for (const gatewayId of gateways) {
      const key = `${gatewayId}\u0000${method}`;
      const last = this.listChangedAt.get(key);
      if (!throttled || last === undefined || now - last >= repeatMs) {
        this.listChangedAt.set(key, now);
        fresh.add(gatewayId);
      } else if (!this.listChangedLater.has(key)) {
        const timer = setTimeout(() => {
          this.listChangedLater.delete(key);
          this.listChanged(new Set([gatewayId]), method, true);
        }, repeatMs - (now - last));
        timer.unref();
        this.listChangedLater.set(key, timer);
      }
    }
    if (fresh.size === 0) return;
    for (const channel of this.channels.values()) if (fresh.has(channel.gatewayId)) this.push(channel, { method });
  }

  /** A notification another replica could not deliver: sent on the session's GET stream if it is open here. */
  onSharedNotify(tag: string, message: RelayedMessage): void {
    for (const channel of this.channels.values()) if (channel.tag === tag && channel.stream?.isOpen) this.push(channel, message);
  }

  /** The session unsubscribed through another replica: drops the subscription here, and the upstream's when nobody here watches it. */
  onSharedUnsubscribe(tag: string, exposedUri: string): void {
    for (const channel of this.channels.values()) {
      if (channel.tag !== tag) continue;
      const subscription = channel.subscriptions.get(exposedUri);
      if (!subscription) continue;
      channel.subscriptions.delete(exposedUri);
      if (!this.upstreamSubscriptions(subscription.upstreamKey).has(subscription.upstreamUri)) this.shared?.unwatched(subscription.upstreamKey, subscription.upstreamUri);
    }
  }

  close(): void {
    for (const channel of this.channels.values()) channel.stream?.end();
    this.channels.clear();
    for (const timer of this.listChangedLater.values()) clearTimeout(timer);
    this.listChangedLater.clear();
  }

  private channel(sessionId: string, claims: SessionClaims, maxAgeMs: number, now: number): SessionChannel {
    let channel = this.channels.get(sessionId);
    if (!channel) {
      this.sweep(now);
      channel = new SessionChannel(sessionId, claims.gatewayId, claims.issuedAt + maxAgeMs, now);
      this.channels.set(sessionId, channel);
    }
    channel.lastActive = now;
    return channel;
  }

  /**
   * Queues an event on the session's channel and in the shared log. A notification
   * forwarded from another replica is logged twice (there, and here with the id the client
   * gets): the client may resume from either, and a replay tells each subject once.
   */
  private push(channel: SessionChannel, message: RelayedMessage): void {
    channel.seq += 1;
    const event = {
      id: `${channel.nonce}-${channel.seq}`,
      seq: channel.seq,
      data: JSON.stringify({ jsonrpc: '2.0', method: message.method, ...(message.params ? { params: message.params } : {}) }),
    };
    channel.events.push(event);
    if (channel.events.length > this.options.bufferSize) channel.events.shift();
    const events = this.shared?.events;
    if (events) {
      const keepMs = Math.min(this.options.idleMs, channel.expiresAt - Date.now());
      if (keepMs > 0) void events.recordEvent(channel.tag, { id: event.id, data: event.data }, this.options.bufferSize, keepMs);
    }
    if (channel.stream?.isOpen) channel.stream.send(event.data, event.id);
    // A subscription's update for a session whose GET stream is not here: to the replica that has it.
    else if (this.shared && message.method === 'notifications/resources/updated') {
      void this.shared.forwards.publishForward({ kind: 'session-notify', tag: channel.tag, method: message.method, ...(message.params ? { params: message.params } : {}) });
    }
  }

  private replay(channel: SessionChannel, lastEventId: string | undefined): SessionChannel['events'] {
    if (lastEventId === undefined) return [];
    const dash = lastEventId.lastIndexOf('-');
    const nonce = lastEventId.slice(0, dash);
    const seq = Number(lastEventId.slice(dash + 1));
    // An id of another channel (another replica, a restart): everything held is new to the client.
    if (dash === -1 || nonce !== channel.nonce || !Number.isInteger(seq)) return [...channel.events];
    return channel.events.filter((event) => event.seq > seq);
  }

  private sweep(now: number): void {
    for (const [id, channel] of this.channels) {
      const idle = !channel.stream?.isOpen && now - channel.lastActive > this.options.idleMs;
      if (idle || channel.expiresAt < now) {
        channel.stream?.end();
        this.channels.delete(id);
      }
    }
  }
}

/**
 * What a client reconnecting with `lastEventId` missed, from the session's shared log: the
 * events logged after that id (all of them when the log no longer holds it), then those of
 * this replica's `local` replay the log lacks (pushed while it was read, or while Redis
 * was away). Several replicas log the same list change, and a resource may be updated
 * many times while the client is away; every event of the stream says "this changed, look
 * again", so each (method, URI) is replayed once, where it last occurred.
 */
export function missedEvents(logged: readonly SessionEvent[], lastEventId: string, local: readonly SessionEvent[]): SessionEvent[] {
  let from = 0;
  for (let i = logged.length - 1; i >= 0; i -= 1) {
    if (logged[i]!.id === lastEventId) {
      from = i + 1;
      break;
    }
  }
  const seen = new Set(logged.map((event) => event.id));
  const candidates = [...logged.slice(from), ...local.filter((event) => !seen.has(event.id))];
  const last = new Map<string, number>();
  candidates.forEach((event, i) => last.set(eventSubject(event.data), i));
  return candidates.filter((event, i) => last.get(eventSubject(event.data)) === i);
}

/** What an event is about: its method, and the resource URI for `resources/updated`. */
function eventSubject(data: string): string {
  try {
    const message = JSON.parse(data) as { method?: unknown; params?: { uri?: unknown } };
    return `${String(message.method)}\u0000${typeof message.params?.uri === 'string' ? message.params.uri : ''}`;
  } catch {
    return data;
  }
}

/** Ids of gateways with an enabled entry on this upstream that serves one of `types`. */
function gatewaysServing(compiled: CompiledSnapshot, upstreamKey: string, types: readonly FeatureType[]): Set<string> {
  const ids = new Set<string>();
  for (const gateway of compiled.gatewaysBySlug.values()) if (servesOn(gateway, upstreamKey, types)) ids.add(gateway.gateway.id);
  return ids;
}

function servesOn(gateway: CompiledGateway, upstreamKey: string, types: readonly FeatureType[]): boolean {
  return gateway.entries.some(
    (entry) =>
      entry.upstreamKey === upstreamKey &&
      entry.assignment.enabled &&
      types.some((type) => entry.assignment.features[type].some((feature) => feature.withheld === undefined)),
  );
}
