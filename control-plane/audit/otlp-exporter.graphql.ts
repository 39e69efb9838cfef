import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { NotFoundError } from '../errors.js';
import { builder } from '../graphql/builder.js';
import { COMMON_ERRORS } from '../graphql/error-types.js';
import { decodeIdOf, stripNulls } from '../graphql/global-id.js';
import type { LogExporterRow } from './audit-log.table.js';
import type { DeliveryResult } from './otlp-exporter.service.js';
import { OTLP_PRESETS, type OtlpPreset } from './otlp-presets.js';

const LogExporterPresetEnum = builder.enumType('LogExporterPreset', {
  values: {
    COLLECTOR: { value: 'collector', description: 'A self-hosted OpenTelemetry Collector (OTLP/HTTP receiver).' },
    DATADOG: { value: 'datadog' },
    GRAFANA_CLOUD: { value: 'grafana_cloud' },
    HONEYCOMB: { value: 'honeycomb' },
    NEW_RELIC: { value: 'new_relic' },
  } as const,
});

const LogExportEncodingEnum = builder.enumType('LogExportEncoding', {
  values: {
    PROTOBUF: { value: 'protobuf', description: 'application/x-protobuf (OTLP/HTTP binary).' },
    JSON: { value: 'json', description: 'application/json (OTLP/HTTP JSON).' },
  } as const,
});

const LogExporterStatusEnum = builder.enumType('LogExporterStatus', {
  values: {
    IDLE: { value: 'idle', description: 'Nothing delivered yet.' },
    OK: { value: 'ok', description: 'The last delivery succeeded.' },
    RETRYING: { value: 'retrying', description: 'The collector was unreachable or answered 429/5xx; the same batch is retried with backoff.' },
    FAILED: { value: 'failed', description: 'The collector refused a batch (4xx); delivery waits for updateLogExporter or retryLogExporter. Nothing is skipped.' },
  } as const,
});

const LogExporterRef = builder.objectRef<LogExporterRow>('LogExporter');

export const LogExporter = builder.node(LogExporterRef, {
  description: 'Sends the workspace’s audit entries to an OpenTelemetry collector over OTLP/HTTP. Header values are never returned.',
  authScopes: { capability: 'integrations.view' },
  id: { resolve: (e) => e.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.logExporters.byIds(ctx.viewer.workspaceId, ids);
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name'),
    preset: t.field({ type: LogExporterPresetEnum, resolve: (e) => e.preset }),
    endpoint: t.exposeString('endpoint', { description: 'The full logs URL entries are POSTed to.' }),
    encoding: t.field({ type: LogExportEncodingEnum, resolve: (e) => e.encoding }),
    headerNames: t.stringList({ description: 'Names of the custom headers sent (values are sealed and never shown).', resolve: (e) => Object.keys(e.headers).sort() }),
    includeBodies: t.exposeBoolean('include_bodies', { description: 'Bodies and headers of entries are exported as attributes.' }),
    enabled: t.exposeBoolean('enabled'),
    batchSize: t.exposeInt('batch_size'),
    status: t.field({ type: LogExporterStatusEnum, resolve: (e) => e.status }),
    deliveredCount: t.float({ description: 'Entries delivered so far.', resolve: (e) => Number(e.delivered_count) }),
    consecutiveFailures: t.exposeInt('consecutive_failures'),
    exportedThrough: t.field({ type: 'DateTime', description: 'Entries ingested up to this time have been delivered.', resolve: (e) => e.cursor_ingested_at }),
    lastAttemptAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.last_attempt_at }),
    lastSuccessAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.last_success_at }),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, description: 'When a retry is due.', resolve: (e) => e.next_attempt_at }),
    lastError: t.string({ nullable: true, description: 'The last failure (or partial rejection) as the collector or the network reported it.', resolve: (e) => e.last_error }),
    lastErrorAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.last_error_at }),
    createdBy: t.exposeString('created_by'),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (e) => e.updated_at }),
  }),
});

const LogExporterPresetInfo = builder.objectRef<OtlpPreset>('LogExporterPresetInfo').implement({
  description: 'What a preset fills in.',
  fields: (t) => ({
    preset: t.field({ type: LogExporterPresetEnum, resolve: (p) => p.preset }),
    label: t.exposeString('label'),
    defaultEndpoint: t.exposeString('defaultEndpoint', { nullable: true, description: 'Null when the endpoint is account-specific and must be given.' }),
    logsPath: t.exposeString('logsPath', { description: 'Appended to an endpoint given without a path.' }),
    requiredHeaders: t.stringList({ resolve: (p) => [...p.requiredHeaders] }),
    optionalHeaders: t.stringList({ resolve: (p) => [...p.optionalHeaders] }),
    defaultEncoding: t.field({ type: LogExportEncodingEnum, resolve: (p) => p.defaultEncoding }),
    encodings: t.field({ type: [LogExportEncodingEnum], resolve: (p) => [...p.encodings] }),
    help: t.exposeString('help'),
  }),
});

const LogExporterTestResult = builder.objectRef<DeliveryResult>('LogExporterTestResult').implement({
  fields: (t) => ({
    ok: t.exposeBoolean('ok'),
    httpStatus: t.exposeInt('httpStatus', { nullable: true, description: 'Null when the collector could not be reached.' }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

const LogExporterHeaderInput = builder.inputType('LogExporterHeaderInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    value: t.string({ description: 'Sealed in the vault, never returned. In an update, omit it to keep the stored value of this header.' }),
  }),
});

const CreateLogExporterInput = builder.inputType('CreateLogExporterInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    preset: t.field({ type: LogExporterPresetEnum, description: 'Defaults to COLLECTOR.' }),
    endpoint: t.string({ description: 'The logs URL; a bare origin gets the preset’s path. Defaults to the preset’s endpoint where it has one.' }),
    encoding: t.field({ type: LogExportEncodingEnum, description: 'Defaults to the preset’s (PROTOBUF).' }),
    headers: t.field({ type: [LogExporterHeaderInput] }),
    includeBodies: t.boolean({ description: 'Also export bodies and headers (needs logging.view_bodies). Default false.' }),
    enabled: t.boolean({ description: 'Default true.' }),
    batchSize: t.int({ description: 'Entries per request, 1–5000. Default 500.' }),
    startFrom: t.field({ type: 'DateTime', description: 'Export entries ingested after this time. Default: now (no backfill).' }),
  }),
});

const UpdateLogExporterInput = builder.inputType('UpdateLogExporterInput', {
  fields: (t) => ({
    name: t.string(),
    endpoint: t.string(),
    encoding: t.field({ type: LogExportEncodingEnum }),
    headers: t.field({ type: [LogExporterHeaderInput], description: 'Replaces the header set; a header without value keeps its stored value.' }),
    includeBodies: t.boolean(),
    enabled: t.boolean(),
    batchSize: t.int(),
  }),
});

const headersOf = (headers: readonly { name: string; value?: string | null }[] | null | undefined) =>
  headers?.map((h) => ({ name: h.name, ...(h.value != null && { value: h.value }) }));

builder.queryFields((t) => ({
  logExporters: t.connection({
    type: LogExporter,
    authScopes: { capability: 'integrations.view' },
    resolve: (_r, args, ctx) => resolveOffsetConnection({ args }, (page) => ctx.services.logExporters.list(ctx.viewer, page)),
  }),
  logExporter: t.field({
    type: LogExporter,
    nullable: true,
    authScopes: { capability: 'integrations.view' },
    args: { id: t.arg.id({ required: true }) },
    description: 'Null when this workspace has no such exporter.',
    resolve: (_r, { id }, ctx) =>
      ctx.services.logExporters.get(ctx.viewer, decodeIdOf('LogExporter', String(id), 'id')).catch((err: unknown) => (err instanceof NotFoundError ? null : Promise.reject(err))),
  }),
  logExporterPresets: t.field({
    type: [LogExporterPresetInfo],
    description: 'The destinations with presets and what each needs.',
    authScopes: { capability: 'integrations.view' },
    resolve: () => [...OTLP_PRESETS],
  }),
}));

builder.mutationFields((t) => ({
  createLogExporter: t.field({
    type: LogExporter,
    description: 'Adds an OTLP/HTTP log destination. Needs integrations.manage.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'logExporter' } },
    args: { input: t.arg({ type: CreateLogExporterInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.services.logExporters.create(ctx.viewer, { ...stripNulls(input), headers: headersOf(input.headers) ?? [] }),
  }),
  updateLogExporter: t.field({
    type: LogExporter,
    description: 'Changes an exporter. A failed exporter resumes from the batch that failed.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'logExporter' } },
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateLogExporterInput, required: true }) },
    resolve: (_r, { id, input }, ctx) =>
      ctx.services.logExporters.update(ctx.viewer, decodeIdOf('LogExporter', String(id), 'id'), {
        ...stripNulls(input),
        ...(input.headers != null && { headers: headersOf(input.headers) }),
      }),
  }),
  retryLogExporter: t.field({
    type: LogExporter,
    description: 'Retries a failed or backing-off exporter now, from the batch that failed.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'logExporter' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.logExporters.retry(ctx.viewer, decodeIdOf('LogExporter', String(id), 'id')),
  }),
  testLogExporter: t.field({
    type: LogExporterTestResult,
    description: 'Sends one synthetic log record now and reports the collector’s answer; the cursor and status do not change.',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'result' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, { id }, ctx) => ctx.services.logExporters.test(ctx.viewer, decodeIdOf('LogExporter', String(id), 'id')),
  }),
  deleteLogExporter: t.field({
    type: 'ID',
    errors: { types: [...COMMON_ERRORS], dataField: { name: 'deletedLogExporterId' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, { id }, ctx) => {
      await ctx.services.logExporters.delete(ctx.viewer, decodeIdOf('LogExporter', String(id), 'id'));
      return String(id);
    },
  }),
}));
