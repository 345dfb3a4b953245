import { z } from 'zod';
import { baseConfigSchema, env } from '@pf/platform';

export const casinoConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3001),
  /**
   * Ledger batches committing at once, each on its own connection (at most DB_POOL_MAX - 1).
   * One measured best on 2 cores: commands wait a moment longer but share bigger batches.
   */
  LEDGER_BATCHES_IN_FLIGHT: env.int(1, 1, 16),
});
export type CasinoConfig = z.infer<typeof casinoConfigSchema>;
