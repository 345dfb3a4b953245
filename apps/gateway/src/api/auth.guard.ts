import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import {
  API_KEY_PATTERN,
  apiKeySha256,
  casinoCommands,
  DomainError,
  ErrorCode,
  mandateErrors,
  type AuthenticatedKey,
  type AuthenticateReply,
} from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import type { GatewayConfig } from '../config.js';

export interface AuthenticatedRequest extends FastifyRequest {
  agentId?: string;
  /** Set when the request was made with a sub-key (ADR 0019); absent for the agent's main key. */
  subKey?: AuthenticatedKey;
}

interface CachedKey {
  agentId: string;
  subKey?: AuthenticatedKey;
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
    const caller = await this.authenticateKey(bearerToken(request));
    request.agentId = caller.agentId;
    if (caller.subKey) request.subKey = caller.subKey;
    return true;
  }

  async authenticate(apiKey: string | undefined): Promise<string> {
    return (await this.authenticateKey(apiKey)).agentId;
  }

  /**
   * The agent and, for a sub-key, its gateway-side mandate. A revoked sub-key keeps working here
   * at most AUTH_CACHE_TTL_MS (casino refuses its money moves at once); an expired one is refused
   * from the cache too.
   */
  async authenticateKey(apiKey: string | undefined): Promise<{ agentId: string; subKey?: AuthenticatedKey }> {
    if (!apiKey)
      throw new DomainError(ErrorCode.unauthorized, 'missing API key: send Authorization: Bearer <api_key>');
    if (!API_KEY_PATTERN.test(apiKey)) throw new DomainError(ErrorCode.unauthorized, 'unknown API key');
    const nowMs = Date.now();
    const keySha256 = apiKeySha256(apiKey);
    const cached = this.cache.get(keySha256);
    if (cached && cached.expiresAtMs > nowMs) return expiryChecked(cached, nowMs);
    const reply = await this.commands.request<AuthenticateReply>(casinoCommands.authenticate, {
      apiKeySha256: keySha256,
    });
    if (this.cache.size >= AUTH_CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    const entry: CachedKey = {
      agentId: reply.agentId,
      ...(reply.key ? { subKey: reply.key } : {}),
      expiresAtMs: nowMs + this.config.AUTH_CACHE_TTL_MS,
    };
    this.cache.set(keySha256, entry);
    return expiryChecked(entry, nowMs);
  }
}

function expiryChecked(entry: CachedKey, nowMs: number): { agentId: string; subKey?: AuthenticatedKey } {
  if (entry.subKey && Date.parse(entry.subKey.expiresAt) <= nowMs)
    throw new DomainError(mandateErrors.keyExpired, 'this API key has expired');
  return entry.subKey ? { agentId: entry.agentId, subKey: entry.subKey } : { agentId: entry.agentId };
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
