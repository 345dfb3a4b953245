import { z } from 'zod';
import { InvalidAmountError, parseMicros, parseUsd } from '@pf/money';
import { baseConfigSchema, env } from '@pf/platform';

/** Largest treasury budget one setting may ask for: $1 billion. */
const MAX_BUDGET_MICROS = 1_000_000_000n * 1_000_000n;

/** Largest amount one claim may credit: $1,000. */
const MAX_CLAIM_MICROS = 1_000n * 1_000_000n;
const DEFAULT_BUDGET_MICROS = 1_000n * 1_000_000n;
const DEFAULT_CLAIM_MICROS = 1_000_000n;

/** A positive integer amount of micro-dollars, for settings; unset stays undefined. */
function microsSetting(maxMicros: bigint) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      try {
        const micros = parseMicros(value, 'value');
        if (micros > 0n && micros <= maxMicros) return micros;
      } catch (error) {
        if (!(error instanceof InvalidAmountError)) throw error;
      }
      ctx.addIssue({ code: 'custom', message: `must be an integer of micro-dollars from 1 to ${maxMicros}` });
      return z.NEVER;
    });
}

/**
 * A positive USD amount (decimal string, at most 6 places) to micros, for the deprecated
 * `_USD` settings; unset stays undefined.
 */
function usdSetting(maxMicros: bigint) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
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

export const faucetConfigSchema = baseConfigSchema
  .extend({
    PORT: env.port(3002),
    /**
     * Everything ever funded into the treasury from `world`, in micro-dollars. Funded at first
     * start; raising it later tops the treasury up at the next start (a new funding round),
     * lowering it takes nothing back. Read it through faucetAmounts().
     */
    FAUCET_BUDGET_MICROS: microsSetting(MAX_BUDGET_MICROS),
    /** What one claim credits, in micro-dollars. Read it through faucetAmounts(). */
    FAUCET_CLAIM_MICROS: microsSetting(MAX_CLAIM_MICROS),
    /**
     * Deprecated aliases, in USD (the names once held micros in code while users set dollars):
     * still accepted, so existing deployments keep working; the `_MICROS` setting wins a
     * disagreement only by refusing to start (see below).
     */
    FAUCET_BUDGET_USD: usdSetting(MAX_BUDGET_MICROS),
    FAUCET_CLAIM_USD: usdSetting(MAX_CLAIM_MICROS),
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
  })
  .superRefine((config, ctx) => {
    // Setting both a value and its deprecated alias to different amounts is a mistake to stop
    // at, not to resolve silently.
    for (const [micros, usd] of [
      ['FAUCET_BUDGET_MICROS', 'FAUCET_BUDGET_USD'],
      ['FAUCET_CLAIM_MICROS', 'FAUCET_CLAIM_USD'],
    ] as const) {
      const a = config[micros];
      const b = config[usd];
      if (a !== undefined && b !== undefined && a !== b)
        ctx.addIssue({
          code: 'custom',
          path: [usd],
          message: `disagrees with ${micros} (${usd} is its deprecated alias)`,
        });
    }
  });
export type FaucetConfig = z.infer<typeof faucetConfigSchema>;

export interface FaucetAmounts {
  budgetMicros: bigint;
  claimMicros: bigint;
}

/** The treasury budget and the claim amount: the `_MICROS` setting, else its deprecated `_USD` alias, else the default. */
export function faucetAmounts(config: FaucetConfig): FaucetAmounts {
  return {
    budgetMicros: config.FAUCET_BUDGET_MICROS ?? config.FAUCET_BUDGET_USD ?? DEFAULT_BUDGET_MICROS,
    claimMicros: config.FAUCET_CLAIM_MICROS ?? config.FAUCET_CLAIM_USD ?? DEFAULT_CLAIM_MICROS,
  };
}
