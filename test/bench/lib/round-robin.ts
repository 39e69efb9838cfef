/**
 * A round-robin HTTP proxy for the two-replica scenario: each request goes to the next
 * replica in turn, so one MCP session's messages alternate between data planes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

export async function startRoundRobin(targets: readonly string[]): Promise<{ url: string; close(): Promise<void> }> {
  const pools = targets.map((target) => new Pool(target, { connections: 256, keepAliveTimeout: 60_000 }));
  let next = 0;
  const server: Server = createServer((req, res) => {
    const pool = pools[next++ % pools.length]!;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') headers[name] = value;
    }
    pool
      .request({ method: req.method as 'POST', path: req.url ?? '/', headers, body: req.method === 'GET' || req.method === 'DELETE' ? null : req })
      .then(({ statusCode, headers: answer, body }) => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer)) if (value !== undefined && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') out[name] = value;
        res.writeHead(statusCode, out);
        body.pipe(res);
      })
      .catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(pools.map((pool) => pool.close()));
    },
  };
}
