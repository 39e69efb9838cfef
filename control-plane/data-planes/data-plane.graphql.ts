import { resolveOffsetConnection } from '@pothos/plugin-relay';
import type { EncryptedSecret } from '../../schema/snapshot/index.js';
import { builder } from '../graphql/builder.js';
import type { Context } from '../graphql/context.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, stripNulls } from '../graphql/global-id.js';
import { RECEIVE_SNAPSHOTS, type RegisteredDataPlane, type SnapshotDelivery, type SnapshotReceipt } from './data-plane.service.js';
import type { DataPlaneRow } from './data-plane.table.js';

const DataPlaneRef = builder.objectRef<DataPlaneRow>('DataPlane');

interface Rejection {
  readonly version: number;
  readonly reason: string;
  readonly at: Date;
}

const SnapshotRejection = builder.objectRef<Rejection>('SnapshotRejection').implement({
  description: 'A snapshot a data plane refused, and why. It kept serving the version it held.',
  fields: (t) => ({
    version: t.exposeInt('version'),
    reason: t.exposeString('reason', { description: 'The data plane\'s own words, starting with a stable code (INVALID, HASH_MISMATCH, STALE_VERSION, …).' }),
    at: t.field({ type: 'DateTime', resolve: (r) => r.at }),
  }),
});

const latestVersion = async (ctx: Context) => (await ctx.services.snapshots.latest(ctx.viewer.workspaceId))?.version ?? null;
const ackedVersion = (d: DataPlaneRow) => (d.acked_version === null ? null : Number(d.acked_version));

export const DataPlane = builder.node(DataPlaneRef, {
  description: 'A registered data plane: it receives this workspace\'s snapshots over graphql-ws with its token.',
  authScopes: { capability: 'workspace.view_settings' },
  id: { resolve: (d) => d.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.dataPlanes.byIds(ctx.viewer.workspaceId, ids);
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('token_prefix', { description: 'The first characters of its token, to recognise it.' }),
    createdAt: t.field({ type: 'DateTime', resolve: (d) => d.created_at }),
    revoked: t.boolean({ resolve: (d) => d.revoked_at !== null }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => d.revoked_at }),
    lastSeenAt: t.field({ type: 'DateTime', nullable: true, description: 'Last connection or acknowledgement.', resolve: (d) => d.last_seen_at }),
    ackedVersion: t.int({ nullable: true, description: 'The snapshot version it last acknowledged (validated and serves).', resolve: ackedVersion }),
    ackedAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => d.acked_at }),
    lastRejection: t.field({
      type: SnapshotRejection,
      nullable: true,
      resolve: (d) =>
        d.last_rejected_version === null || d.last_rejected_at === null
          ? null
          : { version: Number(d.last_rejected_version), reason: d.last_rejection ?? '', at: d.last_rejected_at },
    }),
    latestVersion: t.int({ nullable: true, description: 'The latest snapshot version of the workspace.', resolve: (_d, _a, ctx) => latestVersion(ctx) }),
    inSync: t.boolean({
      description: 'Not revoked and has acknowledged the latest version.',
      resolve: async (d, _a, ctx) => d.revoked_at === null && ackedVersion(d) !== null && ackedVersion(d) === (await latestVersion(ctx)),
    }),
  }),
});

const RegisteredDataPlaneType = builder.objectRef<RegisteredDataPlane>('RegisteredDataPlane').implement({
  fields: (t) => ({
    dataPlane: t.field({ type: DataPlane, resolve: (r) => r.dataPlane }),
    token: t.exposeString('token', { description: 'The data-plane token. Shown only in this response; store it now.' }),
  }),
});

const EncryptedSecretType = builder.objectRef<EncryptedSecret>('EncryptedSecret').implement({
  description: 'An AES-256-GCM ciphertext in the snapshot contract\'s shape (schema/SNAPSHOT.md, "Secrets").',
  fields: (t) => ({
    keyId: t.exposeString('keyId'),
    alg: t.exposeString('alg'),
    aad: t.exposeString('aad'),
    iv: t.exposeString('iv'),
    ciphertext: t.exposeString('ciphertext'),
    tag: t.exposeString('tag'),
  }),
});

const SnapshotDeliveryType = builder.objectRef<SnapshotDelivery>('SnapshotDelivery').implement({
  description: 'One snapshot version for one data plane.',
  fields: (t) => ({
    version: t.exposeInt('version'),
    contentHash: t.exposeString('contentHash'),
    body: t.field({ type: 'JSONObject', description: 'The whole GatewaySnapshot; validate it before serving it.', resolve: (d) => d.body }),
    snapshotKeyId: t.exposeString('snapshotKeyId', { description: 'The keyId the body\'s secrets are sealed under.' }),
    snapshotKey: t.field({
      type: EncryptedSecretType,
      description: 'That key, wrapped under this data plane\'s delivery key (HKDF of its token).',
      resolve: (d) => d.snapshotKey,
    }),
  }),
});

const SnapshotReceiptType = builder.objectRef<SnapshotReceipt>('SnapshotReceipt').implement({
  fields: (t) => ({
    version: t.exposeInt('version'),
    at: t.field({ type: 'DateTime', resolve: (r) => r.at }),
  }),
});

builder.queryFields((t) => ({
  dataPlanes: t.connection({
    type: DataPlane,
    authScopes: { capability: 'workspace.view_settings' },
    args: { includeRevoked: t.arg.boolean({ defaultValue: false }) },
    resolve: (_r, args, ctx) =>
      resolveOffsetConnection({ args }, (page) => ctx.services.dataPlanes.list(ctx.viewer, args.includeRevoked ?? false, page)),
  }),
}));

const RegisterDataPlaneInput = builder.inputType('RegisterDataPlaneInput', {
  fields: (t) => ({ name: t.string({ required: true }) }),
});

builder.mutationFields((t) => ({
  registerDataPlane: t.field({
    type: RegisteredDataPlaneType,
    description: 'Registers a data plane for this workspace and returns its token, once.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'registered' } },
    args: { input: t.arg({ type: RegisterDataPlaneInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.dataPlanes.register(ctx.viewer, stripNulls(input)),
  }),
  revokeDataPlane: t.field({
    type: DataPlane,
    description: 'Revokes a data plane\'s token at once; it can no longer connect or receive snapshots.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'dataPlane' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.dataPlanes.revoke(ctx.viewer, decodeIdOf('DataPlane', String(id), 'id')),
  }),
  acknowledgeSnapshot: t.field({
    type: SnapshotReceiptType,
    description: 'Data planes only: the snapshot `version` was validated and is now served.',
    authScopes: { capability: RECEIVE_SNAPSHOTS },
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'receipt' } },
    args: { version: t.arg.int({ required: true }) },
    resolve: (_r, { version }, ctx) => ctx.services.dataPlanes.acknowledge(ctx.viewer, version),
  }),
  rejectSnapshot: t.field({
    type: SnapshotReceiptType,
    description: 'Data planes only: the snapshot `version` was refused for `reason`; the data plane keeps the version it held.',
    authScopes: { capability: RECEIVE_SNAPSHOTS },
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'receipt' } },
    args: { version: t.arg.int({ required: true }), reason: t.arg.string({ required: true }) },
    resolve: (_r, { version, reason }, ctx) => ctx.services.dataPlanes.reject(ctx.viewer, version, reason),
  }),
}));

builder.subscriptionFields((t) => ({
  snapshots: t.field({
    type: SnapshotDeliveryType,
    description:
      'Data planes only: the latest snapshot at once if newer than `sinceVersion` (the version held, to resume after a reconnect), then every new version.',
    authScopes: { capability: RECEIVE_SNAPSHOTS },
    args: { sinceVersion: t.arg.int({ required: false }) },
    subscribe: (_r, args, ctx) => snapshotStream(ctx, args.sinceVersion ?? 0),
    resolve: (delivery) => delivery,
  }),
}));

/**
 * Deliveries for the calling data plane. Listens before reading the latest version, so a
 * version published in between is not missed; skips versions it already sent (when two
 * arrive at once only the newest is sent: each snapshot is complete).
 */
function snapshotStream(ctx: Context, sinceVersion: number): AsyncIterableIterator<SnapshotDelivery> {
  const { services, viewer } = ctx;
  const announcements = services.snapshots.subscribe(viewer.workspaceId);
  const deliveries = (async function* () {
    let held = sinceVersion;
    const first = await services.snapshots.latestOrPublish(viewer.workspaceId);
    if (first && first.version > held) {
      yield await services.dataPlanes.deliver(viewer, first);
      held = first.version;
    }
    for (;;) {
      const next = await announcements.next();
      if (next.done) return;
      if (next.value.version <= held) continue;
      const latest = await services.snapshots.latest(viewer.workspaceId);
      if (!latest || latest.version <= held) continue;
      yield await services.dataPlanes.deliver(viewer, latest);
      held = latest.version;
    }
  })();
  return {
    next: () => deliveries.next(),
    // Ends a pending wait for the next announcement, so unsubscribing never hangs.
    return: async () => {
      await announcements.return?.();
      return deliveries.return(undefined);
    },
    throw: async (err) => {
      await announcements.return?.();
      return deliveries.throw(err);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
