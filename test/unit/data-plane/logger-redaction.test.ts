import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACTED, createDataPlaneLogger, redactingLogger, redactValue } from '../../../data-plane/logger.js';
import { UpstreamError } from '../../../data-plane/upstream/upstream-error.js';

const SECRETS = {
  bearer: 'gh_at_engineering-token-0000000000000000000000000',
  dataPlane: 'gh_dp_abcdefghijklmnopqrstuvwxyz012345',
  apiKey: 'sk-live-upstream-api-key-123456',
  cookie: 'session=cookie-value-9876',
  password: 'hunter2-correct-horse',
  sessionSecret: 'the-session-secret-of-at-least-32-chars',
  urlPassword: 'p4ssw0rd-in-url',
};

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString('utf8'));
        done();
      },
    }),
    text: () => chunks.join(''),
  };
}

/** Everything a careless call site might log. */
function logEverything(logger: ReturnType<typeof createDataPlaneLogger>): void {
  logger.info(
    {
      req: { method: 'POST', headers: { authorization: `Bearer ${SECRETS.bearer}`, cookie: SECRETS.cookie, 'x-api-key': SECRETS.apiKey, host: 'gateway.example' } },
      upstream: { url: `https://user:${SECRETS.urlPassword}@upstream.example/mcp`, headers: [{ name: 'Authorization', value: `Bearer ${SECRETS.apiKey}` }] },
      deep: { a: { b: { c: { d: { password: SECRETS.password, sessionSecret: SECRETS.sessionSecret, token: SECRETS.dataPlane } } } } },
      note: `the client sent Authorization: Bearer ${SECRETS.bearer} and the plane uses ${SECRETS.dataPlane}`,
      query: `https://upstream.example/mcp?api_key=${SECRETS.apiKey}&page=2`,
      form: `user=ada&password=${SECRETS.password}`,
      dump: `POST /mcp\nAuthorization: Bearer ${SECRETS.apiKey}\nAccept: */*`,
      'Mcp-Session-Id': 'v1.payload.signature',
    },
    'request with credentials',
  );
  logger.warn({ err: new UpstreamError('UPSTREAM_UNREACHABLE', 'Everything', `connect failed for Bearer ${SECRETS.apiKey}`, { detail: { apiKey: SECRETS.apiKey } }) }, 'upstream failed');
  logger.error({ err: new Error(`token ${SECRETS.bearer} rejected`, { cause: new Error(`upstream said 401; sent Cookie: ${SECRETS.cookie} and ${SECRETS.dataPlane}`) }) }, 'nested error');
}

describe('data-plane log redaction', () => {
  it('keeps authorization headers, tokens, cookies, API keys, passwords and secrets out of log lines at any depth', () => {
    const out = capture();
    logEverything(createDataPlaneLogger('debug', out.stream));
    const text = out.text();
    expect(text).toContain('request with credentials');
    expect(text).toContain('gateway.example');
    expect(text).toContain(REDACTED);
    for (const [name, secret] of Object.entries(SECRETS)) expect(text, name).not.toContain(secret);
    // What is not secret stays, so logs remain useful.
    const lines = text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    expect(lines[0]!.req.headers.host).toBe('gateway.example');
    expect(lines[0]!.upstream.url).toBe(`https://${REDACTED}@upstream.example/mcp`);
    expect(lines[1]!.err).toMatchObject({ type: 'UpstreamError', code: 'UPSTREAM_UNREACHABLE', serverName: 'Everything' });
  });

  it('redacts whatever logger the data plane is given (buildDataPlane wraps it)', () => {
    const out = capture();
    const plain = pino({ level: 'info' }, out.stream);
    logEverything(redactingLogger(plain));
    for (const [name, secret] of Object.entries(SECRETS)) expect(out.text(), name).not.toContain(secret);
  });

  it('does no work for levels the logger does not write', () => {
    const out = capture();
    const logger = redactingLogger(pino({ level: 'warn' }, out.stream));
    let read = false;
    logger.debug({ get expensive() { read = true; return 1; } }, 'skipped');
    expect(read).toBe(false);
    expect(out.text()).toBe('');
  });

  it('leaves ordinary values alone and survives cycles', () => {
    const cyclic: Record<string, unknown> = { name: 'a', tokenId: 'tok-1' };
    cyclic.self = cyclic;
    expect(redactValue(cyclic)).toEqual({ name: 'a', tokenId: 'tok-1', self: '[circular]' });
    expect(redactValue('nothing secret here')).toBe('nothing secret here');
    expect(redactValue(42)).toBe(42);
  });
});
