import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { echoLine, type LogFormat } from './log.js';
import { sleep, waitAtMost } from './net.js';
import { LaunchError } from './launch-error.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  error?: Error;
}

export interface ManagedProcessOptions {
  name: string;
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Which output lines to print as they come; all lines are kept in the tail either way. */
  echo: (line: string) => boolean;
  format: LogFormat;
}

const TAIL_LINES_MAX = 200;
const OUTPUT_DRAIN_MS = 500;
/** After SIGKILL the kernel ends the process at once; this only bounds waiting for the event. */
const KILL_WAIT_MS = 3_000;

/** Every child still running, so an unexpected exit of the launcher can take them along. */
const running = new Set<ManagedProcess>();

/**
 * A child process the launcher owns: output prefixed with its name, the last lines kept for
 * error reports, and a bounded stop (signal, wait, then SIGKILL of its process group).
 *
 * Children are started in their own process group (`detached`) so that Ctrl-C in the terminal
 * reaches only the launcher, which then stops them in order: apps first, servers last. Started
 * in the terminal's group, Postgres and NATS would get the same SIGINT as the apps and go away
 * while the apps are still draining.
 */
export class ManagedProcess {
  readonly exited: Promise<ExitInfo>;
  private readonly tail: string[] = [];
  private exitInfo?: ExitInfo;
  private readonly child: ChildProcess;

  constructor(readonly options: ManagedProcessOptions) {
    this.child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      uid: options.uid,
      gid: options.gid,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    this.exited = new Promise<ExitInfo>((resolve) => {
      const finish = (info: ExitInfo) => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        running.delete(this);
        resolve(info);
      };
      this.child.once('error', (error) => finish({ code: null, signal: null, error }));
      // 'close' comes after the last output line was read, so error reports show it; a
      // grandchild holding the pipes open must not delay the exit for long, hence the timer.
      this.child.once('close', (code, signal) => finish({ code, signal }));
      this.child.once('exit', (code, signal) =>
        setTimeout(() => finish({ code, signal }), OUTPUT_DRAIN_MS).unref(),
      );
    });
    this.follow(this.child.stdout, 'stdout');
    this.follow(this.child.stderr, 'stderr');
  }

  get name(): string {
    return this.options.name;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return this.exitInfo === undefined;
  }

  lastLines(count: number): string[] {
    return this.tail.slice(-count);
  }

  /**
   * Sends `signal`, waits up to `timeoutMs` for the exit, then kills the whole process group
   * (a Postgres postmaster's backends included). Resolves with the exit and whether force was needed.
   */
  async stop(signal: NodeJS.Signals, timeoutMs: number): Promise<ExitInfo & { forced: boolean }> {
    if (this.exitInfo) return { ...this.exitInfo, forced: false };
    this.signal(signal);
    const graceful = await waitAtMost(this.exited, timeoutMs);
    if (graceful) return { ...graceful, forced: false };
    this.killGroup();
    const killed = await waitAtMost(this.exited, KILL_WAIT_MS);
    return { ...(killed ?? { code: null, signal: 'SIGKILL' }), forced: true };
  }

  /** Synchronous last resort, safe inside a process 'exit' handler. */
  killGroup(): void {
    if (this.exitInfo || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.signal('SIGKILL');
    }
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already gone: the 'exit' event settles `exited`.
    }
  }

  private follow(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (line) => {
      this.tail.push(line);
      if (this.tail.length > TAIL_LINES_MAX) this.tail.shift();
      if (this.options.echo(line)) echoLine(this.options.name, line, this.options.format, name);
    });
  }
}

/** Kills every child still running; for the launcher's own 'exit' handler. */
export function killAllChildren(): void {
  for (const child of running) child.killGroup();
}

export function describeExit(exit: ExitInfo): string {
  if (exit.error) return `could not start: ${exit.error.message}`;
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exit code ${exit.code}`;
}

/**
 * Polls `probe` until the server it started answers, for at most `timeoutMs`; gives up at once
 * if the server exits. The error names the server and shows its last lines.
 */
export async function waitUntilServerAnswers(
  what: string,
  server: ManagedProcess,
  probe: () => Promise<{ kind: string; detail?: string }>,
  timeoutMs: number,
  pollMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!server.isRunning) break;
    const answer = await probe();
    if (answer.kind === 'ok') return;
    last = answer.detail ?? '';
    await sleep(pollMs);
  }
  const exit = server.isRunning
    ? `still not answering after ${timeoutMs} ms (${last})`
    : describeExit(await server.exited);
  throw new LaunchError(`${what} did not start: ${exit}\n${server.lastLines(15).join('\n')}`);
}
