import type { Logger } from 'pino';

/** What a step asks for next: run again after this many milliseconds, or stop for good. */
export type NextStep = { againInMs: number } | 'done';

/**
 * A loop in the background of the service: runs `step`, sleeps as long as the step asks,
 * repeats until the step says done or the service stops. `stop()` wakes a sleeping loop and
 * waits for the step in progress, so nothing runs after the connections close.
 */
export class BackgroundTask {
  private stopping = false;
  private running?: Promise<void>;
  private wakeSleeper?: () => void;

  constructor(
    private readonly name: string,
    private readonly logger: Logger,
    private readonly step: () => Promise<NextStep>,
    /** Pause after a step threw (steps should handle their own errors; this is the backstop). */
    private readonly errorBackoffMs = 5_000,
  ) {}

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeSleeper?.();
    await this.running;
    this.running = undefined;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let next: NextStep;
      try {
        next = await this.step();
      } catch (error) {
        this.logger.error({ err: error, task: this.name }, 'background task failed');
        next = { againInMs: this.errorBackoffMs };
      }
      if (next === 'done') return;
      await this.sleep(next.againInMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleeper = done;
    });
  }
}
