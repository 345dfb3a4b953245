import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ErrorCode, type ErrorBody } from '@pf/contracts';
import type { IdempotencyStore } from '../infrastructure/idempotency.store.js';
import { bearerToken } from './auth.guard.js';

const MAX_KEY_LENGTH = 255;
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface IdempotentRequest extends FastifyRequest {
  idempotency?: { scope: Buffer; key: string };
}

/**
 * `Idempotency-Key` on writes (API.md, "Conventions"): scoped to the caller's API key, the same
 * key with the same request returns the first response (status and body) without doing the
 * work again; with a different request → 422; while the first is still running → 409.
 * A 5xx is not kept: the request may be retried with the same key, and because commands carry
 * ids derived from the key (or their own), the retry cannot apply twice.
 */
export function installIdempotency(fastify: FastifyInstance, store: IdempotencyStore, logger: Logger): void {
  fastify.addHook('preHandler', async (request: IdempotentRequest, reply: FastifyReply) => {
    // MCP answers on the raw socket (the reply is hijacked, onSend never runs): its tools inject
    // the HTTP routes, which carry their own idempotency; a key on /mcp itself is ignored.
    // A stream token is a secret and issuing one changes nothing: never recorded, always fresh.
    if (
      !WRITE_METHODS.has(request.method) ||
      request.url.startsWith('/mcp') ||
      request.url.startsWith('/escrow/events/stream-token')
    )
      return;
    const header = request.headers['idempotency-key'];
    if (header === undefined) return;
    const key = Array.isArray(header) ? header[0]! : header;
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
      return sendError(reply, 400, {
        error: ErrorCode.invalidRequest,
        message: `Idempotency-Key must have 1 to ${MAX_KEY_LENGTH} characters`,
      });
    }
    const scope = sha256(`key:${bearerToken(request) ?? 'anonymous'}`);
    const claim = await store.claim(scope, key, requestHash(request));
    switch (claim.outcome) {
      case 'claimed':
        request.idempotency = { scope, key };
        return;
      case 'replay':
        return reply
          .code(claim.status)
          .header('content-type', 'application/json; charset=utf-8')
          .header('idempotent-replayed', 'true')
          .send(claim.body);
      case 'in_progress':
        return sendError(reply, 409, {
          error: ErrorCode.requestInProgress,
          message: 'a request with this Idempotency-Key is still being processed; retry shortly',
        });
      case 'reused':
        return sendError(reply, 422, {
          error: ErrorCode.idempotencyKeyReused,
          message: 'this Idempotency-Key was used with a different request',
        });
    }
  });

  fastify.addHook('onSend', async (request: IdempotentRequest, reply: FastifyReply, payload: unknown) => {
    const claimed = request.idempotency;
    if (!claimed) return payload;
    request.idempotency = undefined;
    try {
      if (reply.statusCode >= 500) await store.release(claimed.scope, claimed.key);
      else
        await store.complete(
          claimed.scope,
          claimed.key,
          reply.statusCode,
          typeof payload === 'string' ? payload : JSON.stringify(payload ?? null),
        );
    } catch (error) {
      // The response still goes out; the key stays in progress until its lease ends.
      logger.error({ err: error }, 'failed to record an idempotent response');
    }
    return payload;
  });
}

function requestHash(request: FastifyRequest): Buffer {
  return sha256(`${request.method} ${request.url}\n${canonicalJson(request.body ?? {})}`);
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function sendError(reply: FastifyReply, status: number, body: ErrorBody): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(body));
}
