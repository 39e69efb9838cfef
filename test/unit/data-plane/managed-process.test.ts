import { afterEach, describe, expect, it } from 'vitest';
import { ManagedProcess, ManagedProcessUnavailable } from '../../../data-plane/upstream/managed-process.js';
import { isProcessAlive } from '../../fixtures/mcp/spawn.js';
import { captureLogs, eventually } from '../../integration/data-plane/proxy-helpers.js';

/** Real child processes (`node -e`), supervised with short delays. */
const running: ManagedProcess[] = [];

afterEach(async () => {
  for (const process of running.splice(0)) await process.stop();
});

function supervise(script: string, options: { initialDelayMs?: number; maxDelayMs?: number; stableAfterMs?: number; env?: Record<string, string> } = {}) {
  const logs = captureLogs();
  const supervised = new ManagedProcess({
    serverName: 'Test server',
    key: 'asg/srv/test',
    spec: { command: process.execPath, args: ['-e', script], env: options.env ?? {}, cwd: null },
    logger: logs.logger,
    mode: 'stdio',
    restart: { initialDelayMs: options.initialDelayMs ?? 50, maxDelayMs: options.maxDelayMs ?? 400, stableAfterMs: options.stableAfterMs ?? 60_000 },
    stopGraceMs: 500,
    logLines: { perWindow: 5, windowMs: 60_000 },
  });
  running.push(supervised);
  return { supervised, logs };
}

const restartDelays = (logs: ReturnType<typeof captureLogs>) =>
  logs.lines().filter((line) => line.msg === 'a managed server process exited; restarting it').map((line) => line.restartInMs);

describe('ManagedProcess', () => {
  it('restarts a process that keeps crashing with doubling delays up to the cap', async () => {
    const { supervised, logs } = supervise('process.stderr.write("boom\\n"); process.exit(7)');
    await supervised.acquire(1_000).catch(() => undefined);
    await eventually(async () => expect(restartDelays(logs).length).toBeGreaterThanOrEqual(5), 10_000, 50);
    expect(restartDelays(logs).slice(0, 5)).toEqual([50, 100, 200, 400, 400]);
    expect(supervised.restarts).toBeGreaterThanOrEqual(4);
    expect(logs.lines().find((line) => line.msg === 'a managed server process exited; restarting it')).toMatchObject({ server: 'Test server', exit: 'exit code 7' });
  });

  it('goes back to the initial delay after a process ran stably', async () => {
    // Runs 300 ms, then exits: longer than stableAfterMs, so every restart waits the initial delay.
    const { supervised, logs } = supervise('setTimeout(() => process.exit(1), 300)', { stableAfterMs: 200 });
    await supervised.acquire(1_000);
    await eventually(async () => expect(restartDelays(logs).length).toBeGreaterThanOrEqual(3), 10_000, 50);
    expect(restartDelays(logs).slice(0, 3)).toEqual([50, 50, 50]);
  });

  it('refuses at once while a restart is further away than the caller can wait, naming when', async () => {
    const { supervised } = supervise('process.exit(1)', { initialDelayMs: 5_000, maxDelayMs: 5_000 });
    await supervised.acquire(1_000).catch(() => undefined);
    await eventually(async () => expect(supervised.state).toBe('backoff'));
    const error = await supervised.acquire(100).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManagedProcessUnavailable);
    expect((error as Error).message).toMatch(/the process of server "Test server" exited \(exit code 1\); it restarts in [45] s/);
  });

  it('stops the whole process group, escalating to SIGKILL, and never restarts it', async () => {
    // Ignores SIGTERM and keeps a helper process in its group.
    const script = `
      const { spawn } = require('node:child_process');
      const helper = spawn('sleep', ['600'], { stdio: 'ignore' });
      process.on('SIGTERM', () => {});
      process.stdout.write(String(helper.pid) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const { supervised } = supervise(script);
    const child = await supervised.acquire(1_000);
    const helperPid = await new Promise<number>((resolve) => child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    expect(isProcessAlive(helperPid)).toBe(true);
    await supervised.stop();
    expect(isProcessAlive(child.pid!)).toBe(false);
    await eventually(async () => expect(isProcessAlive(helperPid)).toBe(false), 3_000, 50);
    expect(supervised.state).toBe('stopped');
    await expect(supervised.acquire(1_000)).rejects.toThrow(/no longer assigned/);
  });

  it('recycles the current process once (several sessions may find it bad), then restarts it with the backoff', async () => {
    const { supervised, logs } = supervise('setInterval(() => {}, 1000)');
    const child = await supervised.acquire(1_000);
    expect(supervised.recycle(child, 'it is hung')).toBe(true);
    expect(supervised.recycle(child, 'it is hung')).toBe(false);
    const next = await eventually(async () => {
      expect(supervised.restarts).toBe(1);
      expect(supervised.state).toBe('running');
      return supervised.acquire(1_000);
    }, 5_000, 25);
    expect(next.pid).not.toBe(child.pid);
    expect(isProcessAlive(child.pid!)).toBe(false);
    expect(supervised.restarts).toBe(1);
    // An old child is not the current one: nothing happens to the new process.
    expect(supervised.recycle(child, 'late')).toBe(false);
    expect(logs.lines().filter((line) => line.msg === 'restarting a managed server process')).toEqual([expect.objectContaining({ pid: child.pid, reason: 'it is hung' })]);
    expect(restartDelays(logs)).toEqual([50]);
  });

  it('logs output lines with the server name, at most N per window, and reports the rest', async () => {
    const { supervised, logs } = supervise('for (let i = 1; i <= 12; i++) process.stderr.write("line " + i + "\\n"); setInterval(() => {}, 1000)');
    await supervised.acquire(1_000);
    await eventually(async () => expect(logs.lines().filter((line) => line.stream === 'stderr')).toHaveLength(5));
    await supervised.stop();
    const stderr = logs.lines().filter((line) => line.stream === 'stderr');
    expect(stderr.map((line) => line.line)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
    expect(stderr[0]).toMatchObject({ server: 'Test server', upstream: 'asg/srv/test' });
    expect(logs.lines().find((line) => line.dropped !== undefined)).toMatchObject({ dropped: 7, server: 'Test server' });
  });

  it('gives the child its own variables and a minimal inherited environment, not the data plane\'s', async () => {
    process.env.GATEHOUSE_TEST_LEAK = 'must-not-leak';
    try {
      const { supervised } = supervise('process.stdout.write(JSON.stringify({ own: process.env.OWN, leak: process.env.GATEHOUSE_TEST_LEAK ?? null, path: Boolean(process.env.PATH) }) + "\\n"); setInterval(() => {}, 1000)', {
        env: { OWN: 'mine' },
      });
      const child = await supervised.acquire(1_000);
      const seen = await new Promise<string>((resolve) => child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString())));
      expect(JSON.parse(seen)).toEqual({ own: 'mine', leak: null, path: true });
    } finally {
      delete process.env.GATEHOUSE_TEST_LEAK;
    }
  });
});
