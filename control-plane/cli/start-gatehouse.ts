// The CLI is the one composition root that wires both planes together (DESIGN §2). The
// data plane is imported through the package's `#data-plane/*` alias (package.json
// "imports") rather than a relative path, so this crossing stays explicit and greppable,
// and the planes' own code keeps no cross imports (the boundary test checks data-plane/).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { buildDataPlane, type DataPlane } from '#data-plane/app.js';
import type { DataPlaneEnvironment } from '#data-plane/config.js';
import type { DataPlaneLogger } from '#data-plane/logger.js';
import { PushSnapshotSource } from '#data-plane/snapshot/push-client.js';
import { controlPlaneAuditShipper } from '#data-plane/audit/shipper.js';
import type { Viewer } from '../access/viewer.js';
import { buildControlPlane, type ControlPlane } from '../app.js';
import { ConfigError, type ControlPlaneConfig } from '../config.js';
import type { Database } from '../db/database.js';
import { createLogger, type Logger } from '../logger.js';
import type { Services } from '../services.js';

/** Name of the data plane `start` registers for itself in the default workspace. */
export const EMBEDDED_DATA_PLANE_NAME = 'embedded';
const EMBEDDED_NAME = /^embedded(-\d+)?$/i;
const SESSION_SECRET_FILE = 'session-secret';
const EMBEDDED_TOKEN_FILE = 'embedded-data-plane-token';

export interface StartGatehouseOptions {
  readonly logger?: Logger;
  /** An already-open database (tests); otherwise the control plane opens its own. */
  readonly database?: Database;
  /**
   * True when `GATEHOUSE_DATA_PLANE_PUBLIC_URL` was set: gateway URLs then use it. Otherwise
   * they point at the embedded data plane's own address.
   */
  readonly dataPlanePublicUrlConfigured?: boolean;
  /** How long to wait for the embedded data plane's first snapshot before giving up waiting. Default 30 s. */
  readonly firstSnapshotTimeoutMs?: number;
}

export interface RunningGatehouse {
  readonly controlPlane: ControlPlane;
  /** Control-plane base URL, e.g. `http://127.0.0.1:4000`. */
  readonly controlPlaneUrl: string;
  readonly dataPlane: DataPlane;
  /** The URL the data plane listens on; MCP gateways are at `<this>/mcp/<slug>`. */
  readonly dataPlaneUrl: string;
  /** The base URL gateway URLs advertise (`gateway.dataPlaneUrl`). */
  readonly dataPlanePublicUrl: string;
  readonly snapshots: PushSnapshotSource;
  close(): Promise<void>;
}

/**
 * `gatehouse start`: the control plane, then a data plane in the same process that
 * receives its snapshots over the ordinary push channel (graphql-ws over loopback, with a
 * data-plane token registered as `embedded`), exactly as a separate data plane would.
 */
export async function startGatehouse(
  config: ControlPlaneConfig,
  dataPlaneEnv: DataPlaneEnvironment,
  options: StartGatehouseOptions = {},
): Promise<RunningGatehouse> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const sessionSecret = dataPlaneEnv.sessionSecret ?? readOrCreateSecretFile(config.dataDir, SESSION_SECRET_FILE, () => randomBytes(32).toString('base64url'));
  // Gateway URLs name the data plane, so its port is settled before the control plane is built.
  const dataPlanePort = dataPlaneEnv.port === 0 ? await reservePort(dataPlaneEnv.host) : dataPlaneEnv.port;
  const dataPlanePublicUrl = options.dataPlanePublicUrlConfigured ? config.dataPlanePublicUrl : httpUrl(advertisedHost(dataPlaneEnv.host), dataPlanePort);

  const controlPlane = await buildControlPlane(Object.freeze({ ...config, dataPlanePublicUrl }), {
    logger,
    ...(options.database ? { database: options.database } : {}),
  });
  let snapshots: PushSnapshotSource | undefined;
  let dataPlane: DataPlane | undefined;
  try {
    const controlPlaneUrl = await controlPlane.listen().catch(portInUse('GATEHOUSE_CONTROL_PLANE_PORT', config.port));
    const { port } = controlPlane.server.address() as { port: number };
    const token = await ensureEmbeddedDataPlane(controlPlane.services, config.dataDir, logger);
    const dataPlaneLogger: DataPlaneLogger = logger.child({ plane: 'data' });
    snapshots = new PushSnapshotSource({ url: httpUrl(loopbackHost(config.host), port), token, logger: dataPlaneLogger });
    // [audit] the embedded data plane ships its audit entries over loopback, like a separate one.
    const audit = controlPlaneAuditShipper({ url: httpUrl(loopbackHost(config.host), port), token, logger: dataPlaneLogger, maxBufferedEntries: dataPlaneEnv.auditBufferEntries, buildOn: dataPlaneEnv.auditBuildOn });
    dataPlane = buildDataPlane({ ...dataPlaneEnv.options, publicUrl: dataPlanePublicUrl, host: dataPlaneEnv.host, port: dataPlanePort, sessionSecret }, { snapshots, logger: dataPlaneLogger, audit });
    const { url: dataPlaneUrl } = await dataPlane.listen().catch(portInUse('GATEHOUSE_DATA_PLANE_PORT', dataPlanePort));
    snapshots.start();
    await snapshots.ready(options.firstSnapshotTimeoutMs ?? 30_000).catch((err: unknown) => {
      logger.warn({ err }, 'the embedded data plane has no snapshot yet; MCP calls get 503 until it arrives');
    });
    const source = snapshots;
    const plane = dataPlane;
    return {
      controlPlane,
      controlPlaneUrl,
      dataPlane: plane,
      dataPlaneUrl,
      dataPlanePublicUrl,
      snapshots: source,
      async close() {
        await plane.close();
        await source.close();
        await controlPlane.close();
      },
    };
  } catch (err) {
    await dataPlane?.close().catch(() => undefined);
    await snapshots?.close().catch(() => undefined);
    await controlPlane.close().catch(() => undefined);
    throw err;
  }
}

export { startStandaloneDataPlane, type RunningDataPlane } from './start-data-plane.js';

/**
 * The token of this installation's embedded data plane. Reused across restarts from
 * `<data dir>/embedded-data-plane-token` while the control plane still accepts it;
 * otherwise earlier embedded data planes of the default workspace are revoked and a new
 * one is registered through the DataPlaneService. (Names stay unique even among revoked
 * data planes, so a re-registration takes the next free `embedded-N`.)
 */
async function ensureEmbeddedDataPlane(services: Services, dataDir: string, logger: Logger): Promise<string> {
  const workspace = await services.database.db.selectFrom('workspaces').select('id').orderBy('created_at').orderBy('id').executeTakeFirstOrThrow();
  const tokenFile = path.join(dataDir, EMBEDDED_TOKEN_FILE);
  const stored = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  if (stored) {
    const principal = await services.dataPlanes.authenticate(stored);
    if (principal?.workspaceId === workspace.id) return stored;
  }
  const viewer: Viewer = {
    workspaceId: workspace.id,
    actor: 'system',
    apiKeyId: null,
    roleId: '',
    capabilities: new Set(['workspace.manage_data_planes', 'workspace.view_settings']),
  };
  const existing = await services.dataPlanes.list(viewer, true, { limit: 1000, offset: 0 });
  for (const previous of existing) {
    if (previous.revoked_at === null && EMBEDDED_NAME.test(previous.name)) {
      await services.dataPlanes.revoke(viewer, previous.id);
      logger.info({ dataPlane: previous.id, name: previous.name }, 'revoked the previous embedded data plane');
    }
  }
  const taken = new Set(existing.map((row) => row.name.toLowerCase()));
  let name = EMBEDDED_DATA_PLANE_NAME;
  for (let n = 2; taken.has(name); n += 1) name = `${EMBEDDED_DATA_PLANE_NAME}-${n}`;
  const { dataPlane, token } = await services.dataPlanes.register(viewer, { name });
  writeSecretFile(tokenFile, token);
  logger.info({ dataPlane: dataPlane.id, name }, 'registered the embedded data plane');
  return token;
}

/** Reads `<dir>/<file>`, or creates it (mode 0600) with `generate()`. */
function readOrCreateSecretFile(dir: string, file: string, generate: () => string): string {
  const target = path.join(dir, file);
  if (existsSync(target)) {
    const value = readFileSync(target, 'utf8').trim();
    if (value.length >= 32) return value;
  }
  const value = generate();
  writeSecretFile(target, value);
  return value;
}

function writeSecretFile(target: string, value: string): void {
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, `${value}\n`, { mode: 0o600 });
}

/** A free port on `host`, for a data plane configured with port 0 (its URL must be known up front). */
function reservePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** Where this process reaches a server bound to `host`. */
function loopbackHost(host: string): string {
  if (host === '::') return '::1';
  return WILDCARD.has(host) ? '127.0.0.1' : host;
}

/** The host named in URLs shown to people for a server bound to `host`. */
function advertisedHost(host: string): string {
  return WILDCARD.has(host) ? 'localhost' : host;
}

function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Turns a taken port into a configuration error that names the variable to change. */
function portInUse(variable: string, port: number) {
  return (err: unknown): never => {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new ConfigError(variable, `port ${port} is already in use; stop what holds it or choose another port`);
    }
    throw err;
  };
}
