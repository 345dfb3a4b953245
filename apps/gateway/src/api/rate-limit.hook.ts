import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '@pf/contracts';
import { bearerToken } from './auth.guard.js';

/** Buckets remembered at once per limiter; the least recently refilled are dropped first. */
const MAX_BUCKETS = 100_000;

export interface RateLimitSettings {
  /** Requests per minute per client IP; 0 turns the limit off. */
  perIpPerMinute: number;
  /** Requests per minute per API key; 0 turns the limit off. */
  perKeyPerMinute: number;
}

interface Bucket {
  tokens: number;
  refilledAtMs: number;
}

/**
 * A token bucket per key: `capacity` requests at once, refilled at capacity per minute.
 * In memory, per gateway replica: N replicas allow up to N times the rate (documented).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillPerMs: number;

  constructor(private readonly capacity: number) {
    this.refillPerMs = capacity / 60_000;
  }

  /** Takes a token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string, nowMs = Date.now()): number {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: this.capacity, refilledAtMs: nowMs };
    } else {
      this.buckets.delete(key);
      bucket.tokens = Math.min(
        this.capacity,
        bucket.tokens + (nowMs - bucket.refilledAtMs) * this.refillPerMs,
      );
      bucket.refilledAtMs = nowMs;
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.refillPerMs / 1000));
  }
}

/** 429 `rate_limited` with `Retry-After` past the per-IP or per-key rate; health is exempt. */
export function installRateLimits(fastify: FastifyInstance, settings: RateLimitSettings): void {
  const byIp = settings.perIpPerMinute > 0 ? new TokenBuckets(settings.perIpPerMinute) : undefined;
  const byKey = settings.perKeyPerMinute > 0 ? new TokenBuckets(settings.perKeyPerMinute) : undefined;
  if (!byIp && !byKey) return;
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.url.startsWith('/health')) return;
    const ipWaitS = byIp?.take(request.ip) ?? 0;
    const token = bearerToken(request);
    const keyWaitS = token && byKey ? byKey.take(createHash('sha256').update(token).digest('base64')) : 0;
    const waitS = Math.max(ipWaitS, keyWaitS);
    if (waitS === 0) return;
    return reply
      .code(429)
      .header('retry-after', String(waitS))
      .header('content-type', 'application/json; charset=utf-8')
      .send(
        JSON.stringify({ error: ErrorCode.rateLimited, message: `too many requests; retry in ${waitS} s` }),
      );
  });
}
