import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  AGENT_ID_PATTERN,
  casinoErrors,
  createKeyCommandSchema,
  DomainError,
  ErrorCode,
  listKeysCommandSchema,
  mandateCommands,
  parseOrThrow as parse,
  payCommandSchema,
  paymentErrors,
  revokeKeyCommandSchema,
  type KeyListReply,
  type KeyView,
  type PaymentReply,
} from '@pf/contracts';
import { formatUsd } from '@pf/money';
import { LOGGER } from '@pf/platform';
import type { Logger } from 'pino';
import { AccountsService } from '../application/accounts.service.js';
import { KeysService, parseCreate } from '../application/keys.service.js';
import { LedgerService, operationStream } from '../application/ledger.service.js';
import { CASINO_EVENT_STORE } from '../application/tokens.js';
import type { EventStore } from '@pf/event-store';

/** Sub-keys and direct payments (ADR 0019): validate, call one application service, reply. */
@Controller()
export class KeysHandlers {
  constructor(
    private readonly keys: KeysService,
    private readonly ledger: LedgerService,
    private readonly accounts: AccountsService,
    @Inject(CASINO_EVENT_STORE) private readonly store: EventStore,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @MessagePattern(mandateCommands.createKey)
  async createKey(@Payload() payload: unknown): Promise<KeyView> {
    const view = await this.keys.create(parseCreate(parse(createKeyCommandSchema, payload)));
    this.logger.info({ agentId: view.agentId, keyId: view.keyId }, 'api key created');
    return view;
  }

  @MessagePattern(mandateCommands.listKeys)
  listKeys(@Payload() payload: unknown): Promise<KeyListReply> {
    return this.keys.list(parse(listKeysCommandSchema, payload).agentId);
  }

  @MessagePattern(mandateCommands.revokeKey)
  async revokeKey(@Payload() payload: unknown): Promise<KeyView> {
    const { agentId, keyId } = parse(revokeKeyCommandSchema, payload);
    const view = await this.keys.revoke(agentId, keyId);
    this.logger.info({ agentId, keyId }, 'api key revoked');
    return view;
  }

  /**
   * A direct payment: one ledger transfer (id = payment id, so a retry never pays twice), with
   * the sub-key's mandate decided in the same transaction when one was used. No commission.
   */
  @MessagePattern(mandateCommands.pay)
  async pay(@Payload() payload: unknown): Promise<PaymentReply> {
    const { paymentId, from, to, amountMicros, memo, keyId } = parse(payCommandSchema, payload);
    if (!AGENT_ID_PATTERN.test(to))
      throw new DomainError(paymentErrors.invalidPayee, 'to_agent_id must be an agent id (ag_ + 12 hex)');
    if (to === from) throw new DomainError(paymentErrors.selfPayment, 'an agent cannot pay itself');
    try {
      await this.ledger.execute(
        { kind: 'transfer', transferId: paymentId, from, to, amountMicros, reason: 'payment' },
        {
          service: 'pay',
          ...(keyId ? { mandate: { keyId, action: 'pay' as const, payeeId: to } } : {}),
          ...(memo ? { memo } : {}),
        },
      );
    } catch (error) {
      throw paymentError(error, to);
    }
    const [history, availableMicros] = await Promise.all([
      this.store.readStream(operationStream(paymentId)),
      this.accounts.availableMicros(from),
    ]);
    const transferred = history.find((event) => event.type === 'funds_transferred')!;
    this.logger.info({ paymentId, from, to, amount_usd: formatUsd(amountMicros) }, 'payment made');
    return {
      paymentId,
      from,
      to,
      amountMicros: amountMicros.toString(),
      memo: typeof transferred.metadata.memo === 'string' ? transferred.metadata.memo : null,
      keyId: typeof transferred.metadata.keyId === 'string' ? transferred.metadata.keyId : null,
      paidAt: transferred.recordedAt.toISOString(),
      availableMicros,
    };
  }
}

/** Ledger refusals in the payment's words. */
function paymentError(error: unknown, to: string): unknown {
  if (!(error instanceof DomainError)) return error;
  if (error.code === casinoErrors.accountNotFound)
    return new DomainError(paymentErrors.payeeNotFound, `no agent ${to}`);
  if (error.code === casinoErrors.operationIdReused)
    return new DomainError(
      ErrorCode.idempotencyKeyReused,
      'this Idempotency-Key was used for a different payment',
    );
  return error;
}
