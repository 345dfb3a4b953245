import { z } from 'zod';
import { ESCROW_LIMITS } from '@pf/contracts';
import { baseConfigSchema, env } from '@pf/platform';
import type { EscrowPolicy } from './domain/escrow.js';

export const escrowConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3003),
  /** Commission on release, in basis points of the amount (100 = 1%). */
  ESCROW_COMMISSION_BPS: env.int(100, 0, 10_000),
  /** Shortest timeout_hours accepted, in seconds (API.md). Tests lower it to 1. */
  ESCROW_MIN_TIMEOUT_SECONDS: env.int(60, 1, 720 * 3_600),
  /** How often the timeout saga looks for due deadlines (and stuck holds and settlements). */
  ESCROW_SWEEP_INTERVAL_MS: env.int(1_000, 50, 60_000),
  /** Deadlines expired per sweep transaction. */
  ESCROW_SWEEP_BATCH_SIZE: env.int(200, 1, 5_000),
  /**
   * Sweep transactions run side by side (SKIP LOCKED keeps them apart); capped at
   * DB_POOL_MAX - 1 so that commands keep a connection during a burst of deadlines.
   */
  ESCROW_SWEEP_WORKERS: env.int(4, 1, 16),
  /**
   * An escrow still `opened` (hold outcome not recorded) this long after it was opened is
   * finished by the recovery sweep. Longer than the hold's own timeout, so it never races a
   * create that is still waiting for casino.
   */
  ESCROW_RECOVERY_AFTER_MS: env.int(5_000, 500, 600_000),
  /** Casino commands sent at once by the settlement and recovery sweeps. */
  ESCROW_SETTLE_CONCURRENCY: env.int(16, 1, 256),
  /**
   * Group commit of escrow commands (ADR 0021): batches committing at once, 0 = off (one
   * transaction per command). Off by default: commands on one escrow serialize on its row and
   * the pipeline spends two savepoint round trips per batched command.
   */
  ESCROW_GROUP_COMMIT_BATCHES: env.int(0, 0, 16),
});
export type EscrowConfig = z.infer<typeof escrowConfigSchema>;

export function sweepWorkers(config: EscrowConfig): number {
  return Math.max(1, Math.min(config.ESCROW_SWEEP_WORKERS, config.DB_POOL_MAX - 1));
}

export function escrowPolicy(config: EscrowConfig): EscrowPolicy {
  return {
    commissionBps: config.ESCROW_COMMISSION_BPS,
    minTimeoutMs: config.ESCROW_MIN_TIMEOUT_SECONDS * 1_000,
    maxTimeoutMs: ESCROW_LIMITS.maxTimeoutMs,
    minAmountMicros: ESCROW_LIMITS.minAmountMicros,
  };
}
