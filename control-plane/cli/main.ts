import { buildControlPlane } from '../app.js';
import { insertApiKey } from '../api-keys/api-key.service.js';
import { CONFIG_VARIABLES, ConfigError, flagsToEnv, loadControlPlaneConfig, type ControlPlaneConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrateToLatest } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { createWorkspace } from '../workspaces/workspace.service.js';

const USAGE = `gatehouse — a governed gateway for the Model Context Protocol

Usage: gatehouse <command> [--flags]

Commands:
  start                      run Gatehouse (default); embedded database unless DATABASE_URL is set
  control-plane              run the control plane only
  migrate                    apply pending database migrations and exit
  recovery-key [--workspace <id>] [--name <name>]
                             mint a new owner API key directly against the database
  workspace-create --name <name>
                             create another workspace and print its owner API key
  help                       show this text

Configuration (environment variable, flag, default):
${CONFIG_VARIABLES.map((v) => `  ${v.env.padEnd(32)} ${(v.flag ?? '').padEnd(16)} ${v.description}${v.default ? ` (default: ${v.default})` : ''}`).join('\n')}
`;

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  const inline = argv.find((a) => a.startsWith(`${name}=`));
  return inline?.slice(name.length + 1);
}

async function withDatabase<T>(config: ControlPlaneConfig, fn: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>): Promise<T> {
  const logger = createLogger(config.logLevel);
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.databaseUrl ? undefined : `${config.dataDir}/db`, logger });
  try {
    await migrateToLatest(database);
    return await fn(database);
  } finally {
    await database.close();
  }
}

async function start(config: ControlPlaneConfig): Promise<void> {
  const started = Date.now();
  const app = await buildControlPlane(config);
  const url = await app.listen();
  const publicUrl = config.publicUrl ?? url;
  const lines = [
    '',
    `  Gatehouse control plane is up (${app.database.kind === 'pglite' ? `embedded database in ${config.dataDir}` : 'Postgres'}, ${Date.now() - started} ms)`,
    `  GraphQL:        ${publicUrl}/graphql${config.graphiql ? '   (open it in a browser for GraphiQL)' : ''}`,
    `  Subscriptions:  ${publicUrl.replace(/^http/, 'ws')}/graphql   (graphql-ws)`,
  ];
  if (app.bootstrap) {
    lines.push(
      '',
      '  Owner API key (shown once; send it as "Authorization: Bearer <key>"):',
      `    ${app.bootstrap.adminKey}`,
    );
    if (app.bootstrap.keyFile) lines.push(`  Also written to ${app.bootstrap.keyFile} (mode 0600).`);
  } else {
    lines.push('', '  Existing workspace: use your admin API key. Lost it? `npm run gatehouse -- recovery-key`.');
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (err) => {
        app.logger.error({ err }, 'shutdown failed');
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
  const config = loadControlPlaneConfig({ ...process.env, ...flagsToEnv(argv) });
  switch (command) {
    case 'start':
    case 'control-plane':
      await start(config);
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
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n(run with --help to see every setting)\n`);
      process.exit(2);
    }
    process.stderr.write(`gatehouse failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
