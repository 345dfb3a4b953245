import { z } from 'zod';
import { baseConfigSchema, env } from '@pf/platform';

export const casinoConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3001),
});
export type CasinoConfig = z.infer<typeof casinoConfigSchema>;
