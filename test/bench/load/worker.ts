/**
 * The load generator: a process of its own (forked by test/bench/run.ts) so it never
 * shares an event loop with what it measures. It takes one job over IPC, runs it with
 * lean MCP sessions, and answers with the measurements.
 */
import { performance } from 'node:perf_hooks';
import { summarize, type LatencySummary } from '../lib/stats.js';
import { LeanMcpSession, closePools } from './lean-client.js';

interface Target {
  readonly url: string;
  readonly headers: Record<string, string>;
}

export type Job =
  | (Target & { kind: 'sequential'; calls: number; warmup: number; payloadBytes: number })
  | (Target & { kind: 'concurrent'; sessions: number; durationMs: number; warmupMs: number; payloadBytes: number })
  | (Target & { kind: 'list'; calls: number; warmup: number })
  /** tools/list to every URL at once per iteration, timed until the last answers (the direct fan-out). */
  | (Target & { kind: 'list-many'; urls: readonly string[]; calls: number; warmup: number })
  /** Stops early after `maxMs` (a peer that spawns a process per session takes ~0.4 s each). */
  | (Target & { kind: 'setup'; count: number; warmup: number; maxMs?: number })
  | (Target & { kind: 'open-sessions'; count: number })
  | (Target & { kind: 'soak'; sessions: number; calls: number; payloadBytes: number });

export type JobResult =
  | { kind: 'latency'; latency: LatencySummary; errors: number; firstError?: string }
  | { kind: 'throughput'; callsPerSecond: number; calls: number; latency: LatencySummary; errors: number; firstError?: string; cpuSeconds?: number }
  | { kind: 'opened'; sessions: number }
  | { kind: 'done'; calls: number; errors: number; firstError?: string };

const text = (bytes: number) => 'x'.repeat(Math.max(1, bytes));

async function openSession(target: Target): Promise<LeanMcpSession> {
  const session = new LeanMcpSession(target.url, target.headers);
  await session.initialize();
  return session;
}

async function timedCalls(session: LeanMcpSession, calls: number, run: () => Promise<unknown>, into: number[] | undefined, errors: { count: number; first?: string }) {
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    try {
      await run();
      into?.push(performance.now() - started);
    } catch (error) {
      errors.count++;
      errors.first ??= String(error);
    }
  }
}

export async function runJob(job: Job, waitForClose?: () => Promise<void>, report?: (result: JobResult) => void): Promise<JobResult> {
  const errors: { count: number; first?: string } = { count: 0 };
  const withErrors = () => ({ errors: errors.count, ...(errors.first ? { firstError: errors.first } : {}) });
  switch (job.kind) {
    case 'sequential': {
      const session = await openSession(job);
      const args = { text: text(job.payloadBytes) };
      await timedCalls(session, job.warmup, () => session.callTool('echo', args), undefined, errors);
      const latencies: number[] = [];
      await timedCalls(session, job.calls, () => session.callTool('echo', args), latencies, errors);
      await session.close();
      return { kind: 'latency', latency: summarize(latencies), ...withErrors() };
    }
    case 'list': {
      const session = await openSession(job);
      await timedCalls(session, job.warmup, () => session.listTools(), undefined, errors);
      const latencies: number[] = [];
      await timedCalls(session, job.calls, () => session.listTools(), latencies, errors);
      await session.close();
      return { kind: 'latency', latency: summarize(latencies), ...withErrors() };
    }
    case 'list-many': {
      const sessions = await Promise.all(job.urls.map((url) => openSession({ url, headers: job.headers })));
      const all = () => Promise.all(sessions.map((s) => s.listTools()));
      await timedCalls(sessions[0]!, job.warmup, all, undefined, errors);
      const latencies: number[] = [];
      await timedCalls(sessions[0]!, job.calls, all, latencies, errors);
      await Promise.all(sessions.map((s) => s.close()));
      return { kind: 'latency', latency: summarize(latencies), ...withErrors() };
    }
    case 'setup': {
      const latencies: number[] = [];
      const deadline = performance.now() + (job.maxMs ?? Number.POSITIVE_INFINITY);
      for (let i = 0; i < job.warmup + job.count && performance.now() < deadline; i++) {
        const started = performance.now();
        try {
          const session = await openSession(job);
          if (i >= job.warmup) latencies.push(performance.now() - started);
          await session.close();
        } catch (error) {
          errors.count++;
          errors.first ??= String(error);
        }
      }
      return { kind: 'latency', latency: summarize(latencies), ...withErrors() };
    }
    case 'concurrent': {
      const sessions = await Promise.all(Array.from({ length: job.sessions }, () => openSession(job)));
      const args = { text: text(job.payloadBytes) };
      const latencies: number[] = [];
      let measuring = false;
      let stop = false;
      let calls = 0;
      const loops = sessions.map(async (session) => {
        while (!stop) {
          const started = performance.now();
          try {
            await session.callTool('echo', args);
            if (measuring) {
              latencies.push(performance.now() - started);
              calls++;
            }
          } catch (error) {
            errors.count++;
            errors.first ??= String(error);
          }
        }
      });
      await new Promise((resolve) => setTimeout(resolve, job.warmupMs));
      measuring = true;
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, job.durationMs));
      measuring = false;
      const seconds = (performance.now() - started) / 1000;
      stop = true;
      await Promise.all(loops);
      await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
      const cpu = process.cpuUsage();
      return { kind: 'throughput', callsPerSecond: calls / seconds, calls, latency: summarize(latencies), cpuSeconds: (cpu.user + cpu.system) / 1e6, ...withErrors() };
    }
    case 'open-sessions': {
      const sessions: LeanMcpSession[] = [];
      for (let i = 0; i < job.count; i += 50) {
        sessions.push(...(await Promise.all(Array.from({ length: Math.min(50, job.count - i) }, () => openSession(job)))));
      }
      report?.({ kind: 'opened', sessions: sessions.length });
      await waitForClose?.();
      for (let i = 0; i < sessions.length; i += 50) await Promise.all(sessions.slice(i, i + 50).map((s) => s.close().catch(() => undefined)));
      return { kind: 'done', calls: 0, ...withErrors() };
    }
    case 'soak': {
      const sessions = await Promise.all(Array.from({ length: job.sessions }, () => openSession(job)));
      const args = { text: text(job.payloadBytes) };
      let remaining = job.calls;
      await Promise.all(
        sessions.map(async (session) => {
          while (remaining-- > 0) {
            try {
              await session.callTool('echo', args);
            } catch (error) {
              errors.count++;
              errors.first ??= String(error);
            }
          }
        }),
      );
      await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
      return { kind: 'done', calls: job.calls, ...withErrors() };
    }
  }
}

/**
 * Over IPC: `{ job }` runs one job and answers `{ result }` (or `{ error }`); an
 * `open-sessions` job first answers `{ result: opened }` and holds its sessions until
 * `{ close: true }`; `{ exit: true }` ends the process. Connection pools are closed after
 * every job, so jobs never share connections.
 */
if (process.send) {
  let release: (() => void) | undefined;
  process.on('message', (message: { job?: Job; close?: true; exit?: true }) => {
    if (message.exit) process.exit(0);
    if (message.close) return release?.();
    if (!message.job) return;
    const closed = new Promise<void>((resolve) => (release = resolve));
    runJob(message.job, () => closed, (result) => process.send!({ result }))
      .then(async (result) => {
        await closePools();
        process.send!({ result });
      })
      .catch((error: unknown) => process.send!({ error: String(error instanceof Error ? error.stack : error) }));
  });
}
