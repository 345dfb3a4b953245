import { z } from 'zod';
import { ESCROW_LIMITS } from '@pf/contracts';
import { baseConfigSchema, env } from '@pf/platform';
import type { JobPolicy } from './domain/job.js';

export const marketConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3004),
  /** How often the sweeper closes due bid windows, finishes stuck awards and sends owed escrow commands. */
  MARKET_SWEEP_INTERVAL_MS: env.int(500, 50, 60_000),
  /** Due bid windows closed per sweep transaction. */
  MARKET_SWEEP_BATCH_SIZE: env.int(100, 1, 5_000),
  /**
   * An award still `awarding` this long after it started (the market died between creating
   * the escrows and recording them) is finished by the sweeper with the same escrow ids.
   */
  MARKET_AWARD_RECOVERY_AFTER_MS: env.int(10_000, 500, 600_000),
  /** How long the market waits for escrow's answer to one create, release or cancel. */
  MARKET_ESCROW_TIMEOUT_MS: env.int(8_000, 500, 60_000),
  /**
   * Group commit of job commands (the CommandPipeline's option, ADR 0021): how many batches may
   * commit at once; commands arriving meanwhile are decided together in the next. 0 (default)
   * runs one transaction per command.
   */
  MARKET_GROUP_COMMIT_BATCHES: env.int(0, 0, 16),
  /** Largest job budget, in whole USD. */
  MARKET_MAX_BUDGET_USD: env.int(1_000_000, 1, 1_000_000_000),
  /** Shortest timeout_hours accepted, in seconds; keep it equal to escrow's ESCROW_MIN_TIMEOUT_SECONDS. */
  MARKET_MIN_TIMEOUT_SECONDS: env.int(60, 1, 720 * 3_600),
  /**
   * Fault injection for the crash tests only: `after_escrows` kills the process (SIGKILL) right
   * after an award's escrows are created and before the award is recorded. Never set in production.
   */
  MARKET_FAULT: z.enum(['none', 'after_escrows']).default('none'),
});
export type MarketConfig = z.infer<typeof marketConfigSchema>;

export function jobPolicy(config: MarketConfig): JobPolicy {
  return {
    minTimeoutMs: config.MARKET_MIN_TIMEOUT_SECONDS * 1_000,
    maxTimeoutMs: ESCROW_LIMITS.maxTimeoutMs,
    maxBudgetMicros: BigInt(config.MARKET_MAX_BUDGET_USD) * 1_000_000n,
  };
}
