// The composition root: the only code that imports both planes (DESIGN §2). The data
// plane comes in through the package's `#data-plane/*` alias (package.json "imports").
import path from 'node:path';
import { DATA_PLANE_VARIABLES, DataPlaneConfigError, loadDataPlaneEnvironment } from '#data-plane/config.js';
import { CONFIG_VARIABLES, ConfigError, flagsToEnv, loadControlPlaneConfig, type ControlPlaneConfig } from '../config.js';
import type { openDatabase } from '../db/database.js';
import { createLogger } from '../logger.js';
import { QUICKSTART_VARIABLES, quickstartDefaults } from './quickstart-settings.js';
// Everything else loads on demand, so a data-plane process never loads the control plane
// (its database drivers, GraphQL schema and services) and keeps its memory to what it serves.

const variableLine = (v: { env: string; flag?: string; description: string; default?: string }) =>
  `  ${v.env.padEnd(36)} ${(v.flag ?? '').padEnd(16)} ${v.description}${v.default ? ` (default: ${v.default})` : ''}`;

const USAGE = `gatehouse — a governed gateway for the Model Context Protocol

Usage: gatehouse <command> [--flags]

Commands:
  start                      run the control plane and a data plane in one process (default);
                             embedded database unless DATABASE_URL is set
  control-plane              run the control plane only
  data-plane --control-plane <url> --token <gh_dp_…> [--port N] [--host H]
                             run a data plane alone, fed by that control plane; start as many
                             as you like (they must share GATEHOUSE_SESSION_SECRET)
  quickstart [--url <url>] [--api-key <key>] [--json]
                             create a demo gateway (server-everything) and an MCP token through
                             the GraphQL API of a running Gatehouse, and print how to connect
  migrate                    apply pending database migrations and exit
  recovery-key [--workspace <id>] [--name <name>]
                             mint a new owner API key directly against the database
  workspace-create --name <name>
                             create another workspace and print its owner API key
  help                       show this text

Control plane (environment variable, flag, default):
${CONFIG_VARIABLES.map(variableLine).join('\n')}

Data plane (start and data-plane; flags apply to the data-plane command):
${DATA_PLANE_VARIABLES.map(variableLine).join('\n')}

Quickstart:
${QUICKSTART_VARIABLES.map(variableLine).join('\n')}
`;

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  const inline = argv.find((a) => a.startsWith(`${name}=`));
  return inline?.slice(name.length + 1);
}

async function withDatabase<T>(config: ControlPlaneConfig, fn: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>): Promise<T> {
  const logger = createLogger(config.logLevel);
  const { openDatabase } = await import('../db/database.js');
  const { migrateToLatest } = await import('../db/migrate.js');
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.databaseUrl ? undefined : `${config.dataDir}/db`, logger });
  try {
    await migrateToLatest(database);
    return await fn(database);
  } finally {
    await database.close();
  }
}

async function start(config: ControlPlaneConfig, withDataPlane: boolean): Promise<void> {
  const started = Date.now();
  const logger = createLogger(config.logLevel);
  let close: () => Promise<void>;
  let url: string;
  let bootstrap;
  let database;
  const extra: string[] = [];
  if (withDataPlane) {
    const dataPlaneEnv = loadDataPlaneEnvironment(process.env, { standalone: false });
    const { startGatehouse } = await import('./start-gatehouse.js');
    const running = await startGatehouse(config, dataPlaneEnv, {
      logger,
      dataPlanePublicUrlConfigured: Boolean(process.env.GATEHOUSE_DATA_PLANE_PUBLIC_URL),
    });
    ({ bootstrap, database } = running.controlPlane);
    url = running.controlPlaneUrl;
    close = () => running.close();
    const version = running.snapshots.current()?.version;
    extra.push(
      `  Data plane:     ${running.dataPlanePublicUrl}   (MCP gateways at /mcp/<gateway-slug>; ${version ? `serving snapshot v${version}` : 'no snapshot yet'})`,
    );
  } else {
    const { buildControlPlane } = await import('../app.js');
    const app = await buildControlPlane(config, { logger });
    url = await app.listen();
    ({ bootstrap, database } = app);
    close = () => app.close();
  }
  const publicUrl = config.publicUrl ?? url;
  const lines = [
    '',
    `  Gatehouse control plane is up (${database.kind === 'pglite' ? `embedded database in ${config.dataDir}` : 'Postgres'}, ${Date.now() - started} ms)`,
    `  GraphQL:        ${publicUrl}/graphql${config.graphiql ? '   (open it in a browser for GraphiQL)' : ''}`,
    `  Subscriptions:  ${publicUrl.replace(/^http/, 'ws')}/graphql   (graphql-ws)`,
    ...extra,
  ];
  if (bootstrap) {
    lines.push(
      '',
      '  Owner API key (shown once; send it as "Authorization: Bearer <key>"):',
      `    ${bootstrap.adminKey}`,
    );
    if (bootstrap.keyFile) lines.push(`  Also written to ${bootstrap.keyFile} (mode 0600).`);
  } else {
    lines.push('', '  Existing workspace: use your admin API key. Lost it? `npm run gatehouse -- recovery-key`.');
  }
  if (withDataPlane) lines.push('', '  Next: `npm run quickstart` creates a demo gateway and a token for your MCP client.');
  process.stdout.write(`${lines.join('\n')}\n\n`);
  stopOnSignals(logger, close);
}

async function dataPlaneCommand(argv: readonly string[]): Promise<void> {
  const env = { ...process.env, ...dataPlaneFlagsToEnv(argv) };
  const level = env.GATEHOUSE_LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
    throw new ConfigError('GATEHOUSE_LOG_LEVEL', 'expected one of fatal, error, warn, info, debug, trace, silent');
  }
  const dataPlaneEnv = loadDataPlaneEnvironment(env, { standalone: true });
  const logger = createLogger(level as ControlPlaneConfig['logLevel']);
  const { startStandaloneDataPlane } = await import('./start-data-plane.js');
  const running = await startStandaloneDataPlane(dataPlaneEnv, logger);
  process.stdout.write(
    [
      '',
      `  Gatehouse data plane is up: ${running.url}   (MCP gateways at /mcp/<gateway-slug>)`,
      `  Snapshots from ${dataPlaneEnv.controlPlaneUrl}; readiness at ${running.url}/readyz`,
      '',
      '',
    ].join('\n'),
  );
  stopOnSignals(logger, () => running.close());
}

/** `--control-plane`, `--token`, `--port`, `--host` (and `--log-level`) of the data-plane command, as variables. */
function dataPlaneFlagsToEnv(argv: readonly string[]): Record<string, string> {
  const flags = [...DATA_PLANE_VARIABLES.filter((v) => v.flag), { env: 'GATEHOUSE_LOG_LEVEL', flag: '--log-level' }];
  const out: Record<string, string> = {};
  for (const variable of flags) {
    const value = option(argv, variable.flag!);
    if (value === undefined) continue;
    if (value.startsWith('--')) throw new DataPlaneConfigError(variable.env, `flag ${variable.flag} needs a value`);
    out[variable.env] = value;
  }
  return out;
}

async function quickstartCommand(argv: readonly string[]): Promise<number> {
  const defaults = quickstartDefaults(process.env);
  const url = option(argv, '--url') ?? defaults.url;
  const apiKey = option(argv, '--api-key') ?? defaults.apiKey;
  if (!apiKey) {
    process.stderr.write(
      `quickstart needs an admin API key: pass --api-key, set GATEHOUSE_API_KEY, or run it where ${path.join(defaults.dataDir, 'bootstrap-admin-key')} exists\n`,
    );
    return 2;
  }
  const json = argv.includes('--json');
  const { formatQuickstart, runQuickstart } = await import('./quickstart.js');
  let result;
  try {
    result = await runQuickstart({ url, apiKey, log: json ? undefined : (line) => process.stderr.write(`${line}\n`) });
  } catch (err) {
    // SDK errors name what failed (NETWORK_ERROR, UNAUTHENTICATED, CONFLICT …); no stack needed.
    process.stderr.write(`quickstart failed: ${err instanceof Error ? err.message : String(err)}\n`);
    if (err instanceof Error && err.name === 'GatehouseNetworkError') process.stderr.write(`is Gatehouse running at ${url}? Start it with \`npm start\`.\n`);
    return 1;
  }
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : formatQuickstart(result));
  return 0;
}

function stopOnSignals(logger: ReturnType<typeof createLogger>, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'start';
  if (command === 'help' || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  // These two read their own settings, not the control plane's.
  if (command === 'data-plane') {
    await dataPlaneCommand(argv);
    return -1; // keep running
  }
  if (command === 'quickstart') return quickstartCommand(argv);
  const config = loadControlPlaneConfig({ ...process.env, ...flagsToEnv(argv) });
  switch (command) {
    case 'start':
    case 'control-plane':
      await start(config, command === 'start');
      return -1; // keep running
    case 'migrate':
      await withDatabase(config, async () => undefined);
      process.stdout.write('migrations applied\n');
      return 0;
    case 'recovery-key':
      return withDatabase(config, async (database) => {
        const wanted = option(argv, '--workspace');
        const workspaces = await database.db.selectFrom('workspaces').select(['id', 'name']).orderBy('created_at').execute();
        const workspace = wanted ? workspaces.find((w) => w.id === wanted) : workspaces[0];
        if (!workspace) {
          process.stderr.write(wanted ? `no workspace ${wanted}\n` : 'the database has no workspace yet; run `gatehouse start` first\n');
          return 1;
        }
        if (!wanted && workspaces.length > 1) {
          process.stderr.write(`several workspaces exist; pass --workspace <id>:\n${workspaces.map((w) => `  ${w.id}  ${w.name}`).join('\n')}\n`);
          return 1;
        }
        const owner = await database.db
          .selectFrom('roles')
          .select('id')
          .where('workspace_id', '=', workspace.id)
          .where('builtin', '=', 'owner')
          .executeTakeFirstOrThrow();
        const { insertApiKey } = await import('../api-keys/api-key.service.js');
        const { secret } = await database.db.transaction().execute((trx) =>
          insertApiKey(trx, workspace.id, owner.id, option(argv, '--name') ?? 'Recovery owner key', 'cli:recovery-key'),
        );
        process.stdout.write(`Owner API key for workspace ${workspace.name} (${workspace.id}), shown once:\n${secret}\n`);
        return 0;
      });
    case 'workspace-create':
      return withDatabase(config, async (database) => {
        const name = option(argv, '--name');
        if (!name) {
          process.stderr.write('workspace-create needs --name <name>\n');
          return 1;
        }
        const { insertApiKey } = await import('../api-keys/api-key.service.js');
        const { createWorkspace } = await import('../workspaces/workspace.service.js');
        const { workspace, secret } = await database.db.transaction().execute(async (trx) => {
          const created = await createWorkspace(trx, name);
          const key = await insertApiKey(trx, created.workspace.id, created.roleIds.owner!, 'Initial owner key', 'cli:workspace-create');
          return { workspace: created.workspace, secret: key.secret };
        });
        process.stdout.write(`Workspace ${workspace.name} (${workspace.id}); owner API key, shown once:\n${secret}\n`);
        return 0;
      });
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof DataPlaneConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n(run with --help to see every setting)\n`);
      process.exit(2);
    }
    process.stderr.write(`gatehouse failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
