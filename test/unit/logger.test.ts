import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../control-plane/logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

describe('structured logs', () => {
  it('are JSON and never carry credentials, wherever they sit in the logged object', () => {
    const { lines, logger } = capture();
    const secret = 'gh_admin_supersecretvalue1234567890abcdefghij';
    logger.info(
      {
        authorization: `Bearer ${secret}`,
        headers: { authorization: `Bearer ${secret}`, cookie: 'sid=abc' },
        req: { headers: { authorization: `Bearer ${secret}` } },
        config: { databaseUrl: 'postgres://user:pw@db/x', bootstrapAdminKey: secret },
        upstream: { token: secret, password: 'hunter2', apiKey: secret },
        keep: 'visible',
      },
      'request',
    );
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry.msg).toBe('request');
    expect(entry.keep).toBe('visible');
    expect(lines[0]).not.toContain(secret);
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).not.toContain('pw@db');
    expect(lines[0]).not.toContain('sid=abc');
    expect(entry.headers.authorization).toBe('[redacted]');
  });
});
