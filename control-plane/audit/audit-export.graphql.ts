import { builder } from '../graphql/builder.js';
import { AuditLogFilterInput, parseGraphQLFilter } from './audit-log.graphql.js';
import type { ExportLink } from './audit-export.service.js';

const AuditExportFormatEnum = builder.enumType('AuditExportFormat', {
  values: {
    CSV: { value: 'csv', description: 'RFC 4180 with a header row and CRLF line ends.' },
    JSON: { value: 'json', description: 'One JSON array of entries, streamed.' },
    NDJSON: { value: 'ndjson', description: 'One JSON entry per line.' },
  } as const,
});

const AuditExportLink = builder.objectRef<ExportLink>('AuditExportLink').implement({
  description: 'A download link for an audit export. It needs no header, so browsers and curl can fetch it as is.',
  fields: (t) => ({
    url: t.exposeString('url', { description: 'GET it before `expiresAt`; the download itself may run longer.' }),
    expiresAt: t.field({ type: 'DateTime', resolve: (l) => l.expiresAt }),
    format: t.field({ type: AuditExportFormatEnum, resolve: (l) => l.format }),
  }),
});

builder.queryFields((t) => ({
  auditExportUrl: t.field({
    type: AuditExportLink,
    description:
      'A short-lived signed link that streams the filter’s entries (oldest first) as CSV or JSON. The link acts as the API key that asked for it, with that key’s capabilities when the download starts. Needs logging.export; includeBodies also needs logging.view_bodies.',
    authScopes: { capability: 'logging.export' },
    args: {
      filter: t.arg({ type: AuditLogFilterInput }),
      format: t.arg({ type: AuditExportFormatEnum, required: true }),
      includeBodies: t.arg.boolean({ defaultValue: false }),
    },
    resolve: (_r, args, ctx) =>
      ctx.services.auditExport.createLink(ctx.viewer, parseGraphQLFilter(args.filter), args.format, args.includeBodies ?? false),
  }),
}));
