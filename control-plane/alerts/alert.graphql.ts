import { ForbiddenError, ValidationError } from '../errors.js';
import { requireCapability } from '../access/viewer.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, encodeGlobalId } from '../graphql/global-id.js';
import type { AlertChange, AlertStreamItem } from './alert.service.js';
import { ALERT_TYPES, type AlertRow, type AlertType } from './alert.table.js';

const TYPE_DESCRIPTIONS: Readonly<Record<AlertType, string>> = {
  GATEWAY_ACCESS_REQUEST: 'A user asks for access to a gateway.',
  FEATURE_DISCOVERED: 'Discovery found features a server did not offer before.',
  FEATURE_PROVISIONED: 'An assignment’s provisioning changed.',
  CONTENT_RULE_TRIGGERED: 'A content rule matched a call.',
  PIN_VIOLATION: 'A pinned feature’s definition changed (a possible rug pull); details carry the diff.',
  POISONING_SUSPECTED: 'A feature description looks like tool poisoning.',
  MIMICRY_SUSPECTED: 'A server’s name or URL is confusable with an existing one.',
  UPSTREAM_OUTAGE: 'An upstream server cannot be reached.',
  SNAPSHOT_REJECTED: 'A data plane refused a snapshot and keeps serving its previous one.',
  RATE_LIMIT_EXCEEDED: 'Calls were refused by a rate limit.',
  CREDENTIAL_REFRESH_FAILED: 'An upstream credential could not be refreshed.',
  AUDIT_BUFFER_OVERFLOW: 'A data plane’s audit buffer filled up.',
};

const AlertSeverityEnum = builder.enumType('AlertSeverity', {
  values: {
    ERROR: { value: 'error', description: 'Something is broken or under attack; act now.' },
    WARNING: { value: 'warning' },
    INFO: { value: 'info', description: 'Worth knowing; nothing is wrong.' },
  } as const,
});

const AlertTypeEnum = builder.enumType('AlertType', {
  values: Object.fromEntries(ALERT_TYPES.map((t) => [t, { value: t, description: TYPE_DESCRIPTIONS[t] }])) as {
    [K in AlertType]: { value: K; description: string };
  },
});

const AlertStateEnum = builder.enumType('AlertState', {
  values: {
    OPEN: { description: 'Neither acknowledged nor resolved.' },
    ACKNOWLEDGED: { description: 'Someone is on it; still unresolved.' },
    RESOLVED: {},
  } as const,
});

const AlertChangeEnum = builder.enumType('AlertChange', {
  values: {
    RAISED: { value: 'raised', description: 'A new alert.' },
    UPDATED: { value: 'updated', description: 'An identical occurrence folded into it: count and lastSeenAt moved.' },
    ACKNOWLEDGED: { value: 'acknowledged' },
    RESOLVED: { value: 'resolved' },
  } as const,
});

const stateOf = (a: AlertRow) => (a.resolved_at ? 'RESOLVED' : a.acknowledged_at ? 'ACKNOWLEDGED' : 'OPEN');

export const AlertRef = builder.objectRef<AlertRow>('Alert');

export const Alert = builder.node(AlertRef, {
  description: 'An operational or security event. Identical occurrences within the fold window fold into one alert with a count.',
  authScopes: { capability: 'alerting.view' },
  id: { resolve: (a) => a.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.alerts.byIds(ctx.viewer.workspaceId, ids);
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  },
  fields: (t) => ({
    type: t.field({ type: AlertTypeEnum, resolve: (a) => a.type }),
    severity: t.field({ type: AlertSeverityEnum, resolve: (a) => a.severity }),
    state: t.field({ type: AlertStateEnum, resolve: stateOf }),
    subject: t.exposeString('subject'),
    subjectType: t.exposeString('subject_type', { nullable: true, description: 'Type of the object the alert is about, e.g. `Server`.' }),
    subjectId: t.id({
      nullable: true,
      description: 'Global ID of that object (resolve it with `node`).',
      resolve: (a) => (a.subject_type && a.subject_id ? encodeGlobalId(a.subject_type, a.subject_id) : null),
    }),
    details: t.field({ type: 'JSONObject', resolve: (a) => a.details }),
    foldKey: t.exposeString('fold_key', { description: 'Occurrences with the same type and fold key fold into one alert.' }),
    count: t.exposeInt('count', { description: 'Occurrences folded into this alert.' }),
    firstSeenAt: t.field({ type: 'DateTime', resolve: (a) => a.first_seen_at }),
    lastSeenAt: t.field({ type: 'DateTime', resolve: (a) => a.last_seen_at }),
    acknowledgedAt: t.field({ type: 'DateTime', nullable: true, resolve: (a) => a.acknowledged_at }),
    acknowledgedBy: t.exposeString('acknowledged_by', { nullable: true }),
    resolvedAt: t.field({ type: 'DateTime', nullable: true, resolve: (a) => a.resolved_at }),
    resolvedBy: t.exposeString('resolved_by', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (a) => a.created_at }),
  }),
});

const AlertEvent = builder.objectRef<{ change: AlertChange; alert: AlertRow }>('AlertEvent').implement({
  description: 'One change of an alert, pushed to subscribers.',
  fields: (t) => ({
    change: t.field({ type: AlertChangeEnum, resolve: (e) => e.change }),
    alert: t.field({ type: Alert, resolve: (e) => e.alert }),
  }),
});

const AlertFilter = builder.inputType('AlertFilter', {
  fields: (t) => ({
    severities: t.field({ type: [AlertSeverityEnum] }),
    severityAtLeast: t.field({ type: AlertSeverityEnum, description: 'This severity and the more severe ones.' }),
    types: t.field({ type: [AlertTypeEnum] }),
    states: t.field({ type: [AlertStateEnum] }),
    from: t.field({ type: 'DateTime', description: 'Alerts whose last occurrence is at or after this time.' }),
    to: t.field({ type: 'DateTime', description: 'Alerts whose first occurrence is at or before this time.' }),
  }),
});

const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;
const CURSOR_PREFIX = 'alert:';
const encodeCursor = (seq: string | number) => Buffer.from(`${CURSOR_PREFIX}${seq}`).toString('base64url');
function decodeCursor(cursor: string): string {
  const raw = Buffer.from(cursor, 'base64url').toString();
  const seq = raw.startsWith(CURSOR_PREFIX) ? raw.slice(CURSOR_PREFIX.length) : '';
  if (!/^\d{1,19}$/.test(seq)) throw new ValidationError('after', 'after: not a cursor of this connection');
  return seq;
}

builder.queryFields((t) => ({
  alerts: t.connection({
    type: Alert,
    description: 'Alerts, newest first (by when they were first raised). Pages forward only: `first` and `after`.',
    authScopes: { capability: 'alerting.view' },
    args: { filter: t.arg({ type: AlertFilter }) },
    resolve: async (_r, args, ctx) => {
      if (args.last != null || args.before != null) throw new ValidationError('last', 'last/before: alerts page forward only; use first and after');
      if (args.first != null && args.first < 0) throw new ValidationError('first', 'first: must not be negative');
      const size = Math.min(args.first ?? DEFAULT_PAGE, MAX_PAGE);
      const afterSeq = args.after ? decodeCursor(args.after) : undefined;
      const rows = await ctx.services.alerts.list(ctx.viewer, args.filter ?? {}, { limit: size + 1, afterSeq });
      const page = rows.slice(0, size);
      const edges = page.map((node) => ({ cursor: encodeCursor(node.seq), node }));
      return {
        edges,
        pageInfo: {
          hasNextPage: rows.length > size,
          hasPreviousPage: afterSeq !== undefined,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    },
  }),
  alert: t.field({
    type: Alert,
    nullable: true,
    authScopes: { capability: 'alerting.view' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.alerts.get(ctx.viewer, decodeIdOf('Alert', String(id), 'id')),
  }),
}));

builder.mutationFields((t) => ({
  acknowledgeAlert: t.field({
    type: Alert,
    description: 'Marks an alert as seen; it keeps folding new occurrences until resolved.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'alert' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.alerts.acknowledge(ctx.viewer, decodeIdOf('Alert', String(id), 'id')),
  }),
  resolveAlert: t.field({
    type: Alert,
    description: 'Closes an alert; a later identical occurrence raises a new one.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'alert' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.alerts.resolve(ctx.viewer, decodeIdOf('Alert', String(id), 'id')),
  }),
}));

builder.subscriptionFields((t) => ({
  alerts: t.field({
    type: AlertEvent,
    description:
      'Alerts of the workspace as they are raised, fold, are acknowledged or resolved, from every control-plane process. ' +
      'Ends with a FORBIDDEN error if the key is revoked or its role loses alerting.view.',
    authScopes: { capability: 'alerting.view' },
    args: {
      severityAtLeast: t.arg({ type: AlertSeverityEnum }),
      types: t.arg({ type: [AlertTypeEnum] }),
    },
    subscribe: (_r, args, ctx) => {
      requireCapability(ctx.viewer, 'alerting.view');
      return ctx.services.alerts.subscribe(ctx.viewer, { severityAtLeast: args.severityAtLeast ?? null, types: args.types ?? null });
    },
    resolve: (item: AlertStreamItem) => {
      if ('revoked' in item) throw new ForbiddenError('alerting.view', item.revoked);
      return item;
    },
  }),
}));
