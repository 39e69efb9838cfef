import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

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
  /** [audit] `clientInfo` of initialize (name and version, cut to 64 characters each). */
  readonly clientInfo?: ClientInfo;
}

/** [audit] Who the client says it is, as recorded in audit entries. */
export interface ClientInfo {
  readonly name: string;
  readonly version: string;
}

/** [audit] `initialize`'s `clientInfo` cut to what a session id carries; undefined when absent or malformed. */
export function clientInfoOf(value: unknown): ClientInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { name, version } = value as { name?: unknown; version?: unknown };
  if (typeof name !== 'string' || name === '') return undefined;
  return { name: name.slice(0, 64), version: typeof version === 'string' ? version.slice(0, 64) : '' };
}

/** The client capabilities that matter to relaying server-to-client requests. */
export interface RelayedClientCapabilities {
  readonly sampling: boolean;
  /** Form-mode elicitation (what `elicitation: {}` declares). */
  readonly elicitation: boolean;
  /** URL-mode elicitation (2025-11-25: `elicitation: { url: {} }`). */
  readonly elicitationUrl?: boolean;
  readonly roots: boolean;
}

const CAPABILITY_LETTERS = { sampling: 's', elicitation: 'e', elicitationUrl: 'u', roots: 'r' } as const;

/**
 * Reads the relayed capabilities out of an `initialize` request's `capabilities`. An
 * `elicitation` object with neither `form` nor `url` declares form mode only (the spec's
 * reading, for clients older than URL mode).
 */
export function relayedCapabilities(declared: unknown): RelayedClientCapabilities {
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
  const record = isObject(declared) ? declared : {};
  const elicitation = isObject(record.elicitation) ? record.elicitation : undefined;
  const form = elicitation !== undefined && (isObject(elicitation.form) || !isObject(elicitation.url));
  const url = elicitation !== undefined && isObject(elicitation.url);
  return { sampling: isObject(record.sampling), elicitation: form, ...(url ? { elicitationUrl: true } : {}), roots: isObject(record.roots) };
}

/** Encrypted ids (issued). */
const VERSION_TAG = 'v2';
/** Signed-only ids issued before encryption: still verified until they expire, so an upgrade ends no session. */
const SIGNED_VERSION_TAG = 'v1';
const IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
/** Additional authenticated data of `v2` ids: the version, so an id cannot be replayed under another format. */
const AAD = Buffer.from(VERSION_TAG);
/** Verified session ids remembered per replica (each a few hundred bytes). */
const VERIFIED_CACHE_SIZE = 4096;

/**
 * Issues and verifies `Mcp-Session-Id`s that are self-contained, encrypted and
 * authenticated with AES-256-GCM: `v2.<base64url iv + ciphertext>.<base64url GCM tag>`.
 * No replica stores sessions, so any replica holding the same secret validates any
 * session. The claims (workspace, gateway and connection ids, the client's name) are not
 * secrets, but a client, its logs and every proxy on the way see the id: encrypted, they
 * learn nothing of the deployment from it. Keys are derived once (HKDF) at construction,
 * never per request, and a replica decrypts an id once (see `verified`).
 * `v1.<claims>.<HMAC-SHA256>` ids of earlier versions still verify until they expire.
 */
export class SessionIdCodec {
  /** HMAC-SHA256 key of `v1` ids. */
  private readonly key: Buffer;
  /** AES-256-GCM key of `v2` ids. */
  private readonly encryptionKey: Buffer;
  /**
   * Ids this replica already verified, with their claims: a session's later messages
   * skip the decryption and the decoding. Bounded (oldest out first); age is still checked on
   * every use, and ended sessions are checked by the caller.
   */
  private readonly verified = new Map<string, SessionClaims>();

  constructor(
    secret: string,
    /** Sessions older than this are unknown (404), so a client re-initializes. */
    private readonly maxAgeMs: number,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'gatehouse-session-id', SIGNED_VERSION_TAG, 32));
    this.encryptionKey = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'gatehouse-session-id', VERSION_TAG, 32));
  }

  issue(claims: Omit<SessionClaims, 'issuedAt'>, now: number): string {
    const capabilities = claims.clientCapabilities;
    const plain = Buffer.from(
      JSON.stringify({
        w: claims.workspaceId,
        g: claims.gatewayId,
        c: claims.connectionId,
        p: claims.protocolVersion,
        t: now,
        ...(capabilities
          ? { k: (Object.keys(CAPABILITY_LETTERS) as (keyof RelayedClientCapabilities)[]).filter((key) => capabilities[key]).map((key) => CAPABILITY_LETTERS[key]).join('') }
          : {}),
        ...(claims.clientInfo ? { i: [claims.clientInfo.name, claims.clientInfo.version] } : {}), // [audit]
      }),
    );
    // A random IV per id: two sessions of one connection opened in the same millisecond still differ.
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.encryptionKey, iv, { authTagLength: GCM_TAG_BYTES });
    cipher.setAAD(AAD);
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final()]);
    return `${VERSION_TAG}.${sealed.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
  }

  /** The claims of a genuine, unexpired id; undefined for anything else. */
  verify(sessionId: string, now: number): SessionClaims | undefined {
    const known = this.verified.get(sessionId);
    if (known) return this.fresh(known.issuedAt, now) ? known : undefined;
    const claims = this.decode(sessionId, now);
    if (claims) {
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(sessionId, claims);
    }
    return claims;
  }

  private fresh(issuedAt: number, now: number): boolean {
    return now - issuedAt <= this.maxAgeMs && issuedAt - now <= 60_000;
  }

  private decode(sessionId: string, now: number): SessionClaims | undefined {
    const parts = sessionId.split('.');
    if (parts.length !== 3) return undefined;
    const plain = parts[0] === VERSION_TAG ? this.open(parts[1]!, parts[2]!) : parts[0] === SIGNED_VERSION_TAG ? this.checkMac(parts[1]!, parts[2]!) : undefined;
    if (plain === undefined) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(plain.toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null) return undefined;
    const { w, g, c, p, t, k, i } = raw as Record<string, unknown>;
    if (typeof w !== 'string' || typeof g !== 'string' || typeof c !== 'string' || typeof p !== 'string' || typeof t !== 'number') {
      return undefined;
    }
    if (!this.fresh(t, now)) return undefined;
    const info = Array.isArray(i) && typeof i[0] === 'string' && typeof i[1] === 'string' ? { clientInfo: { name: i[0], version: i[1] } } : {}; // [audit]
    const claims: SessionClaims = { workspaceId: w, gatewayId: g, connectionId: c, protocolVersion: p, issuedAt: t, ...info };
    if (typeof k !== 'string') return claims;
    return {
      ...claims,
      clientCapabilities: { sampling: k.includes('s'), elicitation: k.includes('e'), ...(k.includes('u') ? { elicitationUrl: true } : {}), roots: k.includes('r') },
    };
  }

  /** The plaintext of a `v2` id, or undefined when it was not sealed with this key (or was altered). */
  private open(sealedText: string, tagText: string): Buffer | undefined {
    const sealed = Buffer.from(sealedText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    if (sealed.length <= IV_BYTES || tag.length !== GCM_TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.encryptionKey, sealed.subarray(0, IV_BYTES), { authTagLength: GCM_TAG_BYTES });
      decipher.setAAD(AAD);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES)), decipher.final()]);
    } catch {
      return undefined;
    }
  }

  /** The claims text of a genuine `v1` id (signed, not encrypted). */
  private checkMac(payload: string, macText: string): Buffer | undefined {
    const given = Buffer.from(macText, 'base64url');
    const expected = createHmac('sha256', this.key).update(payload).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return Buffer.from(payload, 'base64url');
  }
}


/**
 * How ended sessions reach every replica (Redis: `session-state-redis.ts`). Endings are
 * named by the session id's tag (its signature segment: unique per id, useless without
 * the rest of the id) and carry when the id would expire anyway.
 */
export interface SharedSessionEndings {
  /** Tells every replica; never throws (a failure is logged, and the ending stays local). */
  publish(tag: string, expiresAt: number): Promise<void>;
  /** Starts delivering endings made on other replicas (and those made while this one was away). */
  subscribe(onEnded: (tag: string, expiresAt: number) => void): void;
  close(): Promise<void>;
}

/**
 * Session ids ended with DELETE, until they would have expired anyway. The check on every
 * message is a local map lookup. With `shared` (Redis), an ending is published to every
 * replica and each one adds it to its map as it arrives (pushed, not polled); without
 * it, a session ends only on the replica that got the DELETE.
 */
export class EndedSessions {
  /** Session tag (a flat copy, never a slice of a request's header) → epoch ms when the id expires anyway. */
  private readonly ended = new Map<string, number>();
  /**
   * When more than `capacity` sessions are ended and not yet expired, the oldest entries
   * are forgotten and this floor rises to the latest expiry forgotten: every id that
   * expires no later is treated as ended (those clients re-initialize after a 404), so
   * memory stays bounded and an ended session never comes back.
   */
  private expiryFloor = 0;
  private lastSweep = 0;

  constructor(
    private readonly maxAgeMs: number,
    private readonly shared?: SharedSessionEndings,
    private readonly clock: () => number = Date.now,
    /** Ended sessions remembered at most (~100 bytes each). Default 100,000. */
    private readonly capacity = 100_000,
  ) {
    shared?.subscribe((tag, expiresAt) => {
      this.remember(flat(tag), expiresAt);
      this.sweep(this.clock());
    });
  }

  /** Ends a session here at once and, when shared, on every replica. */
  async add(sessionId: string, issuedAt: number): Promise<void> {
    const tag = flat(sessionTag(sessionId));
    const expiresAt = issuedAt + this.maxAgeMs;
    this.remember(tag, expiresAt);
    await this.shared?.publish(tag, expiresAt);
  }

  /** Whether the session was ended; `issuedAt` (from its verified claims) also checks the floor. */
  has(sessionId: string, now: number, issuedAt?: number): boolean {
    if (issuedAt !== undefined && issuedAt + this.maxAgeMs <= this.expiryFloor) return true;
    const tag = sessionTag(sessionId);
    const until = this.ended.get(tag);
    if (until === undefined) return false;
    if (until < now) {
      this.ended.delete(tag);
      return false;
    }
    return true;
  }

  private remember(tag: string, expiresAt: number): void {
    this.ended.set(tag, expiresAt);
    while (this.ended.size > this.capacity) {
      const [oldest, until] = this.ended.entries().next().value!;
      this.ended.delete(oldest);
      if (until > this.expiryFloor) this.expiryFloor = until;
    }
  }

  /** Forgets entries past their expiry; runs at most once a minute (endings also arrive from other replicas). */
  sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [tag, until] of this.ended) if (until < now) this.ended.delete(tag);
  }

  get size(): number {
    return this.ended.size;
  }

  async close(): Promise<void> {
    await this.shared?.close();
  }
}

/** A copy of `text` that does not keep a longer string alive (V8 slices reference their parent). */
export function flat(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

/** The signature segment of a session id (the whole id when it has none): unique per id. */
export function sessionTag(sessionId: string): string {
  const dot = sessionId.lastIndexOf('.');
  return dot === -1 ? sessionId : sessionId.slice(dot + 1);
}
