import type { EventStore } from './event-store.js';

/**
 * A background loop that commits in this process wake at once (and a poll wakes otherwise):
 * the shape the outbox relay and the async projection runner share. Subclasses write `loop()`
 * using `stopping`, `wakeRequested` and `sleep()`; `stop()` lets the pass in progress finish.
 */
export abstract class CommitDrivenLoop {
  protected stopping = false;
  protected wakeRequested = false;
  private running?: Promise<void>;
  private wakeSleeper?: () => void;
  private unsubscribe?: () => void;

  protected constructor(private readonly committedBy: EventStore) {}

  /** Starts the loop in the background; `stop()` ends it. */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.unsubscribe = this.committedBy.onCommitted(() => this.wake());
    this.running = this.loop();
  }

  /** Finishes the pass in progress and stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    this.wake();
    await this.running;
    this.running = undefined;
  }

  /** Makes an idle loop look now instead of at the next poll. */
  wake(): void {
    this.wakeRequested = true;
    this.wakeSleeper?.();
  }

  protected abstract loop(): Promise<void>;

  /** Sleeps for `ms`, or until woken or stopped. */
  protected sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleeper = () => {
        this.wakeSleeper = undefined;
        done();
      };
    });
  }
}
