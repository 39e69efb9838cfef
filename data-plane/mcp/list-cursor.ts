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

const VERSION_TAG = 'c1';
const MAC_BYTES = 16;

/**
 * Gateway-side pagination of merged lists (`tools/list`, `prompts/list`,
 * `resources/list`, `resources/templates/list`). The data plane keeps no state, so a
 * cursor carries where the next page starts: `c1.<base64url claims>.<base64url mac>`
 * with the feature type, gateway, snapshot version, a digest of the merged list's names
 * and the offset, HMAC-SHA256 signed with a key derived once from the session secret
 * (every replica holding it accepts every cursor). The next page lists again and checks
 * the digest: a list that changed in between (new snapshot, an upstream's list changed
 * or answered differently) makes the cursor invalid rather than skipping or repeating items.
 * Any cursor not issued here, for another gateway or type, or stale gets -32602.
 */
export class ListPager {
  private readonly key: Buffer;

  constructor(
    secret: string,
    /** Items per page. */
    readonly pageSize: number,
  ) {
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new TypeError(`list page size must be a positive integer, got ${pageSize}`);
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'gatehouse-list-cursor', VERSION_TAG, 32));
  }

  /**
   * The page of `items` the cursor points at (the first page without one). `names`
   * gives each item's exposed name, for the list digest. Throws {@link RpcError}
   * (-32602) for a cursor that is not valid for this list.
   */
  page<T>(
    items: readonly T[],
    names: (item: T) => string,
    where: { readonly featureType: FeatureType; readonly gatewayId: string; readonly snapshotVersion: number },
    cursor: unknown,
  ): ListPage<T> {
    if (cursor !== undefined && typeof cursor !== 'string') throw invalid('params.cursor must be a string');
    // The common case, one page and no cursor, skips the digest.
    if (cursor === undefined && items.length <= this.pageSize) return { items, nextCursor: undefined };
    const digest = listDigest(items, names);
    let offset = 0;
    if (cursor !== undefined) {
      const claims = this.decode(cursor);
      if (!claims || claims.t !== where.featureType || claims.g !== where.gatewayId) throw invalid(`the cursor is not a cursor of this gateway's ${LIST_METHODS[where.featureType]}`);
      if (claims.v !== where.snapshotVersion || claims.h !== digest || claims.o > items.length) {
        throw invalid(`the list changed since this cursor was issued; call ${LIST_METHODS[where.featureType]} again without a cursor`);
      }
      offset = claims.o;
    }
    const end = offset + this.pageSize;
    const nextCursor =
      end < items.length ? this.encode({ t: where.featureType, g: where.gatewayId, v: where.snapshotVersion, h: digest, o: end }) : undefined;
    return { items: items.slice(offset, end), nextCursor };
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

function invalid(message: string): RpcError {
  return new RpcError(JSON_RPC_ERRORS.INVALID_PARAMS, message, { code: 'INVALID_CURSOR' });
}
