import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * Every JSON answer ends with a newline, as text on a terminal should: `curl` output otherwise
 * runs into the shell's prompt. JSON parsers ignore the trailing whitespace; idempotent
 * replays keep it (a stored body that already ends with one is sent as is).
 */
export function installJsonNewline(fastify: FastifyInstance): void {
  fastify.addHook('onSend', async (_request, reply: FastifyReply, payload: unknown) => {
    if (typeof payload !== 'string' || payload.endsWith('\n')) return payload;
    const type = reply.getHeader('content-type');
    return typeof type === 'string' && type.startsWith('application/json') ? `${payload}\n` : payload;
  });
}
