import { z } from 'zod';
import { baseConfigSchema, env } from '@pf/platform';

export const faucetConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3002),
});
export type FaucetConfig = z.infer<typeof faucetConfigSchema>;
