import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataPlane, type DataPlane } from '../../../data-plane/app.js';
import { InMemorySnapshotSource } from '../../../data-plane/snapshot/snapshot-source.js';
import { freePort, isProcessAlive } from '../../fixtures/mcp/spawn.js';
import { captureLogs, connectClient, eventually, fixtureLaunch, parseMetrics, proxySnapshot, textOf, type ServerSetup } from './proxy-helpers.js';

const SECRET = 'managed-servers-session-secret-0123456789abcdef';
const TOOLS = ['whoami', 'crash', 'shout'];

interface WhoAmI {
  readonly pid: number;
  readonly port: string | null;
  readonly grandchild: number | null;
  readonly leaked: string | null;
}

let snapshots: InMemorySnapshotSource;
let plane: DataPlane;
let baseUrl: string;
let httpPort: number;
let logs: ReturnType<typeof captureLogs>;
let stdio: ServerSetup;
let http: ServerSetup;
const previousSecret = process.env.GATEHOUSE_SESSION_SECRET;

beforeAll(async () => {
  // A secret of the data plane's own environment that must not reach a managed process.
  process.env.GATEHOUSE_SESSION_SECRET = 'the-data-plane-secret-that-children-must-not-see';
  httpPort = await freePort();
  stdio = { upstream: { kind: 'managed-stdio', ...fixtureLaunch('supervised-server'), env: { FIXTURE_GRANDCHILD: '1' }, secretEnv: {}, cwd: null }, tools: TOOLS };
  http = {
    upstream: { kind: 'managed-http', ...fixtureLaunch('supervised-server'), env: { FIXTURE_HTTP_FROM_PORT: '1' }, secretEnv: {}, cwd: null, url: `http://127.0.0.1:${httpPort}/mcp` },
    tools: TOOLS,
  };
  snapshots = new InMemorySnapshotSource();
  snapshots.offer(proxySnapshot({ 'srv-stdio': stdio, 'srv-http': http }));
  logs = captureLogs();
  plane = buildDataPlane({ port: 0, sessionSecret: SECRET, callTimeoutMs: 20_000, listTimeoutMs: 20_000 }, { snapshots, logger: logs.logger });
  baseUrl = (await plane.listen()).url;
}, 60_000);

afterAll(async () => {
  await plane?.close();
  if (previousSecret === undefined) delete process.env.GATEHOUSE_SESSION_SECRET;
  else process.env.GATEHOUSE_SESSION_SECRET = previousSecret;
});

async function whoami(tool: string): Promise<WhoAmI> {
  const { client, close } = await connectClient(baseUrl);
  try {
    const result = await client.callTool({ name: tool, arguments: {} });
    if (result.isError) throw new Error(textOf(result));
    return JSON.parse(textOf(result)) as WhoAmI;
  } finally {
    await close();
  }
}

function entryKey(assignmentId: string): string {
  return snapshots.current()!.gatewaysBySlug.get('eng')!.entries.find((entry) => entry.assignment.id === assignmentId)!.upstreamKey;
}

describe('managed stdio servers', () => {
  let first: WhoAmI;

  it('launches the process on first use with only a minimal environment plus its own', async () => {
    first = await whoami('local__whoami');
    expect(isProcessAlive(first.pid)).toBe(true);
    expect(first.grandchild).not.toBeNull();
    expect(first.leaked).toBeNull();
    expect(plane.pool.peek(entryKey('asg-stdio'))?.processId).toBe(first.pid);
  });

  it('restarts a crashed process with backoff; the next call is served by the new process and the old group is gone', async () => {
    const { client, close } = await connectClient(baseUrl);
    try {
      const crashed = await client.callTool({ name: 'local__crash', arguments: {} }).then(
        () => undefined,
        (error: unknown) => error as { code: number; message: string },
      );
      expect(crashed?.code).toBe(-32060);
      expect(crashed?.message).toContain('Everything (stdio)');
    } finally {
      await close();
    }
    const second = await eventually(() => whoami('local__whoami'));
    expect(second.pid).not.toBe(first.pid);
    await eventually(async () => {
      expect(isProcessAlive(first.pid)).toBe(false);
      expect(isProcessAlive(first.grandchild!)).toBe(false);
    });
    expect(plane.pool.peek(entryKey('asg-stdio'))?.processRestarts).toBe(1);
    const metrics = parseMetrics(await (await fetch(`${baseUrl}/metrics`)).text());
    expect(metrics.get('gatehouse_data_plane_managed_process_restarts{gateway="eng",server="Everything (stdio)",assignment="asg-stdio"}')).toBe(1);
    const exits = logs.lines().filter((line) => line.msg === 'a managed server process exited; restarting it');
    expect(exits).toEqual([expect.objectContaining({ server: 'Everything (stdio)', exit: 'exit code 1', restartInMs: 250 })]);
  });

  it('logs stderr lines with the server name, rate-limited', async () => {
    const { client, close } = await connectClient(baseUrl);
    try {
      await client.callTool({ name: 'local__shout', arguments: { lines: 60 } });
    } finally {
      await close();
    }
    await eventually(async () => {
      const stderr = logs.lines().filter((line) => line.stream === 'stderr' && line.server === 'Everything (stdio)');
      expect(stderr.map((line) => line.line)).toContain('supervised-server: crashing on purpose');
      expect(stderr.some((line) => line.line === 'shout line 1')).toBe(true);
    });
    const shouted = logs.lines().filter((line) => typeof line.line === 'string' && (line.line as string).startsWith('shout line'));
    expect(shouted.length).toBeGreaterThan(0);
    expect(shouted.length).toBeLessThanOrEqual(20);
  });

  it('stops the process group when a snapshot no longer assigns the server', async () => {
    const current = await whoami('local__whoami');
    const stdioKey = entryKey('asg-stdio');
    snapshots.offer(proxySnapshot({ 'srv-http': http }, 2));
    await eventually(async () => {
      expect(isProcessAlive(current.pid)).toBe(false);
      expect(isProcessAlive(current.grandchild!)).toBe(false);
    });
    expect(plane.pool.peek(stdioKey)).toBeUndefined();
    // The lines over the limit are reported when the process goes.
    expect(logs.lines().some((line) => typeof line.dropped === 'number' && line.server === 'Everything (stdio)')).toBe(true);
  });
});

describe('managed HTTP servers', () => {
  it('launches the command with PORT set, waits until it accepts connections, then speaks Streamable HTTP to it', async () => {
    const served = await whoami('web__whoami');
    expect(served.port).toBe(String(httpPort));
    expect(served.leaked).toBeNull();
  });

  it('restarts a killed process and opens a new upstream session with it', async () => {
    const before = await whoami('web__whoami');
    process.kill(before.pid, 'SIGKILL');
    const after = await eventually(() => whoami('web__whoami'), 15_000);
    expect(after.pid).not.toBe(before.pid);
    expect(plane.pool.peek(entryKey('asg-http'))?.processRestarts).toBe(1);
  });

  it('stops its processes when the data plane closes', async () => {
    const current = await whoami('web__whoami');
    await plane.close();
    await eventually(async () => expect(isProcessAlive(current.pid)).toBe(false));
  });
});
