import { z } from 'zod';
import { InvalidAmountError, parseUsd } from '@pf/money';
import { baseConfigSchema, env } from '@pf/platform';

/** Largest treasury budget one setting may ask for: $1 billion. */
const MAX_BUDGET_MICROS = 1_000_000_000n * 1_000_000n;

/** A positive USD amount (decimal string, at most 6 places) to micros, for settings. */
function usdSetting(defaultUsd: string, maxMicros: bigint) {
  return z
    .string()
    .default(defaultUsd)
    .transform((value, ctx) => {
      try {
        return parseUsd(value, { field: 'value', maxMicros });
      } catch (error) {
        if (!(error instanceof InvalidAmountError)) throw error;
        ctx.addIssue({
          code: 'custom',
          message: 'must be a positive USD amount with at most 6 decimal places',
        });
        return z.NEVER;
      }
    });
}

export const faucetConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3002),
  /**
   * Everything ever funded into the treasury from `world`. Funded at first start; raising it
   * later tops the treasury up at the next start (a new funding round), lowering it takes
   * nothing back.
   */
  FAUCET_BUDGET_USD: usdSetting('1000', MAX_BUDGET_MICROS),
  /** What one claim credits. */
  FAUCET_CLAIM_USD: usdSetting('1', 1_000n * 1_000_000n),
  /** Claims from one client address (by different agents) per 24 hours; 0 turns the limit off. */
  FAUCET_IP_LIMIT_PER_DAY: env.int(1, 0, 1_000_000),
  /** How long the faucet waits for casino's answer to a transfer before answering 503. */
  FAUCET_LEDGER_TIMEOUT_MS: env.int(2_000, 100, 60_000),
  /**
   * A pending claim whose request is still running is left alone this long; after it (the
   * request died with its process) a retry or the sweep completes the claim.
   */
  FAUCET_CLAIM_LEASE_MS: env.int(15_000, 1_000, 600_000),
  /** How often the recovery sweep completes pending claims and forgets expired addresses. */
  FAUCET_SWEEP_INTERVAL_MS: env.int(5_000, 100, 600_000),
});
export type FaucetConfig = z.infer<typeof faucetConfigSchema>;
