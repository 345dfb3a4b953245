import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { API_KEY_PATTERN, ErrorCode, type ErrorBody } from '@pf/contracts';
import { IdempotencySeal, idempotencyScope } from '../infrastructure/idempotency-seal.js';
import type { IdempotencyStore } from '../infrastructure/idempotency.store.js';
import { bearerToken } from './auth.guard.js';

const MAX_KEY_LENGTH = 255;
/** Anonymous keys (ADR 0009): a UUID (36 characters, ≥ 122 random bits) passes, "retry-1" does not. */
export const ANONYMOUS_KEY_MIN_LENGTH = 32;
/** Refuses long but trivial keys ("aaaa…", "0000…"); a random UUID has ~14 distinct characters. */
export const ANONYMOUS_KEY_MIN_DISTINCT_CHARS = 8;
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface IdempotentRequest extends FastifyRequest {
  idempotency?: IdempotencySeal;
}

export interface IdempotencyOptions {
  /** The operator key: its requests are scoped to it like an agent's. */
  adminApiKey?: string;
}

/**
 * `Idempotency-Key` on writes (API.md, "Conventions"): scoped to the caller's API key, the same
 * key with the same request returns the first response (status and body) without doing the
 * work again; with a different request → 422; while the first is still running → 409.
 * A 5xx is not kept: the request may be retried with the same key, and because commands carry
 * ids derived from the key (or their own), the retry cannot apply twice.
 *
 * Requests without an API key share one scope, so there the key alone guards the response
 * (ADR 0009): it must be long and varied enough that nobody else could guess it.
 */
export function installIdempotency(
  fastify: FastifyInstance,
  store: IdempotencyStore,
  logger: Logger,
  options: IdempotencyOptions = {},
): void {
  const isAdminKey = adminKeyMatcher(options.adminApiKey);
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
    const credential = scopeCredential(bearerToken(request), isAdminKey);
    if (credential === undefined && isGuessable(key)) {
      return sendError(reply, 400, {
        error: ErrorCode.weakIdempotencyKey,
        message: `without an API key, Idempotency-Key must have at least ${ANONYMOUS_KEY_MIN_LENGTH} characters, ${ANONYMOUS_KEY_MIN_DISTINCT_CHARS} of them different`,
        suggestion: 'send a random UUID (crypto.randomUUID(), uuid.uuid4()) as the Idempotency-Key',
      });
    }
    const seal = new IdempotencySeal(idempotencyScope(credential), key);
    const claim = await store.claim(seal, seal.requestDigest(canonicalRequest(request)));
    switch (claim.outcome) {
      case 'claimed':
        request.idempotency = seal;
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
    const seal = request.idempotency;
    if (!seal) return payload;
    request.idempotency = undefined;
    try {
      if (reply.statusCode >= 500) await store.release(seal);
      else
        await store.complete(seal, {
          status: reply.statusCode,
          body: typeof payload === 'string' ? payload : JSON.stringify(payload ?? null),
        });
    } catch (error) {
      // The response still goes out; the key stays in progress until its lease ends.
      logger.error({ err: error }, 'failed to record an idempotent response');
    }
    return payload;
  });
}

/**
 * Whose scope a request's key lives in: an agent's API key or the operator key. Any other bearer
 * token ("Bearer undefined" from a client that has not registered yet) could be shared by
 * strangers, so it counts as anonymous.
 */
function scopeCredential(
  token: string | undefined,
  isAdminKey: (token: string) => boolean,
): string | undefined {
  if (token === undefined) return undefined;
  return API_KEY_PATTERN.test(token) || isAdminKey(token) ? token : undefined;
}

function adminKeyMatcher(adminApiKey: string | undefined): (token: string) => boolean {
  if (!adminApiKey) return () => false;
  const expected = sha256(adminApiKey);
  return (token) => timingSafeEqual(sha256(token), expected);
}

/** The anonymous key rule (README, "Conventions"). */
export function isGuessable(key: string): boolean {
  return key.length < ANONYMOUS_KEY_MIN_LENGTH || new Set(key).size < ANONYMOUS_KEY_MIN_DISTINCT_CHARS;
}

function canonicalRequest(request: FastifyRequest): string {
  return `${request.method} ${request.url}\n${canonicalJson(request.body ?? {})}`;
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
