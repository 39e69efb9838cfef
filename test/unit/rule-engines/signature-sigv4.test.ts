import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signEngineBody, signSigV4, sigV4Parts, verifyEngineSignature } from '../../../schema/rules/engines/index.js';
import { sha256Hex } from '../../../schema/rules/engines/sigv4.js';

describe('x-gatehouse-signature', () => {
  const secret = 'whsec_test';
  const body = '{"version":1,"payload":{"q":"hi"}}';
  const now = () => 1_700_000_000_000;

  it('is t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>', () => {
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(signEngineBody(secret, body, 1_700_000_000)).toBe(`t=1700000000,v1=${expected}`);
  });

  it('verifies a fresh signature over the exact body', () => {
    const header = signEngineBody(secret, body, 1_700_000_000);
    expect(verifyEngineSignature(header, body, secret, { now })).toEqual({ ok: true, timestamp: 1_700_000_000 });
    expect(verifyEngineSignature(header, Buffer.from(body), secret, { now }).ok).toBe(true);
  });

  it('refuses a changed body, a wrong secret, a stale timestamp and garbage', () => {
    const header = signEngineBody(secret, body, 1_700_000_000);
    expect(verifyEngineSignature(header, body.replace('hi', 'ho'), secret, { now })).toMatchObject({ ok: false, reason: 'signature does not match the body' });
    expect(verifyEngineSignature(header, body, 'other', { now }).ok).toBe(false);
    expect(verifyEngineSignature(header, body, secret, { now: () => now() + 301_000 })).toMatchObject({ ok: false, reason: expect.stringContaining('tolerance') });
    expect(verifyEngineSignature(header, body, secret, { now: () => now() + 301_000, toleranceSeconds: 600 }).ok).toBe(true);
    expect(verifyEngineSignature(undefined, body, secret).ok).toBe(false);
    expect(verifyEngineSignature('v1=abc', body, secret, { now }).ok).toBe(false);
    expect(verifyEngineSignature('t=1700000000', body, secret, { now }).ok).toBe(false);
  });

  it('accepts any of several v1 digests (secret rotation)', () => {
    const good = signEngineBody(secret, body, 1_700_000_000).split(',')[1];
    const other = signEngineBody('old', body, 1_700_000_000).split(',')[1];
    expect(verifyEngineSignature(`t=1700000000,${other},${good}`, body, secret, { now }).ok).toBe(true);
  });
});

describe('SigV4', () => {
  it('matches the GET Object example of the S3 SigV4 documentation', () => {
    const parts = sigV4Parts(
      { method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'), headers: {}, body: '' },
      { host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-content-sha256': sha256Hex(''), 'x-amz-date': '20130524T000000Z' },
      {
        credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
        region: 'us-east-1',
        service: 's3',
        now: new Date('2013-05-24T00:00:00Z'),
        doubleEncodePath: false,
      },
    );
    expect(parts.stringToSign.split('\n').at(-1)).toBe('7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972');
    expect(parts.signature).toBe('f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  });

  it('matches get-vanilla of the SigV4 test suite', () => {
    const parts = sigV4Parts(
      { method: 'GET', url: new URL('https://example.amazonaws.com/'), headers: {}, body: '' },
      { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' },
      {
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        region: 'us-east-1',
        service: 'service',
        now: new Date('2015-08-30T12:36:00Z'),
      },
    );
    expect(parts.signature).toBe('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });

  it('builds the Authorization header with scope, signed headers and the session token', () => {
    const url = new URL('https://bedrock-runtime.eu-west-1.amazonaws.com/guardrail/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Aguardrail%2Fabc/version/1/apply');
    const headers = signSigV4(
      { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{}' },
      {
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
        region: 'eu-west-1',
        service: 'bedrock',
        now: new Date('2024-01-02T03:04:05Z'),
      },
    );
    expect(headers['x-amz-date']).toBe('20240102T030405Z');
    expect(headers['x-amz-security-token']).toBe('token');
    expect(headers['x-amz-content-sha256']).toBe(sha256Hex('{}'));
    expect(headers['authorization']).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20240102\/eu-west-1\/bedrock\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
    );
    // Non-S3 services encode each path segment a second time in the canonical request.
    const parts = sigV4Parts({ method: 'POST', url, headers: {}, body: '{}' }, { host: url.host }, {
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      region: 'eu-west-1',
      service: 'bedrock',
      now: new Date(0),
    });
    expect(parts.canonicalRequest.split('\n')[1]).toBe('/guardrail/arn%253Aaws%253Abedrock%253Aeu-west-1%253A123456789012%253Aguardrail%252Fabc/version/1/apply');
  });
});
