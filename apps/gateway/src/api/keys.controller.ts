import { randomBytes } from 'node:crypto';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  DomainError,
  KEY_ID_PATTERN,
  MANDATE_ACTIONS,
  MANDATE_LIMITS,
  mandateCommands,
  mandateErrors,
  newApiKey,
  type KeyListReply,
  type KeyView,
  type MandateAction,
} from '@pf/contracts';
import { COMMAND_CLIENT, CONFIG } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import { maxAmountMicros, type GatewayConfig } from '../config.js';
import { AgentAuthGuard, type AuthenticatedRequest } from './auth.guard.js';
import { requireMainKey } from './mandate.js';
import { parseAmount, parseInput, usd } from './request.js';

/** Fields are checked one by one below, each refusal naming its field (400 `invalid_mandate`). */
export const createKeyBodySchema = z.object({
  name: z.unknown().optional(),
  max_per_transaction_usd: z.unknown().optional(),
  max_per_day_usd: z.unknown().optional(),
  allowed_payees: z.unknown().optional(),
  allowed_actions: z.unknown().optional(),
  expires_at: z.unknown().optional(),
});

/**
 * Sub-keys with spending mandates (ADR 0019). Made with the agent's main key only; the key is
 * drawn here and shown once, casino is told its SHA-256 (as at registration).
 */
@Controller('api/v1/auth/keys')
export class KeysController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Post()
  @HttpCode(201)
  @UseGuards(AgentAuthGuard)
  async create(@Req() request: AuthenticatedRequest, @Body() body: unknown) {
    requireMainKey(request);
    const input = parseInput(createKeyBodySchema, body);
    const mandate = {
      maxPerTransactionMicros: this.limit(input.max_per_transaction_usd, 'max_per_transaction_usd'),
      maxPerDayMicros: this.limit(input.max_per_day_usd, 'max_per_day_usd'),
      allowedPayees: payees(input.allowed_payees, request.agentId!),
      allowedActions: actions(input.allowed_actions),
      expiresAt: expiry(input.expires_at),
    };
    if (mandate.maxPerTransactionMicros > mandate.maxPerDayMicros)
      throw invalid('max_per_transaction_usd cannot be above max_per_day_usd');
    const { apiKey, apiKeySha256 } = newApiKey();
    const view = await this.commands.request<KeyView>(mandateCommands.createKey, {
      agentId: request.agentId,
      keyId: `key_${randomBytes(8).toString('hex')}`,
      apiKeySha256,
      name: keyName(input.name),
      mandate: {
        ...mandate,
        maxPerTransactionMicros: mandate.maxPerTransactionMicros.toString(),
        maxPerDayMicros: mandate.maxPerDayMicros.toString(),
      },
    });
    return {
      ...keyBody(view),
      api_key: apiKey,
      message: 'Sub-key created. Store the api_key now: it is shown only once.',
    };
  }

  @Get()
  @UseGuards(AgentAuthGuard)
  async list(@Req() request: AuthenticatedRequest) {
    requireMainKey(request);
    const reply = await this.commands.request<KeyListReply>(mandateCommands.listKeys, {
      agentId: request.agentId,
    });
    return { agent_id: request.agentId, keys: reply.keys.map(keyBody) };
  }

  @Delete(':id')
  @HttpCode(200)
  @UseGuards(AgentAuthGuard)
  async revoke(@Req() request: AuthenticatedRequest, @Param('id') keyId: string) {
    requireMainKey(request);
    if (!KEY_ID_PATTERN.test(keyId)) throw new DomainError(mandateErrors.keyNotFound, `no key ${keyId}`);
    const view = await this.commands.request<KeyView>(mandateCommands.revokeKey, {
      agentId: request.agentId,
      keyId,
    });
    return {
      ...keyBody(view),
      message: `Key revoked: money moves with it are refused at once; every request within ${this.config.AUTH_CACHE_TTL_MS} ms.`,
    };
  }

  private limit(value: unknown, field: string): bigint {
    if (value === undefined || value === null) throw invalid(`${field} is required`);
    try {
      return parseAmount(value, { field, maxMicros: maxAmountMicros(this.config) });
    } catch (error) {
      throw invalid(`${field}: ${(error as Error).message}`);
    }
  }
}

/** A key as the API shows it: never the key (except once, at creation), never its hash. */
export function keyBody(view: KeyView) {
  const remainingMicros = BigInt(view.maxPerDayMicros) - BigInt(view.spentLast24hMicros);
  return {
    key_id: view.keyId,
    agent_id: view.agentId,
    name: view.name,
    max_per_transaction_usd: usd(view.maxPerTransactionMicros),
    max_per_day_usd: usd(view.maxPerDayMicros),
    allowed_payees: view.allowedPayees,
    allowed_actions: view.allowedActions,
    expires_at: view.expiresAt,
    created_at: view.createdAt,
    revoked_at: view.revokedAt,
    status: view.revokedAt ? 'revoked' : Date.parse(view.expiresAt) <= Date.now() ? 'expired' : 'active',
    spent_last_24h_usd: usd(view.spentLast24hMicros),
    remaining_today_usd: usd(remainingMicros > 0n ? remainingMicros : 0n),
  };
}

function invalid(message: string): DomainError {
  return new DomainError(mandateErrors.invalidMandate, message);
}

function keyName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > MANDATE_LIMITS.maxKeyNameChars)
    throw invalid(`name must be 1–${MANDATE_LIMITS.maxKeyNameChars} characters`);
  return value.trim();
}

function payees(value: unknown, agentId: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || value.length > MANDATE_LIMITS.maxAllowedPayees)
    throw invalid(`allowed_payees must be a list of at most ${MANDATE_LIMITS.maxAllowedPayees} agent ids`);
  for (const payee of value)
    if (typeof payee !== 'string' || !AGENT_ID_PATTERN.test(payee))
      throw invalid('allowed_payees must contain agent ids (ag_ + 12 hex)');
  if (value.includes(agentId)) throw invalid('allowed_payees cannot name the agent itself');
  return [...new Set(value as string[])];
}

function actions(value: unknown): MandateAction[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || value.length === 0)
    throw invalid(`allowed_actions must be a non-empty list of: ${MANDATE_ACTIONS.join(', ')}`);
  for (const action of value)
    if (!(MANDATE_ACTIONS as readonly unknown[]).includes(action))
      throw invalid(
        `allowed_actions: unknown action ${JSON.stringify(action)}; known: ${MANDATE_ACTIONS.join(', ')}`,
      );
  return [...new Set(value as MandateAction[])];
}

function expiry(value: unknown): string {
  if (typeof value !== 'string' || !z.iso.datetime({ offset: true }).safeParse(value).success)
    throw invalid('expires_at must be an ISO 8601 time with a zone, e.g. 2026-12-31T23:59:59Z');
  const expiresAtMs = Date.parse(value);
  const nowMs = Date.now();
  if (expiresAtMs <= nowMs) throw invalid('expires_at must be in the future');
  if (expiresAtMs - nowMs > MANDATE_LIMITS.maxLifetimeMs)
    throw invalid('expires_at is more than 366 days away');
  return new Date(expiresAtMs).toISOString();
}
