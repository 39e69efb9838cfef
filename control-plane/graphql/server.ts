import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Viewer } from '../access/viewer.js';
import { useDataPlaneOperations } from '../data-planes/use-data-plane-operations.js';
import type { ControlPlaneConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services.js';
import { TOKEN_PREFIXES } from '../shared/tokens.js';
import { createLoaders, type Context } from './context.js';
import { formatExecutionError, useDomainErrors } from './errors-plugin.js';
import { useOperationLimits } from './operation-limits.js';
import { getSchema } from './schema.js';

export const GRAPHQL_PATH = '/graphql';

/** Duck-typed: yoga's helpers may build errors from another copy of graphql-js. */
const isGraphQLError = (e: unknown): e is GraphQLError => e instanceof Error && e.name === 'GraphQLError';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="gatehouse"' } },
    },
  });
}

/** Resolves an `Authorization` value (header or connection parameter) to a viewer, or throws 401. */
async function authenticate(services: Services, authorization: unknown): Promise<Viewer> {
  if (typeof authorization !== 'string' || authorization === '') {
    throw unauthenticated('missing credentials: send "Authorization: Bearer <admin API key>"');
  }
  const match = BEARER.exec(authorization);
  if (!match) throw unauthenticated('malformed Authorization header: expected "Bearer <admin API key>"');
  if (match[1]!.startsWith(TOKEN_PREFIXES.dataPlane)) {
    const dataPlane = await services.dataPlanes.authenticate(match[1]!);
    if (!dataPlane) throw unauthenticated('the data-plane token is unknown or revoked');
    return dataPlane;
  }
  const viewer = await services.apiKeys.authenticate(match[1]!);
  if (!viewer) throw unauthenticated('the API key is unknown or revoked');
  return viewer;
}

interface ServerContext {
  readonly viewer?: Viewer;
}

export interface GraphQLHandler {
  readonly yoga: YogaServerInstance<ServerContext, Context>;
  /** Serves graphql-ws subscriptions on the same path; returns a function that stops it. */
  attachWebSockets(server: Server): () => Promise<void>;
}

export function createGraphQLHandler(config: ControlPlaneConfig, services: Services, logger: Logger): GraphQLHandler {
  const makeContext = (viewer: Viewer, requestId: string): Context => ({
    viewer,
    services,
    loaders: createLoaders(services, viewer.workspaceId),
    requestId,
    logger,
  });

  const yoga = createYoga<ServerContext, Context>({
    schema: getSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS', title: 'Gatehouse GraphQL' } : false,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    maskedErrors: {
      maskError: (error) => {
        // Yoga's own request errors (bad JSON, wrong method) carry their HTTP status: keep them.
        if (isGraphQLError(error) && error.extensions?.http) return error;
        if (isGraphQLError(error)) return formatExecutionError(error, randomUUID(), logger);
        const requestId = randomUUID();
        logger.error({ err: error, requestId }, 'unexpected error outside execution');
        return new GraphQLError(`Unexpected error. Request id: ${requestId}`, {
          extensions: { code: 'INTERNAL_SERVER_ERROR', requestId, http: { status: 500 } },
        });
      },
    },
    context: async ({ request, viewer }) => {
      const requestId = request.headers.get('x-request-id')?.slice(0, 100) || randomUUID();
      return makeContext(viewer ?? (await authenticate(services, request.headers.get('authorization'))), requestId);
    },
    plugins: [
      useOperationLimits({ maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost }),
      useDomainErrors(logger),
      useDataPlaneOperations(),
    ],
  });

  return {
    yoga,
    attachWebSockets(server) {
      const wss = new WebSocketServer({ server, path: GRAPHQL_PATH });
      const ws = useServer<Record<string, unknown>, { viewer?: Viewer }>(
        {
          onConnect: async (ctx) => {
            const params = ctx.connectionParams ?? {};
            const authorization =
              params.authorization ?? params.Authorization ?? (typeof params.apiKey === 'string' ? `Bearer ${params.apiKey}` : undefined);
            try {
              ctx.extra.viewer = await authenticate(services, authorization);
              return true;
            } catch {
              return false; // graphql-ws closes with 4403 Forbidden
            }
          },
          execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
          subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
          onSubscribe: async (ctx, _id, params) => {
            const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
              ...ctx,
              req: ctx.extra.request,
              socket: ctx.extra.socket,
              params,
              viewer: ctx.extra.viewer,
              // POST: yoga refuses mutations on a GET request, and graphql-ws carries mutations too.
              request: new Request('http://localhost/graphql', {
                method: 'POST',
                headers: { 'x-request-id': randomUUID() },
              }),
            });
            let document;
            try {
              document = parse(params.query);
            } catch (err) {
              return [err instanceof GraphQLError ? err : new GraphQLError(String(err))];
            }
            const errors = validate(schema, document);
            if (errors.length > 0) return errors;
            return {
              schema,
              operationName: params.operationName,
              document,
              variableValues: params.variables,
              contextValue: await contextFactory(),
              rootValue: { execute, subscribe },
            };
          },
        },
        wss,
      );
      return async () => {
        await ws.dispose();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
      };
    },
  };
}
