import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { FeatureType } from '../../schema/snapshot/index.js';
import { JSON_RPC_ERRORS, RpcError } from './json-rpc.js';

/** Where a page starts, as a cursor carries it. */
interface CursorClaims {
  /** Feature type the cursor lists. */
  readonly t: FeatureType;
  /** Gateway id. */
  readonly g: string;
  /** Snapshot version the list was built from. */
  readonly v: number;
  /** Digest of the merged list's names, in order. */
  readonly h: string;
  /** Offset of the page's first item. */
  readonly o: number;
}

/** One page of a merged list and the cursor of the next, if any. */
export interface ListPage<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | undefined;
}

/** Which list a cursor is for. */
export interface ListWhere {
  readonly featureType: FeatureType;
  readonly gatewayId: string;
  readonly snapshotVersion: number;
}

/** How long, and how many, merged lists a replica keeps for the next pages of clients paging through them. */
export interface KeptListLimits {
  /** Milliseconds a kept list serves next pages after it was built (default 30 s). */
  readonly ttlMs: number;
  /** Lists kept at once, least recently built dropped first (default 16). */
  readonly maxLists: number;
  /** Items of all kept lists together, the bound on their memory (default 20,000; a longer list is not kept). */
  readonly maxItems: number;
}

export const DEFAULT_KEPT_LISTS: KeptListLimits = { ttlMs: 30_000, maxLists: 16, maxItems: 20_000 };

interface KeptList {
  readonly items: readonly unknown[];
  /** What the caller kept with the list (the upstreams left out of it). */
  readonly extra: unknown;
  readonly expiresAt: number;
}

const VERSION_TAG = 'c1';
const MAC_BYTES = 16;

/**
 * Gateway-side pagination of merged lists (`tools/list`, `prompts/list`,
 * `resources/list`, `resources/templates/list`). The data plane keeps no state, so a
 * cursor carries where the next page starts: `c1.<base64url claims>.<base64url mac>`
 * with the feature type, gateway, snapshot version, a digest of the merged list's names
 * and the offset, HMAC-SHA256 signed with a key derived once from the session secret
 * (every replica holding it accepts every cursor).
 *
 * The replica that served a first page keeps the merged list a short while
 * ({@link KeptListLimits}) and serves the next pages from it ({@link resume}): no fan-out
 * per page, and one consistent list however the upstreams answer meanwhile. Elsewhere
 * (another replica, or once it expired) the next page lists again and checks the digest:
 * a list that changed in between (new snapshot, an upstream's list changed or answered
 * differently) makes the cursor invalid rather than skipping or repeating items.
 * Any cursor not issued here, for another gateway or type, or stale gets -32602.
 */
export class ListPager {
  private readonly key: Buffer;
  /** Merged lists by `gateway, type, snapshot version, digest`, oldest first. */
  readonly #kept = new Map<string, KeptList>();
  #keptItems = 0;

  constructor(
    secret: string,
    /** Items per page. */
    readonly pageSize: number,
    private readonly keptLists: KeptListLimits = DEFAULT_KEPT_LISTS,
    private readonly clock: () => number = Date.now,
  ) {
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new TypeError(`list page size must be a positive integer, got ${pageSize}`);
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'gatehouse-list-cursor', VERSION_TAG, 32));
  }

  /**
   * The page a cursor points at, from the list this replica kept when it issued the
   * cursor, and what was kept with it; undefined when it keeps none (list again, then
   * {@link page}). Throws {@link RpcError} (-32602) for a cursor that is not valid here.
   */
  resume<T>(cursor: unknown, where: ListWhere): { readonly page: ListPage<T>; readonly extra: unknown } | undefined {
    if (cursor === undefined) return undefined;
    const claims = this.claimsFor(cursor, where);
    const key = keptKey(where, claims.h);
    const kept = this.#kept.get(key);
    if (!kept) return undefined;
    if (kept.expiresAt <= this.clock()) {
      this.forget(key);
      return undefined;
    }
    if (claims.o > kept.items.length) throw changed(where);
    return { page: this.slice(kept.items as readonly T[], where, claims.h, claims.o), extra: kept.extra };
  }

  /**
   * The page of `items` the cursor points at (the first page without one). `names`
   * gives each item's exposed name, for the list digest. Throws {@link RpcError}
   * (-32602) for a cursor that is not valid for this list.
   */
  page<T>(items: readonly T[], names: (item: T) => string, where: ListWhere, cursor: unknown, extra?: unknown): ListPage<T> {
    // The common case, one page and no cursor, skips the digest.
    if (cursor === undefined && items.length <= this.pageSize) return { items, nextCursor: undefined };
    const claims = cursor === undefined ? undefined : this.claimsFor(cursor, where);
    const digest = listDigest(items, names);
    if (claims && (claims.h !== digest || claims.o > items.length)) throw changed(where);
    const page = this.slice(items, where, digest, claims?.o ?? 0);
    if (page.nextCursor !== undefined) this.keep(where, digest, items, extra);
    return page;
  }

  /** Lists kept now (expired ones included until they are looked up or pushed out). */
  get keptCount(): number {
    return this.#kept.size;
  }

  private slice<T>(items: readonly T[], where: ListWhere, digest: string, offset: number): ListPage<T> {
    const end = offset + this.pageSize;
    const nextCursor =
      end < items.length ? this.encode({ t: where.featureType, g: where.gatewayId, v: where.snapshotVersion, h: digest, o: end }) : undefined;
    return { items: items.slice(offset, end), nextCursor };
  }

  private keep(where: ListWhere, digest: string, items: readonly unknown[], extra: unknown): void {
    const limits = this.keptLists;
    if (limits.maxLists < 1 || items.length > limits.maxItems) return;
    const key = keptKey(where, digest);
    this.forget(key); // re-inserted last: the newest
    this.#kept.set(key, { items, extra, expiresAt: this.clock() + limits.ttlMs });
    this.#keptItems += items.length;
    while (this.#kept.size > limits.maxLists || this.#keptItems > limits.maxItems) this.forget(this.#kept.keys().next().value!);
  }

  private forget(key: string): void {
    const kept = this.#kept.get(key);
    if (!kept) return;
    this.#kept.delete(key);
    this.#keptItems -= kept.items.length;
  }

  /** A cursor's claims, checked against the list asked for; throws -32602 otherwise. */
  private claimsFor(cursor: unknown, where: ListWhere): CursorClaims {
    if (typeof cursor !== 'string') throw invalid('params.cursor must be a string');
    const claims = this.decode(cursor);
    if (!claims || claims.t !== where.featureType || claims.g !== where.gatewayId) throw invalid(`the cursor is not a cursor of this gateway's ${LIST_METHODS[where.featureType]}`);
    if (claims.v !== where.snapshotVersion) throw changed(where);
    return claims;
  }

  private encode(claims: CursorClaims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${VERSION_TAG}.${payload}.${this.mac(payload).toString('base64url')}`;
  }

  private decode(cursor: string): CursorClaims | undefined {
    const parts = cursor.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION_TAG) return undefined;
    const given = Buffer.from(parts[2]!, 'base64url');
    const expected = this.mac(parts[1]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      const raw = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Partial<CursorClaims>;
      if (typeof raw.t !== 'string' || typeof raw.g !== 'string' || typeof raw.v !== 'number' || typeof raw.h !== 'string' || !Number.isInteger(raw.o) || raw.o! < 0) {
        return undefined;
      }
      return raw as CursorClaims;
    } catch {
      return undefined;
    }
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest().subarray(0, MAC_BYTES);
  }
}

const LIST_METHODS: { readonly [T in FeatureType]: string } = {
  tools: 'tools/list',
  prompts: 'prompts/list',
  resources: 'resources/list',
  resourceTemplates: 'resources/templates/list',
};

function listDigest<T>(items: readonly T[], names: (item: T) => string): string {
  const hash = createHash('sha256');
  for (const item of items) hash.update(names(item)).update('\u0000');
  return hash.digest('base64url').slice(0, 22);
}

function keptKey(where: ListWhere, digest: string): string {
  return `${where.gatewayId}\u0000${where.featureType}\u0000${where.snapshotVersion}\u0000${digest}`;
}

function changed(where: ListWhere): RpcError {
  return invalid(`the list changed since this cursor was issued; call ${LIST_METHODS[where.featureType]} again without a cursor`);
}

function invalid(message: string): RpcError {
  return new RpcError(JSON_RPC_ERRORS.INVALID_PARAMS, message, { code: 'INVALID_CURSOR' });
}
