import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sealSnapshotSecret } from '../../../schema/snapshot/secrets.js';
import type { SnapshotRuleEngine } from '../../../schema/snapshot/types.js';
import { snapshotSecretOpener } from '../../../schema/rules/engines/index.js';

/** One request an engine server received, body as raw bytes (signatures cover the bytes). */
export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  readonly remotePort: number | undefined;
  json<T = unknown>(): T;
}

export interface EngineServer {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  close(): Promise<void>;
}

export type Handler = (request: Received, response: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

/** A real HTTP server on 127.0.0.1, port 0, speaking whatever `handler` answers. */
export async function startEngineServer(handler: Handler): Promise<EngineServer> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const request: Received = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body,
        remotePort: req.socket.remotePort,
        json: () => JSON.parse(body.toString('utf8')),
      };
      received.push(request);
      Promise.resolve(handler(request, res, req)).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** Seals secrets the way the control plane does, under a snapshot key the data plane holds. */
export function snapshotSecrets() {
  const key = randomBytes(32);
  const keyId = 'sk_test';
  return {
    seal: (plaintext: string, aad = 'engine:test') => sealSnapshotSecret(key, keyId, plaintext, aad),
    open: snapshotSecretOpener(new Map([[keyId, key]])),
  };
}

export const SIGNING_SECRET = 'whsec_0123456789abcdef';

export function engineFixture(
  secrets: ReturnType<typeof snapshotSecrets>,
  overrides: Partial<Omit<SnapshotRuleEngine, 'headers'>> & { url: string; headers?: Record<string, string> },
): SnapshotRuleEngine {
  const { headers = {}, ...rest } = overrides;
  return {
    id: 'eng_1',
    name: 'acme-guard',
    kind: 'webhook',
    method: 'POST',
    forwardHeaders: [],
    signingSecret: secrets.seal(SIGNING_SECRET, 'engine:eng_1:signing'),
    timeoutMs: 5_000,
    allowPrivateNetwork: true,
    options: {},
    ...rest,
    headers: Object.entries(headers).map(([name, value]) => ({ name, value: secrets.seal(value, `engine:eng_1:header:${name}`) })),
  };
}

export const evaluation = {
  workspace: { id: 'ws_1' },
  gateway: { id: 'gw_1', slug: 'eng' },
  server: { id: 'srv_1', name: 'files' },
  feature: { type: 'tools' as const, name: 'read_file' },
  caller: { userId: 'usr_1', connectionId: 'conn_1', hostId: 'host_1' },
  hook: 'request' as const,
  payload: { path: '/etc/hosts', options: { follow: true } },
};
