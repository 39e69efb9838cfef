import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The command as users run it (`npm start`, `npm run gatehouse`, the `gatehouse` bin): the
// bundle `npm run build` writes from control-plane/cli/main.ts, run by plain Node.
const NODE = process.execPath;
const MAIN = path.resolve('node_modules/.cache/gatehouse/dist/main.mjs');
const dirs: string[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  const build = spawnSync('npm', ['run', '-s', 'build'], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
}, 60_000);

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Embedded mode: no DATABASE_URL, whatever the run uses. */
function env(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { DATABASE_URL: _ignored, ...rest } = process.env;
  return { ...rest, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_CONTROL_PLANE_PORT: '0', GATEHOUSE_DATA_PLANE_PORT: '0', GATEHOUSE_LOG_LEVEL: 'warn', ...extra };
}

/** Starts `gatehouse start` and resolves once it printed its URLs. */
function start(dataDir: string): Promise<{ child: ChildProcess; output: string; url: string; key: string | undefined }> {
  const child = spawn(NODE, [MAIN, 'start'], { env: env(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up banner within 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /GraphQL:\s+(http:\S+)\/graphql/.exec(output)?.[1];
      const done = /Owner API key[\s\S]*?\n\s+(gh_admin_\S+)/.exec(output) || /Existing workspace/.test(output);
      if (url && done) {
        clearTimeout(timer);
        resolve({ child, output, url, key: /\n\s+(gh_admin_\S+)/.exec(output)?.[1] });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

async function viewer(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: '{ viewer { actor } }' }),
  });
  return res.status;
}

describe('gatehouse start (embedded database)', () => {
  it('bootstraps once, prints the URL and key, writes the key file 0600, and mints recovery keys', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-cli-'));
    dirs.push(dataDir);
    const first = await start(dataDir);
    expect(first.output).toContain('Gatehouse control plane is up');
    // The data plane runs in the same process, fed over the push channel, and says where.
    const dataPlaneUrl = /Data plane:\s+(http:\S+)/.exec(first.output)?.[1];
    expect(dataPlaneUrl).toBeTruthy();
    expect(first.output).toContain('serving snapshot v1');
    const ready = await fetch(`${dataPlaneUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', snapshotVersion: 1, link: { state: 'connected' } });
    expect(first.key).toMatch(/^gh_admin_/);
    const keyFile = path.join(dataDir, 'bootstrap-admin-key');
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(first.key);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(await viewer(first.url, first.key!)).toBe(200);
    expect(await stop(first.child)).toBe(0);

    // Recovery key against the database while Gatehouse is stopped.
    const recovery = spawnSync(NODE, [MAIN, 'recovery-key'], { env: env(dataDir), encoding: 'utf8' });
    expect(recovery.status).toBe(0);
    const recoveryKey = /(gh_admin_\S+)/.exec(recovery.stdout)?.[1];
    expect(recoveryKey).toBeTruthy();

    // A restart does not bootstrap again, and both keys work.
    const second = await start(dataDir);
    expect(second.key).toBeUndefined();
    expect(second.output).toContain('Existing workspace');
    expect(await viewer(second.url, first.key!)).toBe(200);
    expect(await viewer(second.url, recoveryKey!)).toBe(200);
    expect(await stop(second.child)).toBe(0);
  }, 180_000);

  it('uses GATEHOUSE_BOOTSTRAP_ADMIN_KEY when given', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-cli-'));
    dirs.push(dataDir);
    const given = `gh_admin_${'k'.repeat(40)}`;
    const child = spawn(NODE, [MAIN, 'start'], { env: env(dataDir, { GATEHOUSE_BOOTSTRAP_ADMIN_KEY: given }), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => {
        output += c.toString();
        const m = /GraphQL:\s+(http:\S+)\/graphql/.exec(output);
        if (m && output.includes(given)) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
    });
    expect(await viewer(url, given)).toBe(200);
    await stop(child);
  }, 120_000);

  it('runs a separate data plane with `gatehouse data-plane`, fed by the running control plane', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-cli-'));
    dirs.push(dataDir);
    const gatehouse = await start(dataDir);
    const res = await fetch(`${gatehouse.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gatehouse.key}` },
      body: JSON.stringify({ query: 'mutation { registerDataPlane(input: { name: "edge" }) { ... on RegisterDataPlaneSuccess { registered { token } } } }' }),
    });
    const token = ((await res.json()) as { data: { registerDataPlane: { registered: { token: string } } } }).data.registerDataPlane.registered.token;
    const child = spawn(NODE, [MAIN, 'data-plane', '--control-plane', gatehouse.url, '--token', token, '--port', '0'], {
      env: env(dataDir, { GATEHOUSE_SESSION_SECRET: 's'.repeat(40) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (c: Buffer) => {
        output += c.toString();
        const m = /data plane is up: (http:\S+)/.exec(output);
        if (m) resolve(m[1]!);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
    });
    await expect
      .poll(async () => (await (await fetch(`${url}/readyz`)).json()) as unknown, { timeout: 10_000 })
      .toMatchObject({ status: 'ready', snapshotVersion: 1, link: { state: 'connected' } });
    expect(await stop(child)).toBe(0);
    expect(await stop(gatehouse.child)).toBe(0);
  }, 120_000);

  it('fails fast on bad configuration, naming the variable', () => {
    const bad = spawnSync(NODE, [MAIN, 'start'], { env: env('/tmp/unused', { GATEHOUSE_CONTROL_PLANE_PORT: 'eighty' }), encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('GATEHOUSE_CONTROL_PLANE_PORT');
    const help = spawnSync(NODE, [MAIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const v of ['DATABASE_URL', 'GATEHOUSE_DATA_DIR', 'GATEHOUSE_CONTROL_PLANE_PORT', 'GATEHOUSE_BOOTSTRAP_ADMIN_KEY']) expect(help.stdout).toContain(v);
    for (const v of ['GATEHOUSE_CONTROL_PLANE_URL', 'GATEHOUSE_DATA_PLANE_TOKEN', 'GATEHOUSE_DATA_PLANE_PORT', 'GATEHOUSE_SESSION_SECRET', 'GATEHOUSE_API_KEY']) {
      expect(help.stdout).toContain(v);
    }
    // The installed `gatehouse` command (package.json "bin") runs the same bundle.
    const bin = spawnSync(NODE, [path.resolve('control-plane/cli/gatehouse.mjs'), 'help'], { encoding: 'utf8' });
    expect(bin.status).toBe(0);
    expect(bin.stdout).toBe(help.stdout);
    const noToken = spawnSync(NODE, [MAIN, 'data-plane', '--control-plane', 'http://127.0.0.1:4000'], { env: env('/tmp/unused'), encoding: 'utf8' });
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toContain('GATEHOUSE_DATA_PLANE_TOKEN');
    const noSecret = spawnSync(NODE, [MAIN, 'data-plane', '--control-plane', 'http://127.0.0.1:4000', '--token', `gh_dp_${'x'.repeat(43)}`], {
      env: env('/tmp/unused'),
      encoding: 'utf8',
    });
    expect(noSecret.status).toBe(2);
    expect(noSecret.stderr).toContain('GATEHOUSE_SESSION_SECRET');
    const badBuild = spawnSync(NODE, [MAIN, 'data-plane', '--control-plane', 'http://127.0.0.1:4000', '--token', `gh_dp_${'x'.repeat(43)}`], {
      env: env('/tmp/unused', { GATEHOUSE_SESSION_SECRET: 's'.repeat(40), GATEHOUSE_AUDIT_BUILD_ON: 'thread' }),
      encoding: 'utf8',
    });
    expect(badBuild.status).toBe(2);
    expect(badBuild.stderr).toContain('GATEHOUSE_AUDIT_BUILD_ON');
  }, 120_000);
});
