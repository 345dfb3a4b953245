import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * Every JSON answer ends with a newline, as text on a terminal should: `curl` output otherwise
 * runs into the shell's prompt. JSON parsers ignore the trailing whitespace; idempotent
 * replays keep it (a stored body that already ends with one is sent as is).
 */
export function installJsonNewline(fastify: FastifyInstance): void {
  // A plain hook, not an async one: no promise per response.
  fastify.addHook(
    'onSend',
    (_request, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => {
      if (typeof payload !== 'string' || payload.endsWith('\n')) return done(null, payload);
      const type = reply.getHeader('content-type');
      done(null, typeof type === 'string' && type.startsWith('application/json') ? `${payload}\n` : payload);
    },
  );
}
