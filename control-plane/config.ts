import path from 'node:path';
import { z } from 'zod';

/**
 * Every setting of the control plane, read once at start from the environment (and the
 * matching `--flags`), validated, and frozen. A bad value fails start-up with an error
 * that names the variable.
 */
export interface ControlPlaneConfig {
  /** `postgres://…` selects real Postgres; unset selects embedded PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Where embedded mode keeps its database and generated files. Default `./.gatehouse`. */
  readonly dataDir: string;
  /** Interface to bind. Default `127.0.0.1`; use `0.0.0.0` behind a load balancer. */
  readonly host: string;
  /** Control-plane port (GraphQL, subscriptions). Default 4000; 0 picks a free port. */
  readonly port: number;
  /** Base URL users reach the control plane at; defaults to `http://localhost:<port>`. */
  readonly publicUrl: string | undefined;
  /** Apply pending migrations on start. Default true. */
  readonly migrateOnStart: boolean;
  /** Vault keyring `[id:]key[,…]`; unset generates one into `<dataDir>/encryption-key`. */
  readonly encryptionKey: string | undefined;
  /** Base URL MCP clients reach data planes at; gateway URLs are `<this>/mcp/<slug>`. */
  readonly dataPlanePublicUrl: string;
  /** Use this admin key for the bootstrap owner key instead of generating one. */
  readonly bootstrapAdminKey: string | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Serve GraphiQL at `/graphql` in a browser. Default on unless NODE_ENV=production. */
  readonly graphiql: boolean;
  /** Deepest selection set a GraphQL operation may have. Default 12. */
  readonly maxQueryDepth: number;
  /** Highest estimated cost (fields × requested page sizes) an operation may have. Default 20000. */
  readonly maxQueryCost: number;
  /** Seconds between periodic feature discoveries of every enabled server. Default 3600; 0 disables. */
  readonly discoveryIntervalSeconds: number;
  /** Deadline of one discovery (start, initialize and every list), in milliseconds. Default 15000. */
  readonly discoveryTimeoutMs: number;
  /** Identical alerts this many seconds apart or closer fold into one. Default 600. */
  readonly alertFoldWindowSeconds: number;
}

export interface ConfigVariable {
  readonly env: string;
  readonly flag?: string;
  readonly description: string;
  readonly default?: string;
}

/** The documented variables, in the order `--help` lists them. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  { env: 'DATABASE_URL', flag: '--database-url', description: 'Postgres connection string; unset uses the embedded database (PGlite)' },
  { env: 'GATEHOUSE_DATA_DIR', flag: '--data-dir', description: 'data directory for the embedded database and generated files', default: './.gatehouse' },
  { env: 'GATEHOUSE_HOST', flag: '--host', description: 'interface to listen on', default: '127.0.0.1' },
  { env: 'GATEHOUSE_CONTROL_PLANE_PORT', flag: '--port', description: 'control-plane (GraphQL) port; 0 picks a free one', default: '4000' },
  { env: 'GATEHOUSE_PUBLIC_URL', flag: '--public-url', description: 'external base URL of the control plane', default: 'http://localhost:<port>' },
  { env: 'GATEHOUSE_MIGRATE', flag: '--no-migrate', description: 'apply pending migrations on start (true|false)', default: 'true' },
  { env: 'GATEHOUSE_DATA_PLANE_PUBLIC_URL', description: 'base URL MCP clients reach the data plane at', default: 'http://localhost:4001' },
  { env: 'GATEHOUSE_BOOTSTRAP_ADMIN_KEY', description: 'owner API key to create on an empty database instead of a generated one' },
  { env: 'GATEHOUSE_ENCRYPTION_KEY', description: 'vault keyring [id:]key[,[id:]key...] of 32-byte base64/hex keys; the first seals', default: 'generated into the data dir' },
  { env: 'GATEHOUSE_LOG_LEVEL', flag: '--log-level', description: 'fatal|error|warn|info|debug|trace|silent', default: 'info' },
  { env: 'GATEHOUSE_GRAPHIQL', description: 'serve GraphiQL (true|false)', default: 'true unless NODE_ENV=production' },
  { env: 'GATEHOUSE_MAX_QUERY_DEPTH', description: 'maximum GraphQL selection depth', default: '12' },
  { env: 'GATEHOUSE_MAX_QUERY_COST', description: 'maximum estimated GraphQL operation cost', default: '20000' },
  { env: 'GATEHOUSE_DISCOVERY_INTERVAL_SECONDS', description: 'seconds between periodic feature discoveries of every server; 0 disables', default: '3600' },
  { env: 'GATEHOUSE_DISCOVERY_TIMEOUT_MS', description: 'deadline of one feature discovery in milliseconds', default: '15000' },
  { env: 'GATEHOUSE_ALERT_FOLD_WINDOW_SECONDS', description: 'identical alerts this close together fold into one with a count; 0 never folds', default: '600' },
];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

const bool = (variable: string, value: string | undefined, fallback: boolean): boolean => {
  if (value === undefined || value === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(variable, `expected true or false, got "${value}"`);
};

const int = (variable: string, value: string | undefined, fallback: number, min: number, max: number): number => {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(variable, `expected an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
};

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Parses `--flag value`, `--flag=value` and `--no-flag` into environment-variable overrides. */
export function flagsToEnv(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) continue;
    const [rawName, inline] = arg.split('=', 2) as [string, string | undefined];
    if (rawName === '--no-migrate') {
      out.GATEHOUSE_MIGRATE = 'false';
      continue;
    }
    const variable = CONFIG_VARIABLES.find((v) => v.flag === rawName);
    if (!variable) continue;
    const value = inline ?? argv[i + 1];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) {
      throw new ConfigError(variable.env, `flag ${rawName} needs a value`);
    }
    if (inline === undefined) i++;
    out[variable.env] = value;
  }
  return out;
}

/** Reads and validates the control-plane configuration. Throws {@link ConfigError}. */
export function loadControlPlaneConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  overrides: Partial<ControlPlaneConfig> = {},
): ControlPlaneConfig {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'expected a postgres:// or postgresql:// URL');
  }
  const publicUrl = env.GATEHOUSE_PUBLIC_URL || undefined;
  if (publicUrl !== undefined && !URL.canParse(publicUrl)) {
    throw new ConfigError('GATEHOUSE_PUBLIC_URL', `not a URL: "${publicUrl}"`);
  }
  const dataPlanePublicUrl = (env.GATEHOUSE_DATA_PLANE_PUBLIC_URL || 'http://localhost:4001').replace(/\/+$/, '');
  if (!URL.canParse(dataPlanePublicUrl)) {
    throw new ConfigError('GATEHOUSE_DATA_PLANE_PUBLIC_URL', `not a URL: "${dataPlanePublicUrl}"`);
  }
  const level = logLevel.safeParse(env.GATEHOUSE_LOG_LEVEL ?? 'info');
  if (!level.success) {
    throw new ConfigError('GATEHOUSE_LOG_LEVEL', `expected one of ${logLevel.options.join(', ')}`);
  }
  const bootstrapAdminKey = env.GATEHOUSE_BOOTSTRAP_ADMIN_KEY || undefined;
  if (bootstrapAdminKey !== undefined && !/^gh_admin_[A-Za-z0-9_-]{32,}$/.test(bootstrapAdminKey)) {
    throw new ConfigError(
      'GATEHOUSE_BOOTSTRAP_ADMIN_KEY',
      'must be "gh_admin_" followed by at least 32 URL-safe random characters (e.g. gh_admin_$(openssl rand -hex 24))',
    );
  }
  const config: ControlPlaneConfig = {
    databaseUrl,
    dataDir: path.resolve(env.GATEHOUSE_DATA_DIR || '.gatehouse'),
    host: env.GATEHOUSE_HOST || '127.0.0.1',
    port: int('GATEHOUSE_CONTROL_PLANE_PORT', env.GATEHOUSE_CONTROL_PLANE_PORT, 4000, 0, 65535),
    publicUrl,
    migrateOnStart: bool('GATEHOUSE_MIGRATE', env.GATEHOUSE_MIGRATE, true),
    bootstrapAdminKey,
    encryptionKey: env.GATEHOUSE_ENCRYPTION_KEY || undefined,
    dataPlanePublicUrl,
    logLevel: level.data,
    graphiql: bool('GATEHOUSE_GRAPHIQL', env.GATEHOUSE_GRAPHIQL, env.NODE_ENV !== 'production'),
    maxQueryDepth: int('GATEHOUSE_MAX_QUERY_DEPTH', env.GATEHOUSE_MAX_QUERY_DEPTH, 12, 2, 100),
    maxQueryCost: int('GATEHOUSE_MAX_QUERY_COST', env.GATEHOUSE_MAX_QUERY_COST, 20000, 10, 10_000_000),
    discoveryIntervalSeconds: int('GATEHOUSE_DISCOVERY_INTERVAL_SECONDS', env.GATEHOUSE_DISCOVERY_INTERVAL_SECONDS, 3600, 0, 604_800),
    discoveryTimeoutMs: int('GATEHOUSE_DISCOVERY_TIMEOUT_MS', env.GATEHOUSE_DISCOVERY_TIMEOUT_MS, 15_000, 100, 600_000),
    alertFoldWindowSeconds: int('GATEHOUSE_ALERT_FOLD_WINDOW_SECONDS', env.GATEHOUSE_ALERT_FOLD_WINDOW_SECONDS, 600, 0, 604_800),
    ...overrides,
  };
  return Object.freeze(config);
}
