import { z } from 'zod';

/** Reply envelope of every command over NATS request/reply. */
export type CommandReply<T> =
  | { ok: true; data: T }
  | { ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

export const pingReplySchema = z.object({
  service: z.string(),
  version: z.string(),
  instance: z.string(),
  uptimeMs: z.number().int().nonnegative(),
});
export type PingReply = z.infer<typeof pingReplySchema>;
