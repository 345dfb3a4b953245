import type { Logger } from 'pino';

/**
 * Retries `attempt` with capped exponential backoff until it succeeds or `deadlineMs` has
 * passed; then rethrows the last error. Bounded in time, as every wait must be.
 */
export async function retryUntil<T>(
  what: string,
  deadlineMs: number,
  logger: Logger,
  attempt: () => Promise<T>,
): Promise<T> {
  const startedAt = Date.now();
  let delayMs = 100;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      const elapsedMs = Date.now() - startedAt;
      if (elapsedMs + delayMs > deadlineMs) throw error;
      logger.warn(
        { err: (error as Error).message, retryInMs: delayMs },
        `${what} not reachable yet, retrying`,
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 2_000);
    }
  }
}
