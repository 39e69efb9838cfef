/** Child processes of the benchmark: spawn, wait for a line, measure RSS, stop. */
import { execFileSync, spawn, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job, JobResult } from '../load/worker.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface Spawned {
  readonly child: ChildProcess;
  readonly name: string;
  /** Last lines of output, for error messages. */
  readonly tail: string[];
  stop(): Promise<void>;
}

/**
 * Starts `command args` in its own process group and resolves once a line of its output
 * matches `ready` (returning the match), or rejects with its last output after `timeoutMs`.
 */
export function start(
  name: string,
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; ready: RegExp; timeoutMs?: number; cwd?: string },
): Promise<{ spawned: Spawned; match: RegExpMatchArray }> {
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO,
    env: Object.fromEntries(Object.entries({ ...process.env, ...options.env }).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const tail: string[] = [];
  const spawned: Spawned = {
    child,
    name,
    tail,
    stop: () => stopProcess(child),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void spawned.stop();
      reject(new Error(`${name} did not become ready in ${options.timeoutMs ?? 30_000} ms:\n${tail.join('\n')}`));
    }, options.timeoutMs ?? 30_000);
    let matched = false;
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      const match = !matched && line.match(options.ready);
      if (match) {
        matched = true;
        clearTimeout(timer);
        resolve({ spawned, match });
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buffer = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          onLine(buffer.slice(0, newline));
          buffer = buffer.slice(newline + 1);
        }
      });
    }
    child.once('exit', (code) => {
      if (!matched) {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready:\n${tail.join('\n')}`));
      }
    });
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

/** Resident set size of a process and its descendants' main process, in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** The pids of a process and every descendant (for peers that spawn per-session children). */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      const children = readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').trim();
      if (children) pids.push(...children.split(/\s+/).map(Number));
    } catch {
      /* exited */
    }
  }
  return pids;
}

export function treeRssMiB(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    try {
      return sum + rssMiB(p);
    } catch {
      return sum;
    }
  }, 0);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** `node --import tsx <script>`: TypeScript without a build, one process (its pid is the one measured). */
let built = false;

/**
 * Node arguments that run the `gatehouse` command (control-plane/cli/main.ts) as production
 * runs it: the prebuilt bundle (`npm run build`, rebuilt once per benchmark process so it
 * is never stale), not the TypeScript sources through tsx.
 */
export function gatehouseArgs(args: readonly string[] = []): string[] {
  if (!built) {
    execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: 'inherit' });
    built = true;
  }
  return [path.join(REPO, 'node_modules/.cache/gatehouse/dist/main.mjs'), ...args];
}

export function tsxArgs(script: string, args: readonly string[] = []): string[] {
  return ['--import', 'tsx', path.join(REPO, script), ...args];
}

/**
 * Starts one of the benchmark's own HTTP servers (`test/bench/upstreams/*.ts`: the echo
 * upstream, the forwarder) in its own process and waits for the `LISTENING <url>` line.
 */
export async function startBenchServer(name: string, script: string, args: readonly string[]): Promise<{ url: string; spawned: Spawned }> {
  const { spawned, match } = await start(name, process.execPath, tsxArgs(script, args), { ready: /LISTENING (\S+)/ });
  return { url: match[1]!, spawned };
}

/** Forks the load generator and runs one job in it. */
export function forkWorker(): ChildProcess {
  return fork(path.join(REPO, 'test/bench/load/worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/**
 * A runner of load-generator jobs: one long-lived worker process, started on first use
 * (and again if it died), stopped by a cleanup pushed onto `cleanups`. With `whileOpen`,
 * an `opened` result (sessions held open) calls it, then tells the worker to close them.
 */
export function loadGenerator(cleanups: (() => Promise<void>)[]): (job: Job, whileOpen?: (result: JobResult) => Promise<void>) => Promise<JobResult> {
  let worker: ChildProcess | undefined;
  return (job, whileOpen) => {
    if (!worker || worker.exitCode !== null) {
      worker = forkWorker();
      const started = worker;
      cleanups.push(async () => {
        if (started.exitCode === null) started.send({ exit: true });
      });
    }
    const current = worker;
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited with ${code}`));
      const onMessage = (message: { result?: JobResult; error?: string }) => {
        if (message.error) return finish(() => reject(new Error(message.error)));
        const result = message.result!;
        if (result.kind === 'opened' && whileOpen) {
          void whileOpen(result).then(() => current.send({ close: true }), reject);
          return;
        }
        finish(() => resolve(result));
      };
      const finish = (settle: () => void) => {
        current.off('message', onMessage);
        current.off('exit', onExit);
        settle();
      };
      current.on('message', onMessage);
      current.once('exit', onExit);
      current.send({ job });
    });
  };
}
