/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, server
 * scenarios; 0.1.13 by default, `--version 0.1.16` for the latest) against a Gatehouse data plane fronting the conformance fixture
 * (`test/fixtures/mcp/conformance-server.ts`) through gateway `conf`, whose one assignment
 * has an EMPTY namespace prefix and ALLOW_ALL provisioning (so the suite finds the names
 * it expects: `test_simple_text`, `test://static-text`, `test_simple_prompt`, …).
 *
 *   npx tsx test/conformance/run.ts [--version 0.1.13|0.1.16] [--scenario <name>] [--suite active|all|pending] [--verbose]
 *
 * Prints the suite's output and exits with its status (non-zero when a scenario fails).
 *
 * Authentication: the suite's server scenarios send no `Authorization` header and have no
 * option or variable to add one, so the runner puts a loopback forwarder in front of the
 * gateway that adds `Authorization: Bearer <the fixture's access token>` to every request
 * and passes everything else (Host and Origin included, so DNS-rebinding checks reach the
 * gateway) unchanged. The gateway itself enforces authentication as in production.
 *
 * 0.1.13 runs on this Node (20). 0.1.14 and later need Node 22: npx fetches the `node@22`
 * package with the suite, and the suite's `#!/usr/bin/env node` then finds Node 22 first
 * on its PATH; the gateway itself stays on Node 20. Neither is in package.json: both are
 * fetched by npx (`.ci/run` runs both versions).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildDataPlane } from '../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../data-plane/snapshot/snapshot-source.js';
import { startHttpFixture } from '../fixtures/mcp/spawn.js';
import { ACCESS_TOKEN, GATEWAY_SLUG, gatewaySnapshot } from './gateway-fixture.js';

const SUITE = '@modelcontextprotocol/conformance';
const versionArg = process.argv.indexOf('--version');
const VERSION = versionArg >= 0 ? process.argv[versionArg + 1] : '0.1.13';
if (VERSION === undefined || !/^\d+\.\d+\.\d+$/.test(VERSION)) {
  process.stderr.write(`--version needs a released version of ${SUITE}, such as 0.1.16\n`);
  process.exit(2);
}
/** What the suite is given: everything but `--version <v>`. */
const SUITE_ARGS = process.argv.slice(2).filter((_, i, all) => all[i] !== '--version' && all[i - 1] !== '--version');
/** The npx command: versions after 0.1.13 need Node 22, which the `node@22` package provides. */
const [major, minor, patch] = VERSION.split('.').map(Number) as [number, number, number];
const NEEDS_NODE_22 = major > 0 || minor > 1 || patch > 13;
const NPX_ARGS = NEEDS_NODE_22 ? ['-y', '-p', 'node@22', '-p', `${SUITE}@${VERSION}`, '--', 'conformance'] : ['-y', `${SUITE}@${VERSION}`];

/** A loopback forwarder that adds the bearer token; the suite cannot send one itself. */
async function startAuthForwarder(target: URL): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, authorization: `Bearer ${ACCESS_TOKEN}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`forwarder: ${error.message}`);
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function main(): Promise<number> {
  const fixture = await startHttpFixture('conformance-server');
  const snapshots = new InMemorySnapshotSource();
  snapshots.offer(await gatewaySnapshot([{ url: fixture.url, prefix: '' }]));
  const plane = buildDataPlane({ port: 0, host: '127.0.0.1', sessionSecret: randomBytes(32).toString('hex') }, { snapshots });
  const { url: planeUrl } = await plane.listen();
  const forwarder = await startAuthForwarder(new URL(planeUrl));
  const mcpUrl = `http://127.0.0.1:${forwarder.port}/mcp/${GATEWAY_SLUG}`;
  process.stdout.write(`gateway ${planeUrl}/mcp/${GATEWAY_SLUG} (suite URL ${mcpUrl}, bearer token added by the forwarder); ${SUITE}@${VERSION}${NEEDS_NODE_22 ? ' on Node 22 (node@22)' : ''}\n`);

  try {
    let output = '';
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('npx', [...NPX_ARGS, 'server', '--url', mcpUrl, ...SUITE_ARGS], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        process.stdout.write(chunk);
      });
      child.once('error', reject);
      child.once('close', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
    // Trust the summary as well as the exit status: any failed check, or no summary, fails the run.
    // (the whole suite prints "Total: N passed, M failed"; one scenario "Passed: N/T, M failed").
    const summary = /Total: \d+ passed, (\d+) failed|Passed: \d+\/\d+, (\d+) failed/.exec(output);
    if (!summary) return code === 0 ? 1 : code;
    return Number(summary[1] ?? summary[2]) > 0 && code === 0 ? 1 : code;
  } finally {
    forwarder.server.closeAllConnections();
    await new Promise((resolve) => forwarder.server.close(resolve));
    await plane.close();
    await fixture.close();
  }
}

main().then(
  (code) => {
    process.stdout.write(code === 0 ? `conformance ${VERSION}: passed\n` : `conformance ${VERSION}: FAILED (exit ${code})\n`);
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`conformance runner failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
