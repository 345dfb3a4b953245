import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  authenticateCommandSchema,
  casinoCommands,
  casinoErrors,
  creditCommandSchema,
  DomainError,
  getAccountCommandSchema,
  parseOrThrow as parse,
  getAgentCommandSchema,
  getHoldCommandSchema,
  getLedgerCommandSchema,
  listAccountsCommandSchema,
  mandatedHoldCommandSchema,
  ErrorCode,
  postCommandSchema,
  referralStatsCommandSchema,
  registerCommandSchema,
  transferCommandSchema,
  voidCommandSchema,
  type CreditReply,
  type OperationReply,
} from '@pf/contracts';
import { formatUsd } from '@pf/money';
import { LOGGER } from '@pf/platform';
import type { Logger } from 'pino';
import { AccountsService } from '../application/accounts.service.js';
import { AgentsService } from '../application/agents.service.js';
import { KeysService } from '../application/keys.service.js';
import { LedgerCheckService } from '../application/ledger-check.service.js';
import { LedgerService } from '../application/ledger.service.js';
import { depositCommand } from '../domain/deposits.js';

/** Casino's command handlers: validate the payload, call one application service, reply. */
@Controller()
export class CasinoHandlers {
  constructor(
    private readonly agents: AgentsService,
    private readonly keys: KeysService,
    private readonly ledger: LedgerService,
    private readonly accounts: AccountsService,
    private readonly checker: LedgerCheckService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @MessagePattern(casinoCommands.register)
  async register(@Payload() payload: unknown) {
    const reply = await this.agents.register(parse(registerCommandSchema, payload));
    this.logger.info({ agentId: reply.agentId, referredBy: reply.referredBy }, 'agent registered');
    return reply;
  }

  @MessagePattern(casinoCommands.authenticate)
  async authenticate(@Payload() payload: unknown) {
    const { apiKeySha256 } = parse(authenticateCommandSchema, payload);
    // A main key first (the common case), then a sub-key (ADR 0019).
    try {
      return await this.agents.authenticate(apiKeySha256);
    } catch (error) {
      if (!(error instanceof DomainError) || error.code !== ErrorCode.unauthorized) throw error;
      const subKey = await this.keys.authenticate(apiKeySha256);
      if (!subKey) throw error;
      return subKey;
    }
  }

  @MessagePattern(casinoCommands.getAgent)
  getAgent(@Payload() payload: unknown) {
    return this.agents.get(parse(getAgentCommandSchema, payload).agentId);
  }

  @MessagePattern(casinoCommands.transfer)
  transfer(@Payload() payload: unknown): Promise<OperationReply> {
    const { service, ...command } = parse(transferCommandSchema, payload);
    return this.ledger.execute({ kind: 'transfer', ...command }, { service });
  }

  @MessagePattern(casinoCommands.hold)
  hold(@Payload() payload: unknown): Promise<OperationReply> {
    // A hold made with a sub-key carries its key id: the mandate is decided with the hold.
    const { service, mandate, ...command } = parse(mandatedHoldCommandSchema, payload);
    return this.ledger.execute({ kind: 'hold', ...command }, { service, ...(mandate ? { mandate } : {}) });
  }

  @MessagePattern(casinoCommands.post)
  post(@Payload() payload: unknown): Promise<OperationReply> {
    const { service, ...command } = parse(postCommandSchema, payload);
    return this.ledger.execute({ kind: 'post', ...command }, { service });
  }

  @MessagePattern(casinoCommands.void)
  void(@Payload() payload: unknown): Promise<OperationReply> {
    const { service, ...command } = parse(voidCommandSchema, payload);
    return this.ledger.execute({ kind: 'void', ...command }, { service });
  }

  @MessagePattern(casinoCommands.getHold)
  async getHold(@Payload() payload: unknown): Promise<OperationReply> {
    const { holdId } = parse(getHoldCommandSchema, payload);
    const outcome = await this.ledger.outcome(holdId);
    if (!outcome || outcome.kind !== 'hold')
      throw new DomainError(casinoErrors.holdNotFound, `no hold ${holdId}`);
    return outcome;
  }

  @MessagePattern(casinoCommands.getAccount)
  getAccount(@Payload() payload: unknown) {
    const { agentId, recentLimit } = parse(getAccountCommandSchema, payload);
    return this.accounts.account(agentId, recentLimit);
  }

  @MessagePattern(casinoCommands.getLedger)
  getLedger(@Payload() payload: unknown) {
    const { agentId, limit, cursor } = parse(getLedgerCommandSchema, payload);
    return this.accounts.ledger(agentId, limit, cursor);
  }

  @MessagePattern(casinoCommands.referralStats)
  referralStats(@Payload() payload: unknown) {
    return this.accounts.referralStats(parse(referralStatsCommandSchema, payload).agentId);
  }

  /** An operator deposit from `world`, idempotent on the reference. */
  @MessagePattern(casinoCommands.credit)
  async credit(@Payload() payload: unknown): Promise<CreditReply> {
    const { agentId, amountMicros, reference } = parse(creditCommandSchema, payload);
    const deposit = depositCommand({ agentId, amountMicros, reference });
    const transferId = deposit.transferId;
    try {
      await this.ledger.execute(deposit, { service: 'admin' });
    } catch (error) {
      if (error instanceof DomainError && error.code === casinoErrors.accountNotFound) {
        throw new DomainError(casinoErrors.agentNotFound, `no agent ${agentId}`);
      }
      if (error instanceof DomainError && error.code === casinoErrors.operationIdReused) {
        throw new DomainError(
          casinoErrors.referenceReused,
          `reference ${reference} was already used for a different deposit`,
        );
      }
      throw error;
    }
    this.logger.info({ agentId, amount_usd: formatUsd(amountMicros), reference }, 'deposit credited');
    const availableMicros = await this.accounts.availableMicros(agentId);
    return { transferId, agentId, amountMicros: amountMicros.toString(), reference, availableMicros };
  }

  @MessagePattern(casinoCommands.listAccounts)
  listAccounts(@Payload() payload: unknown) {
    return this.accounts.listAccounts(parse(listAccountsCommandSchema, payload).limit);
  }

  @MessagePattern(casinoCommands.checkLedger)
  checkLedger() {
    return this.checker.check();
  }
}
