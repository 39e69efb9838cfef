/**
 * The floor under any gateway on this machine: a bare HTTP forwarder in its own process.
 * It reads each request body, POSTs it to the target over a pooled keep-alive connection
 * (undici, as the data plane does), reads the answer and writes it back, with the
 * `Mcp-Session-Id` and protocol headers passed through. No JSON parsing, no MCP, no
 * policy: what one more process hop costs here (two more socket writes and wake-ups per
 * call), which no proxy can go below.
 *
 *   node --import tsx test/bench/upstreams/forwarder.ts --target http://127.0.0.1:1234/mcp   # prints LISTENING <url>
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const targetArg = process.argv.indexOf('--target');
const target = new URL(targetArg >= 0 ? process.argv[targetArg + 1]! : '');
const pool = new Pool(target.origin, { connections: 256, keepAliveTimeout: 60_000, pipelining: 1 });
const PASSED = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'authorization'];

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const headers: Record<string, string> = {};
    for (const name of PASSED) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    pool
      .request({ method: req.method as 'POST', path: target.pathname, headers, body: chunks.length === 0 ? null : Buffer.concat(chunks) })
      .then(async ({ statusCode, headers: answer, body }) => {
        const text = await body.text();
        const out: Record<string, string> = {};
        for (const name of ['content-type', 'mcp-session-id']) {
          const value = answer[name];
          if (typeof value === 'string') out[name] = value;
        }
        res.writeHead(statusCode, out);
        res.end(text);
      })
      .catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp\n`);
});
