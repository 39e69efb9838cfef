import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acceptSnapshot } from '../../../data-plane/snapshot/compiled-snapshot.js';
import { DirectCalls } from '../../../data-plane/upstream/direct-calls.js';
import { IdleProbe, type IdleProbeOptions } from '../../../data-plane/upstream/idle-probe.js';
import { UpstreamPool } from '../../../data-plane/upstream/upstream-pool.js';
import { isProcessAlive } from '../../fixtures/mcp/spawn.js';
import { captureLogs, eventually, fixtureLaunch, proxySnapshot } from '../../integration/data-plane/proxy-helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idle probe of a managed stdio server (real process)', () => {
  const INTERVAL_MS = 250;
  let dir: string;
  let pool: UpstreamPool;
  let pingLog: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-probe-'));
  });

  afterEach(async () => {
    await pool?.close();
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** A pool with one managed stdio entry (the supervised fixture, logging the pings it answers). */
  function connect(name: string, probe: IdleProbeOptions) {
    pingLog = join(dir, `${name}.pings`);
    const compiled = acceptSnapshot(
      undefined,
      proxySnapshot({
        'srv-stdio': {
          upstream: { kind: 'managed-stdio', ...fixtureLaunch('supervised-server'), env: { FIXTURE_PING_LOG: pingLog }, secretEnv: {}, cwd: null },
          tools: ['whoami'],
        },
      }),
    );
    const entry = compiled.gatewaysBySlug.get('eng')!.entries.find((candidate) => candidate.assignment.id === 'asg-stdio')!;
    pool = new UpstreamPool({ clientInfo: { name: 'probe-test', version: '1' }, logger: captureLogs().logger, managedProbe: probe });
    return pool.get(entry, new Map());
  }

  const pingsAnswered = () => {
    try {
      return readFileSync(pingLog, 'utf8').split('\n').filter((line) => line !== '').length;
    } catch {
      return 0;
    }
  };

  it('never pings a session that keeps answering, pings it once idle, and stops when the connection is closed', async () => {
    const connection = connect('busy', { intervalMs: INTERVAL_MS, timeoutMs: 1_000, failures: 2 });
    const whoami = () => connection.request('tools/call', { name: 'whoami', arguments: {} }, { timeoutMs: 10_000 });
    await whoami();
    expect(connection.probing).toBe(true);
    // Answers every ~50 ms for four intervals: the probe never fires.
    const busyUntil = Date.now() + 4 * INTERVAL_MS;
    while (Date.now() < busyUntil) {
      await whoami();
      await sleep(40);
    }
    expect(connection.probesSent).toBe(0);
    expect(pingsAnswered()).toBe(0);

    // Idle: pinged about once per interval, and the process answers.
    await eventually(async () => expect(pingsAnswered()).toBeGreaterThanOrEqual(2), 3_000, 25);
    expect(connection.probeFailures).toBe(0);
    const pid = connection.processId!;

    // Unassigned: the probe stops with the connection and nothing is sent any more.
    await pool.retain(new Set());
    expect(connection.probing).toBe(false);
    const sent = connection.probesSent;
    await sleep(3 * INTERVAL_MS);
    expect(connection.probesSent).toBe(sent);
    expect(isProcessAlive(pid)).toBe(false);
  });

  it('sends nothing with an interval of 0', async () => {
    const connection = connect('off', { intervalMs: 0, timeoutMs: 1_000, failures: 2 });
    await connection.request('tools/call', { name: 'whoami', arguments: {} }, { timeoutMs: 10_000 });
    expect(connection.probing).toBe(false);
    await sleep(3 * INTERVAL_MS);
    expect(connection.probesSent).toBe(0);
    expect(pingsAnswered()).toBe(0);
  });
});

describe('IdleProbe', () => {
  const OPTIONS: IdleProbeOptions = { intervalMs: 40, timeoutMs: 60, failures: 2 };

  /**
   * A direct-call session over an in-memory pair, the far end an upstream written here:
   * it answers `ping` (or an error, or nothing while deaf) and `slow` after `slowMs`.
   */
  async function session(peer: { deaf?: boolean; pingError?: boolean; slowMs?: number } = {}) {
    const [near, far] = InMemoryTransport.createLinkedPair();
    let pings = 0;
    far.onmessage = (message) => {
      const request = message as { id?: string | number; method?: string };
      if (request.id === undefined) return;
      const answer = (body: object) => void far.send({ jsonrpc: '2.0', id: request.id!, ...body } as JSONRPCMessage);
      if (request.method === 'ping') {
        pings += 1;
        if (peer.deaf) return;
        answer(peer.pingError ? { error: { code: -32601, message: 'Method not found' } } : { result: {} });
      } else if (request.method === 'slow') {
        setTimeout(() => answer({ result: {} }), peer.slowMs ?? 0);
      }
    };
    await near.start();
    await far.start();
    const calls = new DirectCalls(near);
    const events = { failed: [] as number[], hung: [] as string[] };
    const probe = new IdleProbe(calls, OPTIONS, {
      pinged: () => undefined,
      failed: (consecutive) => events.failed.push(consecutive),
      hung: (reason) => events.hung.push(reason),
    });
    return { calls, probe, events, pings: () => pings, close: () => near.close() };
  }

  it('reports a peer that answers no ping hung after the configured failures in a row, then stops', async () => {
    const { probe, events, pings } = await session({ deaf: true });
    probe.start();
    await eventually(async () => expect(events.hung).toHaveLength(1), 2_000, 10);
    expect(events.failed).toEqual([1, 2]);
    expect(events.hung[0]).toBe('it answered none of 2 pings in a row (last: no answer within 60 ms)');
    expect(probe.running).toBe(false);
    await sleep(4 * OPTIONS.intervalMs);
    expect(pings()).toBe(2);
  });

  it('counts an error answer to ping as an answer (a server without ping is alive)', async () => {
    const { probe, events, pings } = await session({ pingError: true });
    probe.start();
    await eventually(async () => expect(pings()).toBeGreaterThanOrEqual(3), 2_000, 10);
    probe.stop();
    expect(events.failed).toEqual([]);
    expect(events.hung).toEqual([]);
  });

  it('does not count a ping that went unanswered while another request was answered', async () => {
    const { calls, probe, events } = await session({ deaf: true });
    probe.start();
    await eventually(async () => expect(events.failed).toEqual([1]), 2_000, 5);
    // An answer arrives while the second ping waits: the process is alive, the count starts over.
    await calls.request('slow', undefined, { timeoutMs: 1_000 });
    await eventually(async () => expect(events.failed.length).toBeGreaterThanOrEqual(2), 2_000, 5);
    expect(events.failed[1]).toBe(1);
    probe.stop();
  });

  it('never pings while a call is in flight, however long it runs without an answer (one request at a time is not a hang)', async () => {
    const { calls, probe, events, pings } = await session({ deaf: true, slowMs: 6 * OPTIONS.intervalMs });
    probe.start();
    const slow = calls.request('slow', undefined, { timeoutMs: 5_000 });
    await sleep(5 * OPTIONS.intervalMs);
    expect(pings()).toBe(0);
    await slow;
    // Idle again and still deaf to pings: found hung now.
    await eventually(async () => expect(events.hung).toHaveLength(1), 2_000, 10);
    expect(pings()).toBe(2);
  });

  it('stops when the session closes', async () => {
    const { probe, pings, close } = await session();
    probe.start();
    await eventually(async () => expect(pings()).toBeGreaterThanOrEqual(1), 2_000, 10);
    await close();
    await sleep(3 * OPTIONS.intervalMs);
    expect(probe.running).toBe(false);
    const seen = pings();
    await sleep(3 * OPTIONS.intervalMs);
    expect(pings()).toBe(seen);
  });
});
