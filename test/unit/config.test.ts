import { describe, expect, it } from 'vitest';
import { ConfigError, flagsToEnv, loadControlPlaneConfig } from '../../control-plane/config.js';

describe('control-plane configuration', () => {
  it('has working defaults and is frozen', () => {
    const config = loadControlPlaneConfig({});
    expect(config).toMatchObject({ databaseUrl: undefined, port: 4000, host: '127.0.0.1', migrateOnStart: true, maxQueryDepth: 12 });
    expect(config.dataDir.endsWith('.gatehouse')).toBe(true);
    expect(Object.isFrozen(config)).toBe(true);
    expect(loadControlPlaneConfig({ NODE_ENV: 'production' }).graphiql).toBe(false);
  });

  it.each([
    ['GATEHOUSE_CONTROL_PLANE_PORT', 'abc'],
    ['GATEHOUSE_CONTROL_PLANE_PORT', '70000'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['GATEHOUSE_MIGRATE', 'maybe'],
    ['GATEHOUSE_LOG_LEVEL', 'loud'],
    ['GATEHOUSE_PUBLIC_URL', 'not a url'],
    ['GATEHOUSE_BOOTSTRAP_ADMIN_KEY', 'short'],
    ['GATEHOUSE_MAX_QUERY_DEPTH', '1'],
  ])('rejects %s=%s naming the variable', (variable, value) => {
    let error: unknown;
    try {
      loadControlPlaneConfig({ [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message.startsWith(`${variable}:`)).toBe(true);
  });

  it('maps flags onto variables, and flags win over the environment', () => {
    const env = { GATEHOUSE_CONTROL_PLANE_PORT: '4000', ...flagsToEnv(['start', '--port', '5000', '--data-dir=/tmp/x', '--no-migrate']) };
    const config = loadControlPlaneConfig(env);
    expect(config).toMatchObject({ port: 5000, dataDir: '/tmp/x', migrateOnStart: false });
    expect(() => flagsToEnv(['--port'])).toThrow(/needs a value/);
  });
});
