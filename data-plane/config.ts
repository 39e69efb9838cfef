/** The data plane's settings, resolved once and frozen. */
export interface DataPlaneConfig {
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host: string;
  /** Port to listen on; 0 picks a free one. Default 4001 (`GATEHOUSE_DATA_PLANE_PORT`). */
  readonly port: number;
  /**
   * Secret the session-id key is derived from (at least 32 characters). Every replica
   * serving the same sessions must share it.
   */
  readonly sessionSecret: string;
  /** Sessions older than this must re-initialize. Default 24 h. */
  readonly sessionMaxAgeMs: number;
  /** Largest request body accepted; larger gets 413. Default 4 MiB. */
  readonly maxBodyBytes: number;
  /** Per-upstream deadline of list fan-outs. Default 5 s. */
  readonly listTimeoutMs: number;
  /** Per-upstream timeout of targeted calls (`tools/call` …). Default 60 s. */
  readonly callTimeoutMs: number;
}

export type DataPlaneConfigInput = Partial<DataPlaneConfig> & Pick<DataPlaneConfig, 'sessionSecret'>;

/** Fills defaults and checks every option, naming the one that is wrong. */
export function resolveDataPlaneConfig(input: DataPlaneConfigInput): DataPlaneConfig {
  const config: DataPlaneConfig = {
    host: input.host ?? '127.0.0.1',
    port: input.port ?? 4001,
    sessionSecret: input.sessionSecret,
    sessionMaxAgeMs: input.sessionMaxAgeMs ?? 24 * 60 * 60 * 1000,
    maxBodyBytes: input.maxBodyBytes ?? 4 * 1024 * 1024,
    listTimeoutMs: input.listTimeoutMs ?? 5_000,
    callTimeoutMs: input.callTimeoutMs ?? 60_000,
  };
  if (typeof config.sessionSecret !== 'string' || config.sessionSecret.length < 32) {
    throw new TypeError('data plane option "sessionSecret" must be a string of at least 32 characters');
  }
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
    throw new TypeError(`data plane option "port" must be an integer from 0 to 65535, got ${config.port}`);
  }
  for (const name of ['sessionMaxAgeMs', 'maxBodyBytes', 'listTimeoutMs', 'callTimeoutMs'] as const) {
    if (!Number.isInteger(config[name]) || config[name] <= 0) {
      throw new TypeError(`data plane option "${name}" must be a positive integer, got ${config[name]}`);
    }
  }
  return Object.freeze(config);
}
