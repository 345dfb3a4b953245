import { z } from 'zod';
import { baseConfigSchema, env } from '@pf/platform';

export const escrowConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3003),
});
export type EscrowConfig = z.infer<typeof escrowConfigSchema>;
