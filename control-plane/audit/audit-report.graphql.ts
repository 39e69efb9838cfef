import { ValidationError } from '../errors.js';
import { builder } from '../graphql/builder.js';
import { encodeGlobalId } from '../graphql/global-id.js';
import { ServerRef, TeamRef, UserRef } from '../graphql/refs.js';
import {
  MAX_TOP,
  type CallsBucket,
  type ErrorRate,
  type FeatureCalls,
  type FeatureLatency,
  type ReportWindow,
  type ServerPopularity,
  type TokensBucket,
  type Usage,
} from './audit-report.service.js';

const ReportBucketEnum = builder.enumType('ReportBucket', {
  values: { HOUR: { value: 'hour' }, DAY: { value: 'day' } } as const,
});

const AuditReportInput = builder.inputType('AuditReportInput', {
  description: 'A report window: at most 31 days, half-open (from ≤ t < to).',
  fields: (t) => ({
    from: t.field({ type: 'DateTime', description: 'Defaults to 7 days before `to`.' }),
    to: t.field({ type: 'DateTime', description: 'Defaults to now.' }),
    bucket: t.field({ type: ReportBucketEnum, description: 'Size of the time series buckets. Defaults to DAY.' }),
    timeZone: t.string({ description: 'IANA time zone buckets start in (midnight or the hour there). Defaults to UTC.' }),
    gatewayId: t.id({ description: 'Only calls through this gateway.' }),
    serverId: t.id({ description: 'Only calls to this server.' }),
  }),
});

const CallsBucketType = builder.objectRef<CallsBucket>('CallsBucket').implement({
  fields: (t) => ({
    bucket: t.field({ type: 'DateTime', description: 'Start of the bucket.', resolve: (b) => b.bucket }),
    calls: t.exposeInt('calls'),
    errors: t.exposeInt('errors'),
    blocked: t.exposeInt('blocked'),
  }),
});
const TokensBucketType = builder.objectRef<TokensBucket>('TokensBucket').implement({
  fields: (t) => ({
    bucket: t.field({ type: 'DateTime', resolve: (b) => b.bucket }),
    inputTokens: t.exposeFloat('inputTokens', { description: 'Estimated tokens clients sent (sums can pass 2^31, hence Float).' }),
    outputTokens: t.exposeFloat('outputTokens'),
  }),
});
const FeatureCallsType = builder.objectRef<FeatureCalls>('FeatureCalls').implement({
  fields: (t) => ({
    featureName: t.exposeString('featureName'),
    calls: t.exposeInt('calls'),
    errors: t.exposeInt('errors'),
    blocked: t.exposeInt('blocked'),
  }),
});
const FeatureLatencyType = builder.objectRef<FeatureLatency>('FeatureLatency').implement({
  description: 'Whole-call durations (client response legs) of one feature.',
  fields: (t) => ({
    featureName: t.exposeString('featureName'),
    calls: t.exposeInt('calls'),
    p50Ms: t.exposeFloat('p50Ms', { nullable: true }),
    p95Ms: t.exposeFloat('p95Ms', { nullable: true }),
    avgMs: t.exposeFloat('avgMs', { nullable: true }),
    maxMs: t.exposeFloat('maxMs', { nullable: true }),
  }),
});
const ServerPopularityType = builder.objectRef<ServerPopularity>('ServerPopularity').implement({
  fields: (t) => ({
    serverId: t.id({ resolve: (s) => encodeGlobalId('Server', s.serverId) }),
    server: t.field({ type: ServerRef, nullable: true, description: 'Null when deleted. Needs servers.view.', resolve: (s, _a, ctx) => ctx.loaders.server.load(s.serverId) }),
    calls: t.exposeInt('calls'),
    distinctUsers: t.exposeInt('distinctUsers'),
    share: t.exposeFloat('share', { description: 'Part of all server calls in the window, 0–1.' }),
  }),
});
const ErrorRateType = builder.objectRef<ErrorRate>('ErrorRate').implement({
  fields: (t) => ({
    calls: t.exposeInt('calls'),
    errors: t.exposeInt('errors'),
    blocked: t.exposeInt('blocked'),
    errorRate: t.exposeFloat('errorRate', { description: 'errors / calls; 0 with no calls.' }),
    blockedRate: t.exposeFloat('blockedRate'),
    buckets: t.field({ type: [CallsBucketType], resolve: (e) => [...e.buckets] }),
  }),
});

const UserUsage = builder.objectRef<Usage>('UserUsage').implement({
  fields: (t) => ({
    userId: t.id({ nullable: true, description: 'Null for calls made by machine identities.', resolve: (u) => (u.subjectId ? encodeGlobalId('User', u.subjectId) : null) }),
    user: t.field({ type: UserRef, nullable: true, resolve: (u, _a, ctx) => (u.subjectId ? ctx.loaders.user.load(u.subjectId) : null) }),
    calls: t.exposeInt('calls'),
    errors: t.exposeInt('errors'),
    blocked: t.exposeInt('blocked'),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
  }),
});
const TeamUsage = builder.objectRef<Usage>('TeamUsage').implement({
  fields: (t) => ({
    teamId: t.id({ resolve: (u) => encodeGlobalId('Team', u.subjectId ?? '') }),
    team: t.field({ type: TeamRef, nullable: true, resolve: (u, _a, ctx) => (u.subjectId ? ctx.loaders.team.load(u.subjectId) : null) }),
    calls: t.exposeInt('calls'),
    errors: t.exposeInt('errors'),
    blocked: t.exposeInt('blocked'),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
  }),
});
const ServerUsage = builder.objectRef<Usage>('ServerUsage').implement({
  fields: (t) => ({
    serverId: t.id({ nullable: true, description: 'Null for calls the gateway answered itself (initialize, list fan-outs).', resolve: (u) => (u.subjectId ? encodeGlobalId('Server', u.subjectId) : null) }),
    server: t.field({ type: ServerRef, nullable: true, resolve: (u, _a, ctx) => (u.subjectId ? ctx.loaders.server.load(u.subjectId) : null) }),
    calls: t.exposeInt('calls'),
    errors: t.exposeInt('errors'),
    blocked: t.exposeInt('blocked'),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
  }),
});

const topOf = (top: number | null | undefined): number => {
  const v = top ?? 10;
  if (!Number.isInteger(v) || v < 1 || v > MAX_TOP) throw new ValidationError('top', `top: must be from 1 to ${MAX_TOP}`);
  return v;
};

const AuditReport = builder.objectRef<ReportWindow>('AuditReport').implement({
  description:
    'Usage and health over one window. Each field is one SQL query, run only when selected. A call counts once (its client response); tokens are the client legs’ estimates.',
  fields: (t) => ({
    from: t.field({ type: 'DateTime', resolve: (w) => w.from }),
    to: t.field({ type: 'DateTime', resolve: (w) => w.to }),
    bucket: t.field({ type: ReportBucketEnum, resolve: (w) => w.bucket }),
    timeZone: t.exposeString('timeZone'),
    callsOverTime: t.field({ type: [CallsBucketType], resolve: (w, _a, ctx) => ctx.services.auditReports.callsOverTime(w) }),
    tokensOverTime: t.field({ type: [TokensBucketType], resolve: (w, _a, ctx) => ctx.services.auditReports.tokensOverTime(w) }),
    errorRate: t.field({ type: ErrorRateType, resolve: (w, _a, ctx) => ctx.services.auditReports.errorRate(w) }),
    featureCalls: t.field({
      type: [FeatureCallsType],
      description: 'The most called features.',
      args: { top: t.arg.int({ defaultValue: 10 }) },
      resolve: (w, { top }, ctx) => ctx.services.auditReports.featureCalls(w, topOf(top)),
    }),
    latencyByFeature: t.field({
      type: [FeatureLatencyType],
      description: 'p50/p95 of the most called features.',
      args: { top: t.arg.int({ defaultValue: 10 }) },
      resolve: (w, { top }, ctx) => ctx.services.auditReports.latencyByFeature(w, topOf(top)),
    }),
    serverPopularity: t.field({
      type: [ServerPopularityType],
      args: { top: t.arg.int({ defaultValue: 10 }) },
      resolve: (w, { top }, ctx) => ctx.services.auditReports.serverPopularity(w, topOf(top)),
    }),
    usageByUser: t.field({
      type: [UserUsage],
      args: { top: t.arg.int({ defaultValue: 10 }) },
      resolve: (w, { top }, ctx) => ctx.services.auditReports.usageByUser(w, topOf(top)),
    }),
    usageByTeam: t.field({
      type: [TeamUsage],
      description: 'Calls of each team’s current members; a user in two teams counts in both.',
      args: { top: t.arg.int({ defaultValue: 10 }) },
      resolve: (w, { top }, ctx) => ctx.services.auditReports.usageByTeam(w, topOf(top)),
    }),
    usageByServer: t.field({
      type: [ServerUsage],
      args: { top: t.arg.int({ defaultValue: 10 }) },
      resolve: (w, { top }, ctx) => ctx.services.auditReports.usageByServer(w, topOf(top)),
    }),
  }),
});

builder.queryFields((t) => ({
  auditReport: t.field({
    type: AuditReport,
    description: 'Reports over a window of at most 31 days. Needs reporting.view.',
    authScopes: { capability: 'reporting.view' },
    args: { input: t.arg({ type: AuditReportInput }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.auditReports.window(ctx.viewer, {
        from: input?.from ?? null,
        to: input?.to ?? null,
        bucket: input?.bucket ?? null,
        timeZone: input?.timeZone ?? null,
        gatewayId: input?.gatewayId != null ? String(input.gatewayId) : null,
        serverId: input?.serverId != null ? String(input.serverId) : null,
      }),
  }),
}));
