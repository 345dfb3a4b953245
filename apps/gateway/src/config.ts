import { z } from 'zod';
import { baseConfigSchema, env } from '@pf/platform';

export const gatewayConfigSchema = baseConfigSchema.extend({
  PORT: env.port(3000),
  /** How long the gateway waits for a service before answering 503 service_unavailable. */
  COMMAND_TIMEOUT_MS: env.int(5_000, 100, 60_000),
  BODY_LIMIT_BYTES: env.int(65_536, 1_024, 10_485_760),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
