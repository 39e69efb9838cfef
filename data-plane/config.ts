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

/** A setting of the data-plane process, as `--help` lists it. */
export interface DataPlaneVariable {
  readonly env: string;
  /** The flag of `gatehouse data-plane` that sets it. */
  readonly flag?: string;
  readonly description: string;
  readonly default?: string;
}

/** The data-plane process's variables, in the order `--help` lists them. */
export const DATA_PLANE_VARIABLES: readonly DataPlaneVariable[] = [
  { env: 'GATEHOUSE_CONTROL_PLANE_URL', flag: '--control-plane', description: 'control-plane base URL to receive snapshots from (data-plane command)' },
  { env: 'GATEHOUSE_DATA_PLANE_TOKEN', flag: '--token', description: 'data-plane token gh_dp_… from registerDataPlane (data-plane command)' },
  { env: 'GATEHOUSE_DATA_PLANE_HOST', flag: '--host', description: 'interface the data plane (MCP endpoint) listens on', default: '127.0.0.1' },
  { env: 'GATEHOUSE_DATA_PLANE_PORT', flag: '--port', description: 'data-plane (MCP) port; 0 picks a free one', default: '4001' },
  {
    env: 'GATEHOUSE_SESSION_SECRET',
    description:
      'MCP session-id signing secret, at least 32 characters; required by the data-plane command and shared by all its replicas',
    default: 'start: generated into <data dir>/session-secret',
  },
];

/** A data-plane setting is missing or wrong; `variable` names it. */
export class DataPlaneConfigError extends Error {
  override readonly name = 'DataPlaneConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/** What the data-plane process reads from its environment, validated. */
export interface DataPlaneEnvironment {
  readonly host: string;
  readonly port: number;
  readonly sessionSecret: string | undefined;
  readonly controlPlaneUrl: string | undefined;
  readonly token: string | undefined;
}

/**
 * Reads the data-plane variables once. With `standalone` (the `data-plane` command) the
 * control-plane URL, the token and the session secret are required; in one-process mode
 * the composition root supplies them. Throws {@link DataPlaneConfigError} naming the variable.
 */
export function loadDataPlaneEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  { standalone }: { standalone: boolean },
): DataPlaneEnvironment {
  const value = (name: string) => (env[name] === '' ? undefined : env[name]);
  const portText = value('GATEHOUSE_DATA_PLANE_PORT');
  const port = portText === undefined ? 4001 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DataPlaneConfigError('GATEHOUSE_DATA_PLANE_PORT', `expected an integer from 0 to 65535, got "${portText}"`);
  }
  const sessionSecret = value('GATEHOUSE_SESSION_SECRET');
  if (sessionSecret !== undefined && sessionSecret.length < 32) {
    throw new DataPlaneConfigError('GATEHOUSE_SESSION_SECRET', 'must be at least 32 characters (e.g. $(openssl rand -hex 32))');
  }
  const controlPlaneUrl = value('GATEHOUSE_CONTROL_PLANE_URL');
  if (controlPlaneUrl !== undefined && !/^(https?|wss?):\/\//.test(controlPlaneUrl)) {
    throw new DataPlaneConfigError('GATEHOUSE_CONTROL_PLANE_URL', `expected an http(s) URL such as http://control-plane:4000, got "${controlPlaneUrl}"`);
  }
  if (controlPlaneUrl !== undefined && !URL.canParse(controlPlaneUrl)) {
    throw new DataPlaneConfigError('GATEHOUSE_CONTROL_PLANE_URL', `not a URL: "${controlPlaneUrl}"`);
  }
  const token = value('GATEHOUSE_DATA_PLANE_TOKEN');
  if (token !== undefined && !/^gh_dp_[A-Za-z0-9_-]{20,200}$/.test(token)) {
    throw new DataPlaneConfigError('GATEHOUSE_DATA_PLANE_TOKEN', 'expected a data-plane token gh_dp_…, as registerDataPlane shows it once');
  }
  if (standalone) {
    if (controlPlaneUrl === undefined) throw new DataPlaneConfigError('GATEHOUSE_CONTROL_PLANE_URL', 'required: the control plane to receive snapshots from (or --control-plane)');
    if (token === undefined) throw new DataPlaneConfigError('GATEHOUSE_DATA_PLANE_TOKEN', 'required: the data-plane token (or --token); register one with the registerDataPlane mutation');
    if (sessionSecret === undefined) {
      throw new DataPlaneConfigError('GATEHOUSE_SESSION_SECRET', 'required for a separate data plane; give every replica the same one (e.g. $(openssl rand -hex 32))');
    }
  }
  return Object.freeze({ host: value('GATEHOUSE_DATA_PLANE_HOST') ?? '127.0.0.1', port, sessionSecret, controlPlaneUrl, token });
}
