import { freePort, spawnService, type AppName, type ServiceProcess } from '@pf/testing';

/** How long a killed app stays down before the supervisor starts it again. */
const RESTART_DELAY_MS = 500;
const READY_TIMEOUT_MS = 60_000;

interface Slot {
  app: AppName;
  replica: number;
  port: number;
  process?: ServiceProcess;
  /** Answered /health since its last start: only those are killed, or kills would outpace restarts. */
  ready: boolean;
  restarts: number;
}

/**
 * Runs `replicas` copies of each app as child processes, as a process manager would: an app
 * that dies (the chaos kills them) is started again on the same port after a short pause.
 * Keeps the last lines of each app's output for the report.
 */
export class AppSupervisor {
  private readonly slots: Slot[] = [];
  private stopping = false;
  readonly tails: string[] = [];

  constructor(
    private readonly env: Record<string, string>,
    private readonly apps: readonly AppName[],
    private readonly replicas: number,
  ) {}

  async start(): Promise<void> {
    for (const app of this.apps) {
      for (let replica = 0; replica < this.replicas; replica += 1)
        this.slots.push({ app, replica, port: await freePort(), ready: false, restarts: 0 });
    }
    await Promise.all(this.slots.map((slot) => this.launch(slot)));
    await Promise.all(this.slots.map((slot) => slot.process!.waitUntilReady(READY_TIMEOUT_MS)));
  }

  urls(app: AppName): string[] {
    return this.slots.filter((slot) => slot.app === app).map((slot) => `http://127.0.0.1:${slot.port}`);
  }

  pids(): number[] {
    return this.slots
      .map((slot) => slot.process?.child.pid)
      .filter((pid): pid is number => pid !== undefined);
  }

  get restarts(): number {
    return this.slots.reduce((sum, slot) => sum + slot.restarts, 0);
  }

  private launch(slot: Slot): Promise<void> {
    return spawnService(slot.app, { env: { ...this.env, LOG_LEVEL: 'warn' }, port: slot.port }).then(
      (process) => {
        slot.process = process;
        if (this.stopping) {
          void process.kill();
          return;
        }
        void process.exited.then(({ signal, code }) => {
          this.keepTail(slot, process, signal ?? code);
          if (this.stopping) return;
          slot.restarts += 1;
          setTimeout(() => {
            if (!this.stopping) void this.launch(slot);
          }, RESTART_DELAY_MS);
        });
      },
    );
  }

  private keepTail(slot: Slot, process: ServiceProcess, how: string | number | null): void {
    const errors = process.output.filter(
      (line) => line.includes('"level":"error"') || line.includes('"level":"fatal"'),
    );
    if (errors.length > 0)
      this.tails.push(`${slot.app}#${slot.replica} (exit ${how}): ${errors.slice(-3).join('\n')}`);
    if (this.tails.length > 50) this.tails.splice(0, this.tails.length - 50);
  }

  /** SIGKILLs one ready app chosen at random; returns its name, or undefined if none is ready. */
  async killRandom(random: () => number): Promise<string | undefined> {
    const running = this.slots.filter(
      (slot) =>
        slot.process && slot.process.child.exitCode === null && slot.process.child.signalCode === null,
    );
    if (running.length === 0) return undefined;
    const slot = running[Math.floor(random() * running.length)]!;
    slot.ready = false;
    await slot.process!.kill();
    return `${slot.app}#${slot.replica}`;
  }

  /** Waits until every app answers /health again (after the faults stop). */
  async waitAllReady(): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        const deadline = Date.now() + READY_TIMEOUT_MS;
        while (Date.now() < deadline) {
          const ok = await fetch(`http://127.0.0.1:${slot.port}/health`)
            .then((response) => response.status === 200)
            .catch(() => false);
          if (ok) return;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        throw new Error(
          `${slot.app}#${slot.replica} is not ready ${READY_TIMEOUT_MS} ms after the faults stopped`,
        );
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map((slot) => slot.process?.stop()));
  }
}
