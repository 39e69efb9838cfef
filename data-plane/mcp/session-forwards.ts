/**
 * What a replica hands to the others when a client message is about a call it does not
 * hold: the call's SSE response stream is open on the replica that got the request, and a
 * load balancer may send the client's next POST anywhere. Named by session tag (the id's
 * last segment), which the forwarding replica took from a session id it verified: a client
 * can only reach its own session's calls.
 */
export type ForwardedSessionMessage =
  /** `notifications/cancelled` for a call in flight elsewhere. */
  | { readonly kind: 'cancel'; readonly tag: string; readonly requestId: string | number; readonly reason?: string }
  /** The client's answer to a server-to-client request relayed by another replica. */
  | { readonly kind: 'answer'; readonly tag: string; readonly id: string; readonly result?: unknown; readonly error?: unknown }
  /**
   * A notification for a session's GET stream (`resources/updated` of a subscription made
   * here) that no stream on this replica carries: the replica holding the session's open
   * GET stream sends it.
   */
  | { readonly kind: 'session-notify'; readonly tag: string; readonly method: string; readonly params?: Record<string, unknown> }
  /**
   * An upstream of these gateways changed a list (`notifications/<type>/list_changed` as
   * the gateway relays it): every replica tells the sessions of those gateways whose GET
   * streams it holds, also the replicas with no upstream session of their own to it.
   */
  | { readonly kind: 'list-changed'; readonly gateways: readonly string[]; readonly method: string; readonly from: string }
  /** The session unsubscribed from a resource through this replica: a replica holding the subscription drops it. */
  | { readonly kind: 'session-unsubscribe'; readonly tag: string; readonly uri: string }
  /** A client resumes a call's stream (`Last-Event-ID` after `after`) on replica `from`; the replica holding it answers. */
  | { readonly kind: 'stream-resume'; readonly tag: string; readonly stream: string; readonly after: number; readonly from: string }
  /** Stream traffic between the replica holding a call's stream and the one carrying it to the client (see `call-streams-shared.ts`). */
  | StreamForward;

/**
 * Between two replicas about one resumed call stream: `to` is the replica the message is
 * for. From the holder: `attached` (it holds the stream and will send the rest), `event`
 * (one message with its event id), `end` (the stream is over; close the client's
 * response). From the carrier: `left` (the client's connection closed).
 */
export type StreamForward =
  | { readonly kind: 'stream-attached'; readonly to: string; readonly stream: string; readonly from: string }
  | { readonly kind: 'stream-event'; readonly to: string; readonly stream: string; readonly id: string; readonly data: string }
  | { readonly kind: 'stream-end'; readonly to: string; readonly stream: string }
  | { readonly kind: 'stream-left'; readonly to: string; readonly stream: string; readonly from: string };

/** How forwarded messages reach every replica (Redis: `session-state-redis.ts`). Nothing is stored: a message no replica holds a call for is dropped. */
export interface SharedSessionForwards {
  /** Never throws (a failure is logged; the message is lost as it would be without sharing). */
  publishForward(message: ForwardedSessionMessage): Promise<void>;
  subscribeForwards(onMessage: (message: ForwardedSessionMessage) => void): void;
}

/** A forwarded message as read back from the wire; undefined when it is not one. */
export function readForwardedMessage(text: string): ForwardedSessionMessage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  if (typeof m.stream === 'string' && typeof m.to === 'string') return readStreamForward(m, m.to, m.stream);
  if (m.kind === 'list-changed') {
    const gateways = m.gateways;
    if (!Array.isArray(gateways) || !gateways.every((id) => typeof id === 'string') || typeof m.method !== 'string' || !m.method.endsWith('/list_changed') || typeof m.from !== 'string') return undefined;
    return { kind: 'list-changed', gateways: gateways as string[], method: m.method, from: m.from };
  }
  if (typeof m.tag !== 'string' || m.tag === '') return undefined;
  if (m.kind === 'session-notify' && typeof m.method === 'string') {
    const params = m.params;
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) return undefined;
    return { kind: 'session-notify', tag: m.tag, method: m.method, ...(params === undefined ? {} : { params: params as Record<string, unknown> }) };
  }
  if (m.kind === 'session-unsubscribe' && typeof m.uri === 'string') return { kind: 'session-unsubscribe', tag: m.tag, uri: m.uri };
  if (m.kind === 'stream-resume' && typeof m.stream === 'string' && typeof m.from === 'string' && Number.isSafeInteger(m.after) && (m.after as number) >= 0) {
    return { kind: 'stream-resume', tag: m.tag, stream: m.stream, after: m.after as number, from: m.from };
  }
  if (m.kind === 'cancel' && (typeof m.requestId === 'string' || typeof m.requestId === 'number')) {
    return { kind: 'cancel', tag: m.tag, requestId: m.requestId, ...(typeof m.reason === 'string' ? { reason: m.reason } : {}) };
  }
  if (m.kind === 'answer' && typeof m.id === 'string') {
    return { kind: 'answer', tag: m.tag, id: m.id, ...('result' in m ? { result: m.result } : {}), ...('error' in m ? { error: m.error } : {}) };
  }
  return undefined;
}

function readStreamForward(m: Record<string, unknown>, to: string, stream: string): StreamForward | undefined {
  switch (m.kind) {
    case 'stream-attached':
      return typeof m.from === 'string' ? { kind: 'stream-attached', to, stream, from: m.from } : undefined;
    case 'stream-end':
      return { kind: 'stream-end', to, stream };
    case 'stream-event':
      return typeof m.id === 'string' && typeof m.data === 'string' ? { kind: 'stream-event', to, stream, id: m.id, data: m.data } : undefined;
    case 'stream-left':
      return typeof m.from === 'string' ? { kind: 'stream-left', to, stream, from: m.from } : undefined;
    default:
      return undefined;
  }
}
