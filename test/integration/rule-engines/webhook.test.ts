import { afterEach, describe, expect, it } from 'vitest';
import { RuleEngineClient, connectionTestEvaluation, verifyEngineSignature, type EngineEnvelope, type LookupFunction } from '../../../schema/rules/engines/index.js';
import { SIGNING_SECRET, engineFixture, evaluation, sendJson, snapshotSecrets, startEngineServer, type EngineServer, type Handler } from './engine-servers.js';

const secrets = snapshotSecrets();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function server(handler: Handler): Promise<EngineServer> {
  const started = await startEngineServer(handler);
  cleanups.push(() => started.close());
  return started;
}

function client(...args: ConstructorParameters<typeof RuleEngineClient>): RuleEngineClient {
  const made = new RuleEngineClient(...args);
  cleanups.push(() => made.close());
  return made;
}

/** An engine whose verdict depends on the payload, as a real one would. */
const judge: Handler = (request, response) => {
  const envelope = request.json<EngineEnvelope>();
  const check = verifyEngineSignature(request.headers['x-gatehouse-signature'] as string, request.body, SIGNING_SECRET);
  if (!check.ok) return sendJson(response, 401, { error: check.reason });
  const path = (envelope.payload as { path?: string }).path;
  if (path === '/etc/shadow') return sendJson(response, 200, { verdict: 'block', reason: 'reads credentials' });
  if (path === '/home/me/.env') return sendJson(response, 200, { verdict: 'modify', payload: { ...(envelope.payload as object), path: '/home/me/.env.example' } });
  if (path === 'crash') return sendJson(response, 200, { verdict: 'error', reason: 'model unavailable' });
  sendJson(response, 200, { verdict: 'pass' });
};

describe('webhook engine verdicts', () => {
  it('posts a signed envelope and reads pass, block, modify and error', async () => {
    const engine = await server(judge);
    const c = client(engineFixture(secrets, { url: `${engine.url}/verdict` }), secrets.open);

    expect(await c.evaluate(evaluation)).toEqual({ verdict: 'pass' });
    expect(await c.evaluate({ ...evaluation, payload: { path: '/etc/shadow' } })).toEqual({ verdict: 'block', reason: 'reads credentials' });
    expect(await c.evaluate({ ...evaluation, payload: { path: '/home/me/.env', options: { follow: true } } })).toEqual({
      verdict: 'modify',
      payload: { path: '/home/me/.env.example', options: { follow: true } },
    });
    expect(await c.evaluate({ ...evaluation, payload: { path: 'crash' } })).toEqual({
      verdict: 'error',
      code: 'ENGINE_ERROR',
      reason: 'rule engine "acme-guard" reported an error: model unavailable',
    });

    const first = engine.received[0]!;
    expect(first.method).toBe('POST');
    expect(first.url).toBe('/verdict');
    expect(first.headers['content-type']).toBe('application/json');
    const envelope = first.json<EngineEnvelope>();
    expect(envelope).toEqual({
      version: 1,
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      timestamp: expect.any(String),
      workspace: { id: 'ws_1' },
      gateway: { id: 'gw_1', slug: 'eng' },
      server: { id: 'srv_1', name: 'files' },
      feature: { type: 'tools', name: 'read_file' },
      caller: { userId: 'usr_1', connectionId: 'conn_1', hostId: 'host_1' },
      hook: 'request',
      payload: evaluation.payload,
    });
  });

  it('signs with the clock it is given, verifiable by the engine over the raw bytes', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const now = Date.parse('2025-06-01T12:00:00Z');
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open, { clock: () => now });
    await c.evaluate({ ...evaluation, id: 'call-42' });
    const request = engine.received[0]!;
    const header = request.headers['x-gatehouse-signature'] as string;
    expect(header).toMatch(/^t=1748779200,v1=[0-9a-f]{64}$/);
    expect(verifyEngineSignature(header, request.body, SIGNING_SECRET, { now: () => now })).toEqual({ ok: true, timestamp: 1748779200 });
    expect(verifyEngineSignature(header, request.body, 'wrong secret', { now: () => now }).ok).toBe(false);
    expect(request.json<EngineEnvelope>()).toMatchObject({ id: 'call-42', timestamp: '2025-06-01T12:00:00.000Z' });
  });

  it('attaches decrypted configured headers and copies only the allowed caller headers', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const c = client(
      engineFixture(secrets, {
        url: engine.url,
        method: 'PUT',
        headers: { 'X-Api-Key': 'k-123', Authorization: 'Bearer engine-token' },
        forwardHeaders: ['x-request-id', 'x-tenant', 'authorization', 'cookie'],
      }),
      secrets.open,
    );
    await c.evaluate(evaluation, {
      callerHeaders: { 'x-request-id': 'req-1', 'x-tenant': ['a', 'b'], authorization: 'Bearer gh_at_caller', cookie: 'sid=1', 'x-other': 'no' },
    });
    const { headers, method } = engine.received[0]!;
    expect(method).toBe('PUT');
    expect(headers['x-api-key']).toBe('k-123');
    expect(headers['authorization']).toBe('Bearer engine-token');
    expect(headers['x-request-id']).toBe('req-1');
    expect(headers['x-tenant']).toBe('a, b');
    expect(headers['cookie']).toBeUndefined();
    expect(headers['x-other']).toBeUndefined();
    expect(headers['user-agent']).toBe('Gatehouse-RuleEngine/1');
  });

  it('reuses keep-alive connections across evaluations', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open);
    for (let i = 0; i < 10; i++) expect(await c.evaluate(evaluation)).toEqual({ verdict: 'pass' });
    // undici may open a second socket while the first finishes its response; never one per call.
    expect(new Set(engine.received.map((request) => request.remotePort)).size).toBeLessThanOrEqual(2);
  });

  it('runs a connection test', async () => {
    const engine = await server(judge);
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open);
    const result = await c.testConnection(connectionTestEvaluation('ws_1'));
    expect(result).toMatchObject({ ok: true, verdict: { verdict: 'pass' } });
    expect(result.durationMs).toBeGreaterThan(0);
    const failing = client(engineFixture(secrets, { url: `http://127.0.0.1:1/` }), secrets.open, { retries: 0 });
    expect(await failing.testConnection(connectionTestEvaluation('ws_1'))).toMatchObject({ ok: false, verdict: { verdict: 'error', code: 'UNREACHABLE' } });
  });
});

describe('webhook engine failures', () => {
  it('times out after timeoutMs with an error verdict', async () => {
    const engine = await server(() => {
      /* never answers */
    });
    const c = client(engineFixture(secrets, { url: engine.url, timeoutMs: 300 }), secrets.open);
    const started = performance.now();
    const verdict = await c.evaluate(evaluation);
    const elapsed = performance.now() - started;
    expect(verdict).toEqual({ verdict: 'error', code: 'TIMEOUT', reason: 'rule engine "acme-guard" did not answer within 300 ms' });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    expect(engine.received).toHaveLength(1);
  });

  it('also times out when the body trickles in too slowly', async () => {
    const engine = await server((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"verdict":');
    });
    const c = client(engineFixture(secrets, { url: engine.url, timeoutMs: 300 }), secrets.open);
    expect(await c.evaluate(evaluation)).toMatchObject({ verdict: 'error', code: 'TIMEOUT' });
  });

  it('retries a 503 with backoff, then succeeds with the same envelope', async () => {
    let calls = 0;
    const engine = await server((_request, response) => {
      calls++;
      if (calls <= 2) return sendJson(response, 503, { message: 'warming up' });
      sendJson(response, 200, { verdict: 'block', reason: 'third time' });
    });
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open, { retries: 2, retryDelayMs: 20 });
    expect(await c.evaluate(evaluation)).toEqual({ verdict: 'block', reason: 'third time' });
    expect(engine.received).toHaveLength(3);
    const ids = engine.received.map((request) => request.json<EngineEnvelope>().id);
    expect(new Set(ids).size).toBe(1);
  });

  it('gives up after the retries with the last status', async () => {
    const engine = await server((_request, response) => sendJson(response, 502, { message: 'bad gateway' }));
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open, { retries: 2, retryDelayMs: 10 });
    expect(await c.evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'HTTP_STATUS',
      reason: 'rule engine "acme-guard" answered HTTP 502: bad gateway (3 attempts)',
    });
    expect(engine.received).toHaveLength(3);
  });

  it('does not retry a 4xx or a 500', async () => {
    const engine = await server((request, response) => sendJson(response, request.url === '/400' ? 400 : 500, { error: { message: 'bad envelope' } }));
    const c400 = client(engineFixture(secrets, { url: `${engine.url}/400` }), secrets.open, { retryDelayMs: 10 });
    expect(await c400.evaluate(evaluation)).toEqual({ verdict: 'error', code: 'HTTP_STATUS', reason: 'rule engine "acme-guard" answered HTTP 400: bad envelope' });
    const c500 = client(engineFixture(secrets, { url: `${engine.url}/500` }), secrets.open, { retryDelayMs: 10 });
    expect(await c500.evaluate(evaluation)).toMatchObject({ code: 'HTTP_STATUS' });
    expect(engine.received).toHaveLength(2);
  });

  it('retries a dropped connection', async () => {
    let calls = 0;
    const engine = await server((_request, response, raw) => {
      calls++;
      if (calls === 1) {
        raw.socket.destroy();
        return;
      }
      sendJson(response, 200, { verdict: 'pass' });
    });
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open, { retryDelayMs: 10 });
    expect(await c.evaluate(evaluation)).toEqual({ verdict: 'pass' });
    expect(engine.received).toHaveLength(2);
  });

  it('reports a refused connection after the retries', async () => {
    const engine = await server(() => undefined);
    await engine.close();
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open, { retries: 1, retryDelayMs: 10 });
    expect(await c.evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'UNREACHABLE',
      reason: 'rule engine "acme-guard" could not be reached: ECONNREFUSED (2 attempts)',
    });
  });

  it('turns invalid JSON, an empty body and an unknown verdict into error verdicts', async () => {
    const engine = await server((request, response) => {
      if (request.url === '/garbage') return sendJson(response, 200, '{"verdict": pass');
      if (request.url === '/empty') return sendJson(response, 200, '');
      sendJson(response, 200, { verdict: 'maybe' });
    });
    const at = (path: string) => client(engineFixture(secrets, { url: `${engine.url}${path}` }), secrets.open);
    expect(await at('/garbage').evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'INVALID_RESPONSE',
      reason: 'rule engine "acme-guard" answered a body that is not valid JSON',
    });
    expect(await at('/empty').evaluate(evaluation)).toMatchObject({ code: 'INVALID_RESPONSE', reason: expect.stringContaining('an empty body') });
    expect(await at('/unknown').evaluate(evaluation)).toMatchObject({ code: 'INVALID_RESPONSE', reason: expect.stringContaining('unknown verdict "maybe"') });
  });

  it('refuses a schema-breaking modify', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'modify', payload: { path: '/tmp', options: 'none' } }));
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open);
    expect(await c.evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'INVALID_MODIFY',
      reason: 'rule engine "acme-guard": modify turned payload.options from an object into a string',
    });
  });

  it('refuses an answer over 16 MiB, declared or streamed', async () => {
    const big = 16 * 1024 * 1024 + 1;
    const engine = await server((request, response) => {
      if (request.url === '/declared') {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': big });
        response.write('{"verdict":"pass","pad":"');
        return; // never sends the rest: the declared size alone is refused
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(1024 * 1024);
      response.write('{"verdict":"pass","pad":"');
      let sent = 0;
      const pump = () => {
        while (sent < 17) {
          sent++;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
        response.end('"}');
      };
      pump();
    });
    const declared = client(engineFixture(secrets, { url: `${engine.url}/declared` }), secrets.open);
    expect(await declared.evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'TOO_LARGE',
      reason: `rule engine "acme-guard" answered ${big} bytes, over the 16777216-byte limit`,
    });
    const streamed = client(engineFixture(secrets, { url: `${engine.url}/streamed` }), secrets.open);
    expect(await streamed.evaluate(evaluation)).toMatchObject({ code: 'TOO_LARGE', reason: expect.stringContaining('more than 16777216 bytes') });
  });

  it('refuses to send an envelope over the cap, and payloads that cannot be serialized', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open, { maxBytes: 64 * 1024 });
    expect(await c.evaluate({ ...evaluation, payload: { text: 'x'.repeat(70 * 1024) } })).toMatchObject({
      verdict: 'error',
      code: 'TOO_LARGE',
      reason: expect.stringContaining('over the 65536-byte limit'),
    });
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(await c.evaluate({ ...evaluation, payload: deep as never })).toMatchObject({ verdict: 'error', code: 'INVALID_PAYLOAD' });
    expect(engine.received).toHaveLength(0);
  });

  it('does not follow a redirect, to a private address or anywhere else', async () => {
    const target = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const engine = await server((request, response) => {
      response.writeHead(request.url === '/metadata' ? 302 : 307, {
        location: request.url === '/metadata' ? 'http://169.254.169.254/latest/meta-data/iam?token=x' : `${target.url}/elsewhere`,
      });
      response.end();
    });
    const metadata = client(engineFixture(secrets, { url: `${engine.url}/metadata` }), secrets.open);
    expect(await metadata.evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'REDIRECT',
      reason: 'rule engine "acme-guard" answered HTTP 302 redirecting to http://169.254.169.254; redirects are not followed',
    });
    const elsewhere = client(engineFixture(secrets, { url: `${engine.url}/moved` }), secrets.open);
    expect(await elsewhere.evaluate(evaluation)).toMatchObject({ code: 'REDIRECT' });
    expect(target.received).toHaveLength(0);
  });

  it('ends with ABORTED when the caller cancels', async () => {
    const engine = await server(() => undefined);
    const c = client(engineFixture(secrets, { url: engine.url }), secrets.open);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    expect(await c.evaluate(evaluation, { signal: controller.signal })).toMatchObject({ verdict: 'error', code: 'ABORTED' });
  });

  it('answers CONFIGURATION for a secret it cannot open, without calling the engine', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const other = snapshotSecrets();
    const c = client(engineFixture(other, { url: engine.url }), secrets.open);
    expect(c.configurationError).toMatchObject({ code: 'CONFIGURATION' });
    expect(await c.evaluate(evaluation)).toEqual({
      verdict: 'error',
      code: 'CONFIGURATION',
      reason: 'rule engine "acme-guard": the signing secret cannot be opened (TAMPERED)',
    });
    expect(engine.received).toHaveLength(0);
  });
});

describe('private destinations', () => {
  it('refuses loopback and http unless allowPrivateNetwork, before any request', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    const http = client(engineFixture(secrets, { url: engine.url, allowPrivateNetwork: false }), secrets.open);
    expect(await http.evaluate(evaluation)).toMatchObject({ verdict: 'error', code: 'DESTINATION_REFUSED', reason: expect.stringContaining('must use https') });
    const literal = client(engineFixture(secrets, { url: `https://127.0.0.1:${engine.port}/`, allowPrivateNetwork: false }), secrets.open);
    expect(await literal.evaluate(evaluation)).toMatchObject({ code: 'DESTINATION_REFUSED', reason: expect.stringContaining('127.0.0.1 is a loopback address') });
    expect(engine.received).toHaveLength(0);
  });

  it('refuses a name that resolves to loopback, checked at connect time after DNS', async () => {
    const c = client(engineFixture(secrets, { url: 'https://localhost:9/', allowPrivateNetwork: false }), secrets.open);
    expect(await c.evaluate(evaluation)).toMatchObject({
      verdict: 'error',
      code: 'DESTINATION_REFUSED',
      reason: expect.stringMatching(/localhost \((127\.0\.0\.1|::1)\) is a loopback address/),
    });
  });

  it('refuses DNS rebinding: a name that passed the save-time check and now resolves to a private address', async () => {
    const engine = await server((_request, response) => sendJson(response, 200, { verdict: 'pass' }));
    let answers = 0;
    // The save-time lookup got a public address; by the time the data plane connects the name points inside.
    const rebinding: LookupFunction = (_hostname, _options, callback) => {
      answers++;
      callback(null, [{ address: answers === 1 ? '93.184.216.34' : '127.0.0.1', family: 4 }]);
    };
    const { assertPublicDestination } = await import('../../../schema/rules/engines/index.js');
    await expect(assertPublicDestination(`https://engine.example.com:${engine.port}/`, false, { lookup: rebinding })).resolves.toBeInstanceOf(URL);
    const c = client(engineFixture(secrets, { url: `https://engine.example.com:${engine.port}/`, allowPrivateNetwork: false }), secrets.open, {
      lookup: rebinding,
      retries: 0,
    });
    expect(await c.evaluate(evaluation)).toMatchObject({
      code: 'DESTINATION_REFUSED',
      reason: expect.stringContaining('engine.example.com (127.0.0.1) is a loopback address'),
    });
    expect(engine.received).toHaveLength(0);
  });
});
