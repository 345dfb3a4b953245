import { Controller, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import {
  AGENT_ID_PATTERN,
  casinoCommands,
  DomainError,
  ErrorCode,
  ESCROW_ID_PATTERN,
  escrowCommands,
  DEADLINES_LIST_MAX,
  LIST_ACCOUNTS_MAX,
  opsResultsStream,
  verifyLastSubject,
  type VerifyResultRecord,
  type AccountsListReply,
  type AccountView,
  type DeadlinesReply,
  type ActivityView,
  type EscrowView,
  type LedgerPage,
} from '@pf/contracts';
import { COMMAND_CLIENT, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { CommandClient } from '@pf/messaging';
import {
  collectStreamStates,
  getDeadLetter,
  readDeadLetters,
  redriveDeadLetter,
  UsageError,
  type DeadLetterView,
} from '@pf/ops-kit';
import type { GatewayConfig } from '../config.js';
import { AdminGuard } from './admin.guard.js';
import { parseInput, usd } from './request.js';

/** Dead letters listed at most per request (the operator view shows the oldest first). */
export const DEAD_LETTERS_LIST_MAX = 500;
/** Ledger entries of one agent shown by the search. */
const AGENT_ENTRIES_SHOWN = 100;

export const accountsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(LIST_ACCOUNTS_MAX).default(50),
});
export const deadlinesQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(DEADLINES_LIST_MAX).default(10),
});
export const deadLettersQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(DEAD_LETTERS_LIST_MAX).default(100),
  consumer: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,200}$/)
    .optional(),
});

/**
 * The operator view's read routes (API.md "Operators"; the dashboard's `#operator`): balances and
 * the books' sum from casino, JetStream streams and consumer lag, dead letters (listed and
 * re-driven with the same code as `ops dlq`), and the full record of one escrow or agent, all
 * amounts as exact micro-dollar strings beside their USD numbers. Same AdminGuard as `/admin`.
 */
@Controller('admin')
@UseGuards(AdminGuard)
export class AdminDashboardController {
  constructor(
    @Inject(COMMAND_CLIENT) private readonly commands: CommandClient,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<GatewayConfig>,
  ) {}

  @Get('accounts')
  async accounts(@Query() query: unknown) {
    const { limit } = parseInput(accountsQuerySchema, query);
    const reply = await this.commands.request<AccountsListReply>(casinoCommands.listAccounts, { limit });
    return {
      books_sum_micros: reply.sumMicros,
      books_sum_usd: usd(reply.sumMicros),
      agents_held_micros: reply.heldMicros,
      agent_count: reply.agentCount,
      accounts: reply.accounts.map((account) => ({
        account: account.account,
        kind: account.kind,
        available_micros: account.availableMicros,
        held_micros: account.heldMicros,
        available_usd: usd(account.availableMicros),
      })),
    };
  }

  /** The timeout saga: deadlines due and not yet handled, its lag, and the next deadlines. */
  @Get('deadlines')
  async deadlines(@Query() query: unknown) {
    const { limit } = parseInput(deadlinesQuerySchema, query);
    const reply = await this.commands.request<DeadlinesReply>(escrowCommands.deadlines, { limit });
    return {
      now: reply.now,
      overdue_count: reply.overdueCount,
      pending_count: reply.pendingCount,
      lag_ms: reply.lagMs,
      next: reply.next.map((deadline) => ({
        escrow_id: deadline.escrowId,
        due_at: deadline.dueAt,
        status: deadline.status,
        // What the saga does at the deadline (docs/adr/0004): refund a funded escrow, pay a completed one.
        action: deadline.status === 'completed' ? 'auto_release' : 'refund',
        amount_micros: deadline.amountMicros,
      })),
    };
  }

  @Get('streams')
  async streams() {
    const states = await this.jetstream(async () =>
      collectStreamStates(await jetstreamManager(this.context.nats), this.context.prefix),
    );
    return {
      streams: states.map((stream) => ({
        name: stream.contractName,
        exists: stream.exists,
        messages: stream.messages,
        bytes: stream.bytes,
        last_sequence: stream.lastSequence,
        last_at: stream.lastTime,
        consumers: stream.consumers.map((consumer) => ({
          name: consumer.name,
          durable: consumer.durable,
          lag: consumer.lagMessages,
          pending: consumer.pendingMessages,
          ack_pending: consumer.ackPendingMessages,
          redelivered: consumer.redeliveredMessages,
          dead_letters: consumer.deadLetters,
        })),
        consumers_not_listed: stream.consumersNotListed,
      })),
    };
  }

  @Get('dead-letters')
  async deadLetters(@Query() query: unknown) {
    const { limit, consumer } = parseInput(deadLettersQuerySchema, query);
    const letters = await this.jetstream(() =>
      readDeadLetters(this.context.nats, this.context.prefix, consumer, limit),
    );
    return { dead_letters: letters.map(deadLetterJson), limit };
  }

  /** `ops dlq redrive <sequence>`: republish to the original subject, then delete the dead letter. */
  @Post('dead-letters/:sequence/redrive')
  @HttpCode(200)
  async redrive(@Param('sequence') sequenceText: string) {
    if (!/^[1-9][0-9]{0,15}$/.test(sequenceText))
      throw new DomainError(ErrorCode.invalidRequest, 'sequence must be a dead letter sequence number');
    const sequence = Number(sequenceText);
    const outcome = await this.jetstream(async () => {
      const manager = await jetstreamManager(this.context.nats);
      const stored = await getDeadLetter(manager, this.context.prefix, sequence);
      return redriveDeadLetter(this.context.nats, manager, this.context.prefix, stored);
    });
    return {
      sequence,
      consumer: outcome.consumer,
      subject: outcome.subject,
      stream: outcome.stream,
      stream_sequence: outcome.sequence,
      duplicate: outcome.duplicate,
    };
  }

  /**
   * The last `ops verify` result (its cross-checks need every service's database, which the
   * gateway has none of, so ops records its summary on the OPS_RESULTS stream and this reads it).
   */
  @Get('verify/last')
  async verifyLast(): Promise<VerifyResultRecord> {
    const stored = await this.jetstream(async () => {
      const manager = await jetstreamManager(this.context.nats);
      try {
        return await manager.streams.getMessage(this.context.prefix.streamName(opsResultsStream.name), {
          last_by_subj: this.context.prefix.subject(verifyLastSubject),
        });
      } catch (error) {
        // No stream yet: ops verify has never run against this deployment.
        if (error instanceof JetStreamApiError && error.status === 404) return null;
        throw error;
      }
    });
    if (!stored)
      throw new DomainError(
        'no_verify_result',
        'ops verify has not recorded a result yet: run `npm run ops -- verify all`',
      );
    return stored.json<VerifyResultRecord>();
  }

  /** One escrow, every field and its whole history (the party view, asked as its creator). */
  @Get('escrow/:id')
  async escrow(@Param('id') escrowId: string) {
    if (!ESCROW_ID_PATTERN.test(escrowId))
      throw new DomainError(ErrorCode.invalidRequest, 'not an escrow id');
    const summary = await this.commands.request<EscrowView>(escrowCommands.get, { escrowId });
    const view = await this.commands.request<EscrowView>(escrowCommands.get, {
      escrowId,
      viewerId: summary.creatorId,
    });
    return {
      escrow_id: view.escrowId,
      status: view.status,
      creator_id: view.creatorId,
      counterparty_id: view.counterpartyId,
      description: view.description,
      amount_micros: view.amountMicros,
      amount_usd: usd(view.amountMicros),
      commission_micros: view.commissionMicros,
      net_to_counterparty_micros: view.netToCounterpartyMicros,
      payout: view.payout && {
        counterparty_micros: view.payout.counterpartyMicros,
        commission_micros: view.payout.commissionMicros,
        house_micros: view.payout.houseMicros,
        referrer_micros: view.payout.referrerMicros,
        referrer_id: view.payout.referrerId,
        creator_micros: view.payout.creatorMicros,
      },
      created_at: view.createdAt,
      auto_release_at: view.autoReleaseAt,
      events: (view.events ?? []).map((event) => ({ type: event.type, at: event.at, actor: event.actor })),
    };
  }

  /** One agent: balances, lifetime totals and its latest ledger entries. */
  @Get('agents/:id')
  async agent(@Param('id') agentId: string) {
    if (!AGENT_ID_PATTERN.test(agentId)) throw new DomainError(ErrorCode.invalidRequest, 'not an agent id');
    const [account, ledger] = await Promise.all([
      this.commands.request<AccountView>(casinoCommands.getAccount, { agentId, recentLimit: 0 }),
      this.commands.request<LedgerPage>(casinoCommands.getLedger, { agentId, limit: AGENT_ENTRIES_SHOWN }),
    ]);
    return {
      agent_id: account.agentId,
      available_micros: account.availableMicros,
      held_micros: account.heldMicros,
      available_usd: usd(account.availableMicros),
      lifetime: {
        deposited_micros: account.lifetime.depositedMicros,
        withdrawn_micros: account.lifetime.withdrawnMicros,
        escrowed_micros: account.lifetime.escrowedMicros,
        earned_micros: account.lifetime.earnedMicros,
        fees_micros: account.lifetime.feesMicros,
      },
      entries: ledger.entries.map(entryJson),
    };
  }

  /**
   * JetStream calls: a missing dead letter (UsageError from ops-kit) is 404; anything else that
   * fails is JetStream away, 503 (a read, or a redrive that may have published: retry is safe,
   * the broker drops a repeated republish).
   */
  private async jetstream<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof UsageError) throw new DomainError(ErrorCode.notFound, error.message);
      if (error instanceof DomainError) throw error;
      throw new DomainError(ErrorCode.serviceUnavailable, 'JetStream did not answer; retry shortly');
    }
  }
}

function deadLetterJson(letter: DeadLetterView) {
  return {
    sequence: letter.sequence,
    consumer: letter.consumer,
    subject: letter.subject,
    original_stream: letter.originalStream,
    original_sequence: letter.originalSequence,
    deliveries: letter.deliveries,
    event_id: letter.eventId,
    failed_at: letter.failedAt,
    error: letter.error,
  };
}

function entryJson(entry: ActivityView) {
  return {
    type: entry.type,
    amount_micros: entry.amountMicros,
    balance_after_micros: entry.balanceAfterMicros,
    reason: entry.reason,
    service: entry.service,
    operation_id: entry.operationId,
    counterparty: entry.counterparty,
    at: entry.at,
  };
}
