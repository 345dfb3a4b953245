import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { REQUEST_ID_HEADER, runWithRequestId, saneRequestId } from '@pf/messaging';

/** Routes polled by orchestrators every few seconds: their lines go to debug, not to the terminal. */
const PROBE_ROUTE_PREFIX = '/health';

const REQUEST_ID = Symbol('requestId');

interface TracedRequest extends FastifyRequest {
  [REQUEST_ID]?: string;
  /** Set by AgentAuthGuard once the caller's key is checked. */
  agentId?: string;
}

/** The fields of one access line: what was asked and how it went, never a key, a query or a body. */
export interface AccessLine {
  method: string;
  route: string | null;
  status: number;
  latency_ms: number;
  agent_id?: string;
}

/** The id a request is known by: the caller's `X-Request-Id` if it is sane, else a new one. */
export function requestIdFor(header: unknown): string {
  return saneRequestId(header) ?? randomUUID();
}

export function accessLineOf(request: TracedRequest, reply: FastifyReply): AccessLine {
  return {
    method: request.method,
    // The route template (`/escrow/release/:id`), not the URL: no ids or query strings to leak,
    // and lines of one route group together. Unmatched URLs (404s) have none.
    route: request.routeOptions.url ?? null,
    status: reply.statusCode,
    latency_ms: Math.round(reply.elapsedTime * 100) / 100,
    ...(request.agentId ? { agent_id: request.agentId } : {}),
  };
}

/**
 * Gives every request an id (answered in `X-Request-Id`, carried by every command sent over
 * NATS while handling it, see libs/messaging request-context) and writes one access line per
 * request at info when the answer is sent. Installed first, so requests refused by the rate
 * limiter or the input guard are counted too.
 */
export function installAccessLog(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onRequest', (request: TracedRequest, reply: FastifyReply, done: () => void) => {
    const requestId = requestIdFor(request.headers[REQUEST_ID_HEADER.toLowerCase()]);
    request[REQUEST_ID] = requestId;
    void reply.header(REQUEST_ID_HEADER, requestId);
    // Everything after this hook (guards, handlers, commands sent) runs inside the id.
    runWithRequestId(requestId, done);
  });
  fastify.addHook('onResponse', async (request: TracedRequest, reply: FastifyReply) => {
    const line = accessLineOf(request, reply);
    const requestId = request[REQUEST_ID];
    const write = () =>
      line.route?.startsWith(PROBE_ROUTE_PREFIX)
        ? logger.debug(line, 'request')
        : logger.info(line, 'request');
    if (requestId) runWithRequestId(requestId, write);
    else write();
  });
}
