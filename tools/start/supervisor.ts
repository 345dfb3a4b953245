import { describeExit, type ExitInfo, type ManagedProcess } from './children.js';
import { complain, say } from './log.js';

export type StopReason =
  | { kind: 'signal'; signal: NodeJS.Signals }
  /** The process that started the launcher (npm, its shell) is gone: nobody is left to stop us. */
  | { kind: 'orphaned'; detail: string }
  | { kind: 'exited'; name: string; exit: ExitInfo; lastLines: string[] }
  | { kind: 'failed'; error: Error };

/** Thrown out of a startup step when a stop was requested while it ran. */
export class StopRequested extends Error {
  constructor(readonly reason: StopReason) {
    super(`stop requested (${reason.kind})`);
    this.name = 'StopRequested';
  }
}

/** Apps get their own SHUTDOWN_TIMEOUT_MS (10 s by default) plus a margin before SIGKILL. */
export const APP_STOP_TIMEOUT_MS = 15_000;

interface Server {
  process: ManagedProcess;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
}

/**
 * Owns everything the launcher started and the one decision to stop: a signal, a child that
 * died, or a failed step all end in `stopped`, and `shutdown` undoes the start in reverse:
 * apps (and running migrations) first, then the servers, last started first.
 * Servers the launcher did not start are never adopted, so never stopped.
 */
export class Supervisor {
  readonly stopped: Promise<StopReason>;
  private readonly apps: ManagedProcess[] = [];
  private readonly tasks: ManagedProcess[] = [];
  private readonly servers: Server[] = [];
  private readonly controller = new AbortController();
  private reason?: StopReason;
  private resolveStopped!: (reason: StopReason) => void;

  constructor() {
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
  }

  /** Aborts when a stop is requested, so polling loops end at once. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopReason(): StopReason | undefined {
    return this.reason;
  }

  /** The first reason wins; later ones are ignored (returns false). */
  requestStop(reason: StopReason): boolean {
    if (this.reason) return false;
    this.reason = reason;
    this.resolveStopped(reason);
    this.controller.abort();
    return true;
  }

  /** Awaits `work` unless a stop comes first, in which case it throws `StopRequested`. */
  async step<T>(work: Promise<T>): Promise<T> {
    if (this.reason) throw new StopRequested(this.reason);
    const stop = this.stopped.then((reason) => {
      throw new StopRequested(reason);
    });
    return Promise.race([work, stop]);
  }

  /** A long-running app: its unexpected exit stops everything. */
  adoptApp(process: ManagedProcess): void {
    this.apps.push(process);
    // Its output was printed as it came; repeating the tail would only add noise.
    this.watch(process, 0);
  }

  /** A short-lived child (a migration run): the caller checks its exit; a stop ends it. */
  adoptTask(process: ManagedProcess): void {
    this.tasks.push(process);
  }

  /** A server the launcher started (embedded Postgres, nats-server): stopped after the apps. */
  adoptServer(process: ManagedProcess, stopSignal: NodeJS.Signals, stopTimeoutMs: number): void {
    this.servers.push({ process, stopSignal, stopTimeoutMs });
    // Servers print only warnings as they run, so their last lines explain a crash.
    this.watch(process, 20);
  }

  /** Stops everything adopted, in order, each wait bounded. Safe to call once per run. */
  async shutdown(): Promise<void> {
    const children = [...this.apps, ...this.tasks].filter((child) => child.isRunning);
    if (children.length > 0) {
      say(`stopping ${children.map((child) => child.name).join(', ')}`);
      const exits = await Promise.all(children.map((child) => child.stop('SIGTERM', APP_STOP_TIMEOUT_MS)));
      exits.forEach((exit, index) => {
        if (exit.forced)
          complain(`${children[index]!.name} did not stop within ${APP_STOP_TIMEOUT_MS} ms: killed`);
      });
    }
    for (const server of [...this.servers].reverse()) {
      if (!server.process.isRunning) continue;
      say(`stopping ${server.process.name}`);
      const exit = await server.process.stop(server.stopSignal, server.stopTimeoutMs);
      if (exit.forced)
        complain(`${server.process.name} did not stop within ${server.stopTimeoutMs} ms: killed`);
    }
  }

  private watch(process: ManagedProcess, reportLines: number): void {
    void process.exited.then((exit) => {
      this.requestStop({
        kind: 'exited',
        name: process.name,
        exit,
        lastLines: reportLines > 0 ? process.lastLines(reportLines) : [],
      });
    });
  }
}

export function describeStop(reason: StopReason): string {
  switch (reason.kind) {
    case 'signal':
      return `${reason.signal} received`;
    case 'orphaned':
      return reason.detail;
    case 'exited':
      return `${reason.name} exited unexpectedly (${describeExit(reason.exit)})`;
    case 'failed':
      return reason.error.message;
  }
}

/** A stop from outside (a signal, the parent's exit) rather than a failure: exit code 0. */
export function isRequestedStop(reason: StopReason): boolean {
  return reason.kind === 'signal' || reason.kind === 'orphaned';
}
