import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '@pf/contracts';

const READ_METHODS = new Set(['GET', 'HEAD']);
/** Headers a cross-origin read may send: the key (reads of one's own balance) and SSE resume. */
const ALLOWED_READ_HEADERS = 'authorization, last-event-id';
/** Browsers may cache a preflight answer this long. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS, open for reads only (docs/adr/0006-gateway-surface.md):
 * - every GET/HEAD answer carries `Access-Control-Allow-Origin: *`, so a dashboard on any origin
 *   can show escrow status, stats or the OpenAPI document;
 * - a preflight for GET/HEAD is answered 204 with the allowed headers;
 * - a preflight for a write is refused (403 `forbidden`): writes stay closed to browser pages,
 *   because a page that can write must hold an API key, and a key in a page is a key anyone can
 *   read. Server-side agents do not use CORS at all, so nothing they do changes.
 * No cookies are ever used, so `*` never exposes a credential the browser holds.
 */
export function installCors(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (READ_METHODS.has(request.method)) {
      void reply.header('access-control-allow-origin', '*');
      return;
    }
    if (request.method !== 'OPTIONS') return;
    const wanted = request.headers['access-control-request-method'];
    if (typeof wanted !== 'string') {
      // A plain OPTIONS (no preflight): say what the API speaks.
      return reply.code(204).header('allow', 'GET, HEAD, POST, OPTIONS').send();
    }
    if (READ_METHODS.has(wanted.toUpperCase())) {
      return reply
        .code(204)
        .header('access-control-allow-origin', '*')
        .header('access-control-allow-methods', 'GET, HEAD')
        .header('access-control-allow-headers', ALLOWED_READ_HEADERS)
        .header('access-control-max-age', String(PREFLIGHT_MAX_AGE_S))
        .send();
    }
    return reply
      .code(403)
      .header('content-type', 'application/json; charset=utf-8')
      .send(
        JSON.stringify({
          error: ErrorCode.forbidden,
          message: 'cross-origin requests may only read (GET, HEAD); call writes from a server',
        }),
      );
  });
}
