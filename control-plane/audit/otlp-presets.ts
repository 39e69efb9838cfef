import type { LogExporterEncoding, LogExporterPreset } from './audit-log.table.js';

/** How a known destination takes OTLP/HTTP logs. */
export interface OtlpPreset {
  readonly preset: LogExporterPreset;
  readonly label: string;
  /** Used when no endpoint is given; null when the endpoint is account-specific and must be given. */
  readonly defaultEndpoint: string | null;
  /** Appended to an endpoint given as a bare origin (`https://host`). */
  readonly logsPath: string;
  /** Headers the destination requires (lowercase); creating an exporter without them fails. */
  readonly requiredHeaders: readonly string[];
  /** Headers the destination understands beyond the required ones. */
  readonly optionalHeaders: readonly string[];
  /** Non-secret headers always sent. */
  readonly fixedHeaders: Readonly<Record<string, string>>;
  readonly defaultEncoding: LogExporterEncoding;
  /** Encodings the destination accepts. */
  readonly encodings: readonly LogExporterEncoding[];
  readonly help: string;
}

/**
 * Presets fill in what each vendor documents for its OTLP/HTTP logs intake: endpoint,
 * path and auth header names. The secret values are the operator's to give.
 */
export const OTLP_PRESETS: readonly OtlpPreset[] = Object.freeze<OtlpPreset[]>([
  {
    preset: 'collector',
    label: 'OpenTelemetry Collector (self-hosted)',
    defaultEndpoint: 'http://localhost:4318/v1/logs',
    logsPath: '/v1/logs',
    requiredHeaders: [],
    optionalHeaders: ['authorization'],
    fixedHeaders: {},
    defaultEncoding: 'protobuf',
    encodings: ['protobuf', 'json'],
    help: 'The OTLP/HTTP receiver of any collector (port 4318 by default).',
  },
  {
    preset: 'datadog',
    label: 'Datadog',
    defaultEndpoint: 'https://otlp.datadoghq.com/v1/logs',
    logsPath: '/v1/logs',
    requiredHeaders: ['dd-api-key'],
    optionalHeaders: [],
    fixedHeaders: { 'dd-protocol': 'otlp' },
    defaultEncoding: 'protobuf',
    encodings: ['protobuf'],
    help: 'Datadog’s OTLP logs intake takes protobuf only. For another site use https://otlp.<site>/v1/logs (e.g. otlp.datadoghq.eu).',
  },
  {
    preset: 'grafana_cloud',
    label: 'Grafana Cloud',
    defaultEndpoint: null,
    logsPath: '/otlp/v1/logs',
    requiredHeaders: ['authorization'],
    optionalHeaders: [],
    fixedHeaders: {},
    defaultEncoding: 'protobuf',
    encodings: ['protobuf', 'json'],
    help: 'Your stack’s OTLP gateway, https://otlp-gateway-<zone>.grafana.net/otlp; authorization is "Basic base64(<instance id>:<access policy token with logs:write>)".',
  },
  {
    preset: 'honeycomb',
    label: 'Honeycomb',
    defaultEndpoint: 'https://api.honeycomb.io/v1/logs',
    logsPath: '/v1/logs',
    requiredHeaders: ['x-honeycomb-team'],
    optionalHeaders: ['x-honeycomb-dataset'],
    fixedHeaders: {},
    defaultEncoding: 'protobuf',
    encodings: ['protobuf', 'json'],
    help: 'EU accounts use https://api.eu1.honeycomb.io/v1/logs. x-honeycomb-team is the ingest key.',
  },
  {
    preset: 'new_relic',
    label: 'New Relic',
    defaultEndpoint: 'https://otlp.nr-data.net/v1/logs',
    logsPath: '/v1/logs',
    requiredHeaders: ['api-key'],
    optionalHeaders: [],
    fixedHeaders: {},
    defaultEncoding: 'protobuf',
    encodings: ['protobuf', 'json'],
    help: 'EU accounts use https://otlp.eu01.nr-data.net/v1/logs. api-key is the license key.',
  },
]);

export const OTLP_PRESET_NAMES = OTLP_PRESETS.map((p) => p.preset);

export function presetOf(preset: LogExporterPreset): OtlpPreset {
  return OTLP_PRESETS.find((p) => p.preset === preset)!;
}

/** An endpoint given as a bare origin gets the preset's logs path; one with a path is kept as given. */
export function completeEndpoint(preset: OtlpPreset, endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = preset.logsPath;
  else if (preset.preset === 'grafana_cloud' && url.pathname.replace(/\/+$/, '') === '/otlp') url.pathname = preset.logsPath;
  return url.toString();
}
