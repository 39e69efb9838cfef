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
  | { readonly kind: 'answer'; readonly tag: string; readonly id: string; readonly result?: unknown; readonly error?: unknown };

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
  if (typeof m.tag !== 'string' || m.tag === '') return undefined;
  if (m.kind === 'cancel' && (typeof m.requestId === 'string' || typeof m.requestId === 'number')) {
    return { kind: 'cancel', tag: m.tag, requestId: m.requestId, ...(typeof m.reason === 'string' ? { reason: m.reason } : {}) };
  }
  if (m.kind === 'answer' && typeof m.id === 'string') {
    return { kind: 'answer', tag: m.tag, id: m.id, ...('result' in m ? { result: m.result } : {}), ...('error' in m ? { error: m.error } : {}) };
  }
  return undefined;
}
