import type { Result } from '@modelcontextprotocol/sdk/types.js';
import { hashFeatureDefinition, type FeatureType, type SnapshotFeature, type SnapshotMetadataOverrides } from '../../schema/snapshot/index.js';
import type { DataPlaneLogger } from '../logger.js';
import type { CompiledAssignment, CompiledGateway, CompiledSnapshot } from '../snapshot/compiled-snapshot.js';
import { UpstreamError } from '../upstream/upstream-error.js';
import type { UpstreamConnection, UpstreamPool } from '../upstream/upstream-pool.js';
import type { ListPage, ListPager } from './list-cursor.js';
import type { CallAuditHook, UpstreamTarget } from './router.js';

/** How each feature type is listed: the method, the result member, and the member naming an item. */
export const LISTINGS: {
  readonly [T in FeatureType]: { readonly method: string; readonly member: string; readonly nameKey: string; readonly capability: 'tools' | 'prompts' | 'resources' };
} = {
  tools: { method: 'tools/list', member: 'tools', nameKey: 'name', capability: 'tools' },
  prompts: { method: 'prompts/list', member: 'prompts', nameKey: 'name', capability: 'prompts' },
  resources: { method: 'resources/list', member: 'resources', nameKey: 'uri', capability: 'resources' },
  resourceTemplates: { method: 'resources/templates/list', member: 'resourceTemplates', nameKey: 'uriTemplate', capability: 'resources' },
};

/** An upstream left out of a merged list, reported in the result's `_meta`. */
export interface UnavailableUpstream {
  readonly server: string;
  readonly code: string;
  readonly message: string;
}

/** Upper bound on pages read from one upstream per list, against a cursor that never ends. */
const MAX_UPSTREAM_PAGES = 50;

/** Gateway-side pagination of the merged list: the pager and the client's `params.cursor`. */
export interface ListPaging {
  readonly pager: ListPager;
  readonly cursor: unknown;
}

export function pinKey(featureType: FeatureType, upstreamName: string): string {
  return `${featureType}\u0000${upstreamName}`;
}

/**
 * Lists one feature type across the gateway: every enabled entry that has something to
 * serve is asked in parallel, each under its own deadline (an upstream's own pages are
 * all read within it); an upstream that fails or misses its deadline is left out (and
 * named in `_meta`) while the others answer. Items are filtered to what the snapshot
 * serves, pins are rechecked on the live definitions, names are namespaced and metadata
 * overrides applied. Entries keep snapshot order. With `paging`, the merged list is
 * served in pages with opaque cursors (see {@link ListPager}); an invalid cursor throws
 * an `RpcError` (-32602). A next page of a list this replica built a moment ago comes from
 * the list it kept (no fan-out, no upstream legs; the upstreams it left out named again).
 * With `audit`, each upstream page request is an upstream leg of the call (request and
 * response, or the error that ended it); past the deadline no further page is asked for.
 */
export async function listAcrossGateway(
  featureType: FeatureType,
  compiled: CompiledSnapshot,
  gateway: CompiledGateway,
  pool: UpstreamPool,
  timeoutMs: number,
  logger: DataPlaneLogger,
  paging?: ListPaging,
  audit?: CallAuditHook,
): Promise<Result> {
  const listing = LISTINGS[featureType];
  const where = { featureType, gatewayId: gateway.gateway.id, snapshotVersion: compiled.version };
  // A next page of a list this replica built: from the list it kept, without a fan-out.
  const resumed = paging?.pager.resume<Record<string, unknown>>(paging.cursor, where);
  if (resumed) return listResult(listing.member, resumed.page, resumed.extra as UnavailableUpstream[]);
  const entries = gateway.entries.filter(
    (entry) => entry.assignment.enabled && entry.assignment.features[featureType].some((feature) => feature.withheld === undefined),
  );
  const outcomes = await Promise.allSettled(
    entries.map((entry) => {
      const connection = pool.get(entry, compiled.secretKeys);
      const target: UpstreamTarget = { method: listing.method, entry };
      return withDeadline((signal) => listUpstream(featureType, connection, timeoutMs, signal, target, audit), timeoutMs, connection.serverName, listing.method).then((items) =>
        exposeItems(featureType, entry, connection, items),
      );
    }),
  );
  const merged: Record<string, unknown>[] = [];
  const unavailable: UnavailableUpstream[] = [];
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') {
      merged.push(...outcome.value);
      return;
    }
    const error = outcome.reason as unknown;
    const server = entries[i]!.assignment.serverName;
    const code = error instanceof UpstreamError ? error.code : 'UPSTREAM_ERROR';
    const message = error instanceof Error ? error.message : String(error);
    logger.warn({ server, code, err: error }, `${listing.method} left out an upstream`);
    unavailable.push({ server, code, message });
  });
  const page = paging ? paging.pager.page(merged, (item) => String(item[listing.nameKey]), where, paging.cursor, unavailable) : { items: merged, nextCursor: undefined };
  return listResult(listing.member, page, unavailable);
}

function listResult(member: string, page: ListPage<Record<string, unknown>>, unavailable: readonly UnavailableUpstream[]): Result {
  const result: Record<string, unknown> = { [member]: page.items };
  if (page.nextCursor !== undefined) result.nextCursor = page.nextCursor;
  if (unavailable.length > 0) result._meta = { 'gatehouse/unavailable': unavailable };
  return result as Result;
}

async function listUpstream(
  featureType: FeatureType,
  connection: UpstreamConnection,
  timeoutMs: number,
  signal: AbortSignal,
  target: UpstreamTarget,
  audit: CallAuditHook | undefined,
): Promise<unknown[]> {
  const listing = LISTINGS[featureType];
  try {
    await connection.connect(timeoutMs);
  } catch (error) {
    // Nothing was sent, but the upstream is why this part of the list is missing: one failed leg.
    if (audit) {
      audit.upstreamRequest(target, {});
      audit.upstreamResponse(target, performance.now(), { error });
    }
    throw error;
  }
  // An upstream that does not declare the capability has nothing of this type to list.
  if (!connection.capabilities()?.[listing.capability]) return [];
  const items: unknown[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_UPSTREAM_PAGES && !signal.aborted; page += 1) {
    const params = cursor === undefined ? undefined : { cursor };
    audit?.upstreamRequest(target, params ?? {});
    const startedAt = performance.now();
    let result: Result;
    try {
      // Not aborted by the deadline's signal: the request's own timeout (the same length)
      // cancels it upstream and counts it as a failure in the circuit breaker.
      result = await connection.request(listing.method, params, { timeoutMs });
    } catch (error) {
      audit?.upstreamResponse(target, startedAt, { error });
      throw error;
    }
    audit?.upstreamResponse(target, startedAt, { result });
    const pageItems = (result as Record<string, unknown>)[listing.member];
    if (Array.isArray(pageItems)) items.push(...pageItems);
    cursor = typeof result.nextCursor === 'string' ? result.nextCursor : undefined;
    if (cursor === undefined) break;
  }
  return items;
}

/**
 * The live items of one entry a client may see, renamed and rewritten. Anything the
 * snapshot does not carry is dropped (fail closed, even if the upstream lists it), as is
 * anything withheld, and a pinned feature whose live definition no longer hashes to its
 * pin (remembered on the connection, so calls to it are refused too).
 */
export function exposeItems(
  featureType: FeatureType,
  entry: CompiledAssignment,
  connection: Pick<UpstreamConnection, 'livePinMismatches'>,
  items: readonly unknown[],
): Record<string, unknown>[] {
  const { nameKey } = LISTINGS[featureType];
  const exposed: Record<string, unknown>[] = [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue;
    const definition = item as Record<string, unknown>;
    const upstreamName = definition[nameKey];
    if (typeof upstreamName !== 'string') continue;
    const feature = entry.byUpstreamName[featureType].get(upstreamName);
    if (!feature || feature.withheld !== undefined) continue;
    if (feature.pinnedHash !== undefined) {
      const key = pinKey(featureType, upstreamName);
      if (hashFeatureDefinition(featureType, definition) !== feature.pinnedHash) {
        connection.livePinMismatches.add(key);
        continue;
      }
      connection.livePinMismatches.delete(key);
    }
    exposed.push(rewrite(definition, nameKey, feature));
  }
  return exposed;
}

function rewrite(definition: Record<string, unknown>, nameKey: string, feature: SnapshotFeature): Record<string, unknown> {
  const out: Record<string, unknown> = { ...definition, [nameKey]: feature.name };
  if (feature.overrides) applyOverrides(out, feature.overrides);
  return out;
}

function applyOverrides(out: Record<string, unknown>, overrides: SnapshotMetadataOverrides): void {
  for (const field of ['title', 'description', 'annotations'] as const) {
    const override = overrides[field];
    if (override.action === 'strip') delete out[field];
    else if (override.action === 'replace') out[field] = override.value;
  }
}

/** Runs `work` under a deadline: at `ms` its signal aborts and the promise rejects with the timeout error. */
function withDeadline<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, serverName: string, method: string): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const timeout = new UpstreamError('UPSTREAM_TIMEOUT', serverName, `server "${serverName}" did not answer ${method} within ${ms} ms`);
      controller.abort(timeout);
      reject(timeout);
    }, ms);
  });
  return Promise.race([work(controller.signal), deadline]).finally(() => clearTimeout(timer));
}
