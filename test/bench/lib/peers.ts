/**
 * The npm MCP proxies a user would otherwise pick, each fronting the stdio echo upstream
 * over Streamable HTTP: `mcp-proxy` (one child process shared by its sessions) and
 * `supergateway` (stateful mode: a child process per session). Both are dev dependencies.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { REPO, freePort, start, type Spawned } from './processes.js';

const require = createRequire(import.meta.url);

function binOf(pkg: string, bin: string): string {
  const manifest = require.resolve(`${pkg}/package.json`, { paths: [REPO] });
  const json = require(manifest) as { bin: Record<string, string> | string };
  const relative = typeof json.bin === 'string' ? json.bin : json.bin[bin]!;
  return path.join(path.dirname(manifest), relative);
}

export interface Peer {
  readonly name: string;
  readonly url: string;
  readonly spawned: Spawned;
}

/** The echo upstream as a stdio command line. */
export const ECHO_STDIO = [process.execPath, '--import', 'tsx', path.join(REPO, 'test/bench/upstreams/echo.ts')] as const;

export async function startMcpProxy(): Promise<Peer> {
  const port = await freePort();
  const { spawned } = await start('mcp-proxy', process.execPath, [binOf('mcp-proxy', 'mcp-proxy'), '--port', String(port), '--host', '127.0.0.1', '--server', 'stream', '--', ...ECHO_STDIO], {
    ready: /starting server|listening/i,
    timeoutMs: 60_000,
  });
  await waitForHttp(`http://127.0.0.1:${port}/mcp`);
  return { name: 'mcp-proxy', url: `http://127.0.0.1:${port}/mcp`, spawned };
}

export async function startSupergateway(): Promise<Peer> {
  const port = await freePort();
  const { spawned } = await start(
    'supergateway',
    process.execPath,
    [binOf('supergateway', 'supergateway'), '--stdio', ECHO_STDIO.map((part) => JSON.stringify(part)).join(' '), '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'info'],
    { ready: /listening|started|running|port/i, timeoutMs: 60_000 },
  );
  await waitForHttp(`http://127.0.0.1:${port}/mcp`);
  return { name: 'supergateway', url: `http://127.0.0.1:${port}/mcp`, spawned };
}

/** Resolves once something answers HTTP at `url` (any status). */
async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { method: 'GET' });
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`nothing answered at ${url} within ${timeoutMs} ms`);
}
