import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import {
  API_KEY_PATTERN,
  apiKeySha256,
  casinoCommands,
  DomainError,
  ErrorCode,
  type AuthenticateReply,
} from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';

export interface AuthenticatedRequest extends FastifyRequest {
  agentId?: string;
}

interface CachedKey {
  agentId: string;
  expiresAtMs: number;
}

/** Most keys remembered at once; the oldest are dropped first. */
const AUTH_CACHE_MAX_ENTRIES = 10_000;

/**
 * `Authorization: Bearer sk_live_…` → the agent, by asking casino. Answers are cached for
 * AUTH_CACHE_TTL_MS so a hot agent does not cost a NATS round trip per request, and so a
 * revoked key stops working within that many milliseconds. Only the key's SHA-256 goes to casino
 * and into the cache: the key itself never crosses the bus (ADR 0010).
 */
@Injectable()
export class AgentAuthGuard implements CanActivate {
  private readonly cache = new Map<string, CachedKey>();

  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    request.agentId = await this.authenticate(bearerToken(request));
    return true;
  }

  async authenticate(apiKey: string | undefined): Promise<string> {
    if (!apiKey)
      throw new DomainError(ErrorCode.unauthorized, 'missing API key: send Authorization: Bearer <api_key>');
    if (!API_KEY_PATTERN.test(apiKey)) throw new DomainError(ErrorCode.unauthorized, 'unknown API key');
    const nowMs = Date.now();
    const keySha256 = apiKeySha256(apiKey);
    const cached = this.cache.get(keySha256);
    if (cached && cached.expiresAtMs > nowMs) return cached.agentId;
    const reply = await this.commands.request<AuthenticateReply>(casinoCommands.authenticate, {
      apiKeySha256: keySha256,
    });
    if (this.cache.size >= AUTH_CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(keySha256, { agentId: reply.agentId, expiresAtMs: nowMs + this.config.AUTH_CACHE_TTL_MS });
    return reply.agentId;
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
