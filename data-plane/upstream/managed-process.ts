import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { DataPlaneLogger } from '../logger.js';

/** How to start a managed server's process. */
export interface LaunchSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** Added to a minimal inherited environment (PATH, HOME, …): the data plane's own variables never reach the child. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | null;
}

/** Restart policy after a crash. */
export interface RestartPolicy {
  /** First delay after a crash. Default 250 ms. */
  readonly initialDelayMs: number;
  /** Delays double up to this. Default 30 s. */
  readonly maxDelayMs: number;
  /** A process that ran at least this long before exiting restarts after the initial delay again. Default 60 s. */
  readonly stableAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({ initialDelayMs: 250, maxDelayMs: 30_000, stableAfterMs: 60_000 });

export interface ManagedProcessOptions {
  /** Display name of the server (logs, errors). */
  readonly serverName: string;
  /** The pool key of the entry, for logs. */
  readonly key: string;
  readonly spec: LaunchSpec;
  readonly logger: DataPlaneLogger;
  readonly restart?: RestartPolicy;
  /**
   * `stdio`: stdin/stdout carry MCP, stderr is logged. `http`: the process serves HTTP;
   * stdin stays open (some servers exit when it closes) and stdout and stderr are logged.
   */
  readonly mode: 'stdio' | 'http';
  /** For `http`: the host and port the process must accept TCP connections on before it counts as started. */
  readonly readiness?: { readonly host: string; readonly port: number; readonly timeoutMs: number };
  /** SIGTERM to SIGKILL. Default 2 s. */
  readonly stopGraceMs?: number;
  /** Log lines kept per window from the child's output; the rest are counted and reported. Default 20 per 10 s. */
  readonly logLines?: { readonly perWindow: number; readonly windowMs: number };
}

/** Why a managed process cannot be used now. Local; the connection turns it into an `UpstreamError`. */
export class ManagedProcessUnavailable extends Error {
  override readonly name = 'ManagedProcessUnavailable';
  constructor(
    message: string,
    /** Epoch ms of the next restart, when one is scheduled. */
    readonly restartAt?: number,
  ) {
    super(message);
  }
}

export type ManagedProcessState = 'idle' | 'starting' | 'running' | 'backoff' | 'stopped';

/** Every process group started here, killed if the data plane exits without stopping them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of liveGroups) signalGroup(group, 'SIGKILL');
  });
}

/** Signals the process group led by `pid`; false when it has no member left (ESRCH). */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Supervises one managed server process: launched on first use, restarted after a crash
 * (any exit the supervisor did not ask for) with exponential backoff (initial delay
 * doubling to a cap; back to the initial delay once a process had run stably), its
 * output logged line by line with the server's name (rate-limited), and stopped as a
 * process group: it runs detached as the leader of its own group, and `stop()` sends
 * SIGTERM then SIGKILL to the whole group, so helpers it spawned (`npx` → `node`, shell
 * pipelines) go too.
 */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private current: Promise<ChildProcess> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stateValue: ManagedProcessState = 'idle';
  private lastExit: string | undefined;
  /** The child {@link recycle} is ending (several sessions may find the same process bad). */
  private recycling: ChildProcess | undefined;
  private readonly exitListeners = new Set<(child: ChildProcess) => void>();
  private readonly waiters = new Set<() => void>();
  /** Times the process was started again after it exited on its own or was recycled. */
  restarts = 0;
  /** Epoch ms of the scheduled restart while in backoff. */
  restartAt: number | undefined;

  constructor(private readonly options: ManagedProcessOptions) {}

  get state(): ManagedProcessState {
    return this.stateValue;
  }

  /** The running child's pid, if any. */
  get pid(): number | undefined {
    return this.stateValue === 'running' ? this.child?.pid : undefined;
  }

  /** Called with the child whenever a process exits (crash or stop). */
  onExit(listener: (child: ChildProcess) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  /**
   * The running (and, for HTTP, ready) process, starting it if needed. While a restart
   * is pending, waits for it when it is due within `waitMs`, else fails at once with
   * {@link ManagedProcessUnavailable} saying when it restarts.
   */
  async acquire(waitMs: number): Promise<ChildProcess> {
    for (;;) {
      switch (this.stateValue) {
        case 'stopped':
          throw new ManagedProcessUnavailable(`server "${this.options.serverName}" is no longer assigned; its process was stopped`);
        case 'idle':
          this.launch();
          break;
        case 'starting':
        case 'running':
          return this.current!;
        case 'backoff': {
          const due = (this.restartAt ?? Date.now()) - Date.now();
          if (due > waitMs) {
            throw new ManagedProcessUnavailable(
              `the process of server "${this.options.serverName}" exited (${this.lastExit ?? 'unknown'}); it restarts in ${Math.ceil(due / 1000)} s`,
              this.restartAt,
            );
          }
          await new Promise<void>((resolve) => this.waiters.add(resolve));
          break;
        }
      }
    }
  }

  /**
   * Kills the current process so that it restarts with the usual backoff (a session on it
   * went bad, or it stopped answering); a no-op unless it is the current one and not
   * already being recycled. True when it was told to go.
   */
  recycle(child: ChildProcess, reason: string): boolean {
    if (this.child !== child || this.recycling === child || this.stateValue === 'stopped' || child.exitCode !== null || child.signalCode !== null) return false;
    this.recycling = child;
    this.options.logger.warn({ server: this.options.serverName, upstream: this.options.key, pid: child.pid, reason }, 'restarting a managed server process');
    this.terminate(child);
    return true;
  }

  /** Stops for good: no restart; resolves once the process group is gone (SIGKILL after the grace period). */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'stopped';
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.restartAt = undefined;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      this.terminate(child);
      await Promise.race([exited, sleep((this.options.stopGraceMs ?? 2_000) + 2_000)]);
    }
  }

  private terminate(child: ChildProcess): void {
    const pid = child.pid;
    if (pid === undefined) return;
    child.stdin?.end();
    const signal = (name: NodeJS.Signals) => {
      if (!signalGroup(pid, name) && child.exitCode === null && child.signalCode === null) child.kill(name);
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), this.options.stopGraceMs ?? 2_000);
    timer.unref();
    child.once('exit', () => clearTimeout(timer));
  }

  private launch(): void {
    const { spec, serverName, key, logger, mode } = this.options;
    this.stateValue = 'starting';
    this.restartAt = undefined;
    const child = spawn(spec.command, [...spec.args], {
      env: { ...getDefaultEnvironment(), ...spec.env },
      ...(spec.cwd === null ? {} : { cwd: spec.cwd }),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    if (child.pid !== undefined) trackGroup(child.pid);
    const log = new LineLogger(logger, { server: serverName, upstream: key, pid: child.pid }, this.options.logLines);
    child.stderr?.on('data', (chunk: Buffer) => log.write('stderr', chunk));
    if (mode === 'http') child.stdout?.on('data', (chunk: Buffer) => log.write('stdout', chunk));
    // A child that exits while we write would otherwise raise EPIPE as an uncaught error.
    child.stdin?.on('error', () => undefined);

    let settled = false;
    let resolveStarted!: (child: ChildProcess) => void;
    let rejectStarted!: (error: Error) => void;
    const started = new Promise<ChildProcess>((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    });
    started.catch(() => undefined);
    this.current = started;

    let exited = false;
    const onExit = (description: string) => {
      if (exited) return;
      exited = true;
      log.flush();
      if (child.pid !== undefined) {
        // Whatever of its group outlived the leader (helpers it spawned) goes with it.
        signalGroup(child.pid, 'SIGKILL');
        liveGroups.delete(child.pid);
      }
      this.lastExit = description;
      if (!settled) {
        settled = true;
        rejectStarted(new ManagedProcessUnavailable(`the process of server "${serverName}" exited while starting (${description})${log.lastLine ? `: ${log.lastLine}` : ''}`));
      }
      for (const listener of this.exitListeners) listener(child);
      if (this.child !== child) return;
      if (this.stateValue === 'stopped') return;
      this.scheduleRestart(description);
    };
    child.once('error', (error) => onExit(`could not start: ${error.message}`));
    child.once('exit', (code, signal) => onExit(signal ? `signal ${signal}` : `exit code ${code}`));
    child.once('spawn', () => {
      logger.info({ server: serverName, upstream: key, pid: child.pid, command: spec.command }, 'started a managed server process');
      const ready = mode === 'http' && this.options.readiness ? waitForPort(this.options.readiness, () => exited) : Promise.resolve();
      ready.then(
        () => {
          if (settled || exited) return;
          settled = true;
          if (this.child === child && this.stateValue === 'starting') this.stateValue = 'running';
          resolveStarted(child);
        },
        (error: Error) => {
          if (settled) return;
          settled = true;
          rejectStarted(new ManagedProcessUnavailable(`server "${serverName}" did not become ready: ${error.message}`));
          this.recycle(child, 'not ready in time');
        },
      );
    });
  }

  private scheduleRestart(description: string): void {
    const policy = this.options.restart ?? DEFAULT_RESTART_POLICY;
    const uptime = Date.now() - this.startedAt;
    if (uptime >= policy.stableAfterMs) this.attempt = 0;
    const delay = Math.min(policy.initialDelayMs * 2 ** this.attempt, policy.maxDelayMs);
    this.attempt += 1;
    this.stateValue = 'backoff';
    this.restartAt = Date.now() + delay;
    this.options.logger.warn(
      { server: this.options.serverName, upstream: this.options.key, exit: description, uptimeMs: uptime, restartInMs: delay },
      'a managed server process exited; restarting it',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stateValue !== 'backoff') return;
      this.restarts += 1;
      this.launch();
      for (const wake of this.waiters) wake();
      this.waiters.clear();
    }, delay);
    this.restartTimer.unref();
  }
}

/** Splits a child's output into lines and logs them with the server's name, at most N per window. */
class LineLogger {
  private partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  private windowStart = 0;
  private inWindow = 0;
  private dropped = 0;
  lastLine: string | undefined;

  constructor(
    private readonly logger: DataPlaneLogger,
    private readonly fields: Record<string, unknown>,
    private readonly limit: { readonly perWindow: number; readonly windowMs: number } = { perWindow: 20, windowMs: 10_000 },
  ) {}

  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const text = this.partial[stream] + chunk.toString('utf8');
    const lines = text.split(/\r?\n/);
    this.partial[stream] = (lines.pop() ?? '').slice(-MAX_LINE);
    for (const line of lines) if (line.trim() !== '') this.line(stream, line);
  }

  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream].trim() !== '') this.line(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
    this.reportDropped();
  }

  private line(stream: 'stdout' | 'stderr', raw: string): void {
    const line = raw.length > MAX_LINE ? `${raw.slice(0, MAX_LINE)}…` : raw;
    if (stream === 'stderr') this.lastLine = line.slice(0, 300);
    const now = Date.now();
    if (now - this.windowStart >= this.limit.windowMs) {
      this.reportDropped();
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.limit.perWindow) {
      this.dropped += 1;
      return;
    }
    this.inWindow += 1;
    this.logger.info({ ...this.fields, stream, line }, `upstream ${stream}`);
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    this.logger.warn({ ...this.fields, dropped: this.dropped }, `dropped ${this.dropped} output lines of a managed server (more than ${this.limit.perWindow} per ${this.limit.windowMs} ms)`);
    this.dropped = 0;
  }
}

const MAX_LINE = 2_048;

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs` or when `gone()` turns true. */
async function waitForPort(target: { host: string; port: number; timeoutMs: number }, gone: () => boolean): Promise<void> {
  const deadline = Date.now() + target.timeoutMs;
  for (;;) {
    if (gone()) throw new Error('the process exited');
    if (await canConnect(target.host, target.port)) return;
    if (Date.now() >= deadline) throw new Error(`nothing accepted connections on ${target.host}:${target.port} within ${target.timeoutMs} ms`);
    await sleep(50);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
