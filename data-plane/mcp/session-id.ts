import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a session id carries, so any replica can serve any message of the session. */
export interface SessionClaims {
  readonly workspaceId: string;
  readonly gatewayId: string;
  /** The connection that initialized the session; a message from another connection is refused. */
  readonly connectionId: string;
  /** The negotiated protocol version. */
  readonly protocolVersion: string;
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  /**
   * What the client declared at initialize that the gateway relays requests for; a
   * server-to-client request of a kind the client did not declare is refused upstream.
   */
  readonly clientCapabilities?: RelayedClientCapabilities;
}

/** The client capabilities that matter to relaying server-to-client requests. */
export interface RelayedClientCapabilities {
  readonly sampling: boolean;
  readonly elicitation: boolean;
  readonly roots: boolean;
}

const CAPABILITY_LETTERS = { sampling: 's', elicitation: 'e', roots: 'r' } as const;

/** Reads the relayed capabilities out of an `initialize` request's `capabilities`. */
export function relayedCapabilities(declared: unknown): RelayedClientCapabilities {
  const record = typeof declared === 'object' && declared !== null ? (declared as Record<string, unknown>) : {};
  const has = (key: string) => typeof record[key] === 'object' && record[key] !== null;
  return { sampling: has('sampling'), elicitation: has('elicitation'), roots: has('roots') };
}

const VERSION_TAG = 'v1';

/**
 * Issues and verifies `Mcp-Session-Id`s that are self-contained and HMAC-SHA256 signed:
 * `v1.<base64url claims>.<base64url mac>`. No replica stores sessions, so any replica
 * holding the same secret validates any session. The key is derived once (HKDF) at
 * construction, never per request. The claims are ids, not secrets; they are signed,
 * not encrypted.
 */
export class SessionIdCodec {
  private readonly key: Buffer;

  constructor(
    secret: string,
    /** Sessions older than this are unknown (404), so a client re-initializes. */
    private readonly maxAgeMs: number,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'gatehouse-session-id', VERSION_TAG, 32));
  }

  issue(claims: Omit<SessionClaims, 'issuedAt'>, now: number): string {
    const capabilities = claims.clientCapabilities;
    const payload = Buffer.from(
      JSON.stringify({
        w: claims.workspaceId,
        g: claims.gatewayId,
        c: claims.connectionId,
        p: claims.protocolVersion,
        t: now,
        ...(capabilities
          ? { k: (Object.keys(CAPABILITY_LETTERS) as (keyof RelayedClientCapabilities)[]).filter((key) => capabilities[key]).map((key) => CAPABILITY_LETTERS[key]).join('') }
          : {}),
        // Two sessions of one connection opened in the same millisecond still differ.
        n: randomBytes(9).toString('base64url'),
      }),
    ).toString('base64url');
    return `${VERSION_TAG}.${payload}.${this.mac(payload)}`;
  }

  /** The claims of a genuine, unexpired id; undefined for anything else. */
  verify(sessionId: string, now: number): SessionClaims | undefined {
    const parts = sessionId.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION_TAG) return undefined;
    const payload = parts[1]!;
    const given = Buffer.from(parts[2]!, 'base64url');
    const expected = Buffer.from(this.mac(payload), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null) return undefined;
    const { w, g, c, p, t, k } = raw as Record<string, unknown>;
    if (typeof w !== 'string' || typeof g !== 'string' || typeof c !== 'string' || typeof p !== 'string' || typeof t !== 'number') {
      return undefined;
    }
    if (now - t > this.maxAgeMs || t - now > 60_000) return undefined;
    const claims: SessionClaims = { workspaceId: w, gatewayId: g, connectionId: c, protocolVersion: p, issuedAt: t };
    if (typeof k !== 'string') return claims;
    return { ...claims, clientCapabilities: { sampling: k.includes('s'), elicitation: k.includes('e'), roots: k.includes('r') } };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

/**
 * Session ids ended with DELETE on this replica, until they would have expired anyway.
 * Local only: ending a session everywhere needs a shared store (Redis), a later step.
 */
export class EndedSessions {
  private readonly ended = new Map<string, number>();

  constructor(private readonly maxAgeMs: number) {}

  add(sessionId: string, issuedAt: number): void {
    this.ended.set(sessionId, issuedAt + this.maxAgeMs);
  }

  has(sessionId: string, now: number): boolean {
    const until = this.ended.get(sessionId);
    if (until === undefined) return false;
    if (until < now) {
      this.ended.delete(sessionId);
      return false;
    }
    return true;
  }

  /** Forgets entries past their expiry; called on each DELETE, so it stays bounded by live sessions. */
  sweep(now: number): void {
    for (const [id, until] of this.ended) if (until < now) this.ended.delete(id);
  }
}
