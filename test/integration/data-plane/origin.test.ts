import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { DataPlaneConfigError, loadDataPlaneEnvironment, resolveDataPlaneConfig } from '../../../data-plane/config.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { TOKENS, fixtureSnapshot } from '../../unit/data-plane/fixtures.js';

const SECRET = 'origin-test-session-secret-0123456789abcdef';
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

let snapshots: InMemorySnapshotSource;
let plane: DataPlane;
let port: number;
let custom: DataPlane;
let customPort: number;

beforeAll(async () => {
  snapshots = new InMemorySnapshotSource();
  snapshots.offer(fixtureSnapshot());
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, publicUrl: 'https://mcp.example.com' }, { snapshots });
  port = (await plane.listen()).port;
  custom = buildDataPlane(
    { port: 0, sessionSecret: SECRET, allowedHosts: ['gateway.internal', '127.0.0.1'], allowedOrigins: ['https://app.example.com'] },
    { snapshots },
  );
  customPort = (await custom.listen()).port;
});

afterAll(async () => {
  await plane?.close();
  await custom?.close();
});

/** A raw POST with full control of Host (fetch does not allow setting it). */
function post(target: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target,
        method: 'POST',
        path: '/mcp/eng',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${TOKENS.eng}`,
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(INITIALIZE);
  });
}

describe('Host and Origin validation (DNS rebinding)', () => {
  it('allows loopback hosts and the public URL host, with or without a port, and requests without Origin', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, 'mcp.example.com', 'MCP.example.com:443']) {
      expect((await post(port, { host })).status, host).toBe(200);
    }
  });

  it('refuses a rebound host name with 403 and a JSON-RPC error naming it', async () => {
    const { status, body } = await post(port, { host: `evil.example:${port}` });
    expect(status).toBe(403);
    const parsed = JSON.parse(body) as { jsonrpc: string; id: null; error: { code: number; message: string; data: { code: string } } };
    expect(parsed).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, data: { code: 'HOST_NOT_ALLOWED' } } });
    expect(parsed.error.message).toContain(`"evil.example:${port}"`);
  });

  it('allows loopback and public-URL origins by default and refuses any other browser origin, naming it', async () => {
    for (const origin of ['http://localhost:6274', 'http://127.0.0.1:3000', 'https://mcp.example.com']) {
      expect((await post(port, { host: `127.0.0.1:${port}`, origin })).status, origin).toBe(200);
    }
    for (const origin of ['http://evil.example', 'https://mcp.example.com:8443', 'null']) {
      const { status, body } = await post(port, { host: `127.0.0.1:${port}`, origin });
      expect(status, origin).toBe(403);
      const parsed = JSON.parse(body) as { error: { message: string; data: { code: string } } };
      expect(parsed.error.data.code).toBe('ORIGIN_NOT_ALLOWED');
      expect(parsed.error.message).toContain(`origin "${origin}"`);
    }
  });

  it('uses configured lists instead of the defaults', async () => {
    expect((await post(customPort, { host: 'gateway.internal', origin: 'https://app.example.com' })).status).toBe(200);
    expect((await post(customPort, { host: 'localhost' })).status).toBe(403);
    expect((await post(customPort, { host: 'gateway.internal', origin: 'http://localhost:6274' })).status).toBe(403);
  });

  it('leaves /healthz to probes that reach the pod by IP', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { origin: 'http://evil.example' } });
    expect(response.status).toBe(200);
  });
});

describe('environment', () => {
  it('maps the variables to options and names the variable that is wrong', () => {
    const env = loadDataPlaneEnvironment(
      {
        GATEHOUSE_DATA_PLANE_ALLOWED_HOSTS: 'gw.example.com, localhost',
        GATEHOUSE_DATA_PLANE_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:*',
        GATEHOUSE_RATE_LIMIT_TOKEN_CAPACITY: '100',
        GATEHOUSE_RATE_LIMIT_IP_REFILL_PER_SECOND: '2.5',
        REDIS_URL: 'redis://127.0.0.1:6379',
        GATEHOUSE_DATA_PLANE_TRUSTED_PROXY_HOPS: '1',
        GATEHOUSE_DATA_PLANE_FORWARDED_HEADER: 'Forwarded',
        GATEHOUSE_RATE_LIMIT_IPV6_PREFIX: '56',
      },
      { standalone: false },
    );
    expect(env.options).toEqual({
      allowedHosts: ['gw.example.com', 'localhost'],
      allowedOrigins: ['https://app.example.com', 'http://localhost:*'],
      rateLimit: { perIp: { refillPerSecond: 2.5 }, perToken: { capacity: 100 }, trustedProxyHops: 1, forwardedHeader: 'forwarded', ipv6PrefixLength: 56 },
      redisUrl: 'redis://127.0.0.1:6379',
    });
    const failing = (env: Record<string, string>) => {
      try {
        loadDataPlaneEnvironment(env, { standalone: false });
      } catch (error) {
        return error instanceof DataPlaneConfigError ? error.variable : 'other error';
      }
      return 'no error';
    };
    // Each bad value is refused naming its variable.
    for (const [variable, value] of [
      ['GATEHOUSE_DATA_PLANE_ALLOWED_HOSTS', 'https://x.example.com'],
      ['GATEHOUSE_DATA_PLANE_ALLOWED_ORIGINS', 'app.example.com'],
      ['GATEHOUSE_RATE_LIMIT_TOKEN_CAPACITY', 'lots'],
      ['GATEHOUSE_RATE_LIMIT_IP_REFILL_PER_SECOND', '0'],
      ['REDIS_URL', 'localhost:6379'],
      ['GATEHOUSE_DATA_PLANE_TRUSTED_PROXY_HOPS', '1.5'],
      ['GATEHOUSE_DATA_PLANE_FORWARDED_HEADER', 'x-real-ip'],
      ['GATEHOUSE_RATE_LIMIT_IPV6_PREFIX', '8'],
      ['GATEHOUSE_MANAGED_PROBE_INTERVAL_MS', '-1'],
      ['GATEHOUSE_MANAGED_PROBE_INTERVAL_MS', 'soon'],
      ['GATEHOUSE_MANAGED_PROBE_TIMEOUT_MS', '0'],
      ['GATEHOUSE_STREAM_RESUME_GRACE_MS', '0'],
      ['GATEHOUSE_STREAM_PRIME_AFTER_MS', '-5'],
    ] as const) {
      expect(failing({ [variable]: value }), `${variable}=${value}`).toBe(variable);
    }
  });

  it('maps the resumable-stream variables; a prime delay of 0 streams only when a message comes', () => {
    const env = loadDataPlaneEnvironment({ GATEHOUSE_STREAM_RESUME_GRACE_MS: '120000', GATEHOUSE_STREAM_PRIME_AFTER_MS: '0' }, { standalone: false });
    expect(env.options).toMatchObject({ streamResumeGraceMs: 120_000, streamPrimeAfterMs: 0 });
    expect(resolveDataPlaneConfig({ sessionSecret: 'x'.repeat(32), ...env.options })).toMatchObject({ streamResumeGraceMs: 120_000, streamPrimeAfterMs: 0 });
    expect(resolveDataPlaneConfig({ sessionSecret: 'x'.repeat(32) })).toMatchObject({ streamResumeGraceMs: 30_000, streamPrimeAfterMs: 5_000 });
  });

  it('maps the health-probe variables of managed servers; 0 turns the probe off', () => {
    const env = loadDataPlaneEnvironment({ GATEHOUSE_MANAGED_PROBE_INTERVAL_MS: '0', GATEHOUSE_MANAGED_PROBE_TIMEOUT_MS: '2500' }, { standalone: false });
    expect(env.options.managedProbe).toEqual({ intervalMs: 0, timeoutMs: 2_500 });
    expect(resolveDataPlaneConfig({ sessionSecret: 'x'.repeat(32), ...env.options }).managedProbe).toEqual({ intervalMs: 0, timeoutMs: 2_500, failures: 2 });
    expect(loadDataPlaneEnvironment({ GATEHOUSE_MANAGED_PROBE_INTERVAL_MS: '10000' }, { standalone: false }).options.managedProbe).toEqual({ intervalMs: 10_000 });
    expect(loadDataPlaneEnvironment({}, { standalone: false }).options.managedProbe).toBeUndefined();
  });
});
