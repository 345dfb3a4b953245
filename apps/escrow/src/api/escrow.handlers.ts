import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  agreeCancelEscrowCommandSchema,
  cancelEscrowCommandSchema,
  completeEscrowCommandSchema,
  createEscrowCommandSchema,
  deadlinesCommandSchema,
  statsHistoryCommandSchema,
  declineEscrowCommandSchema,
  disputeEscrowCommandSchema,
  escrowCommands,
  getEscrowCommandSchema,
  listEscrowsCommandSchema,
  escrowErrors,
  DomainError,
  parseDeliverable,
  parseOrThrow as parse,
  rejectEscrowCommandSchema,
  releaseEscrowCommandSchema,
  resolveEscrowCommandSchema,
  type DeadlinesReply,
  type StatsHistoryReply,
  type EscrowListReply,
  type EscrowStatsReply,
  type EscrowView,
} from '@pf/contracts';
import { EscrowQueriesService } from '../application/escrow-queries.service.js';
import { EscrowService } from '../application/escrow.service.js';

/** Escrow's command handlers: validate the payload, call one application service, reply. */
@Controller()
export class EscrowHandlers {
  constructor(
    private readonly escrows: EscrowService,
    private readonly queries: EscrowQueriesService,
  ) {}

  @MessagePattern(escrowCommands.create)
  create(@Payload() payload: unknown): Promise<EscrowView> {
    const { referralCode: _ignored, ...input } = parse(createEscrowCommandSchema, payload);
    return this.escrows.create(input);
  }

  @MessagePattern(escrowCommands.complete)
  complete(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, resultSummary, deliverable, commandId, milestone } = parse(
      completeEscrowCommandSchema,
      payload,
    );
    return this.escrows.complete(
      escrowId,
      actorId,
      resultSummary ?? null,
      parseDeliverable(deliverable),
      { commandId },
      milestone,
    );
  }

  @MessagePattern(escrowCommands.reject)
  reject(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, reason, refund, commandId } = parse(rejectEscrowCommandSchema, payload);
    if (typeof reason !== 'string')
      throw new DomainError(escrowErrors.invalidRejectReason, 'reason must be a string');
    return this.escrows.reject(escrowId, actorId, reason, refund === true, { commandId });
  }

  @MessagePattern(escrowCommands.requestCancel)
  requestCancel(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, commandId } = parse(agreeCancelEscrowCommandSchema, payload);
    return this.escrows.agreeToCancel(escrowId, actorId, 'request_cancel', { commandId });
  }

  @MessagePattern(escrowCommands.consentCancel)
  consentCancel(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, commandId } = parse(agreeCancelEscrowCommandSchema, payload);
    return this.escrows.agreeToCancel(escrowId, actorId, 'consent_cancel', { commandId });
  }

  @MessagePattern(escrowCommands.release)
  release(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, commandId, jobId, milestone } = parse(releaseEscrowCommandSchema, payload);
    return this.escrows.release(escrowId, actorId, { commandId }, jobId ?? null, milestone);
  }

  @MessagePattern(escrowCommands.cancel)
  cancel(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, jobId, reason, commandId } = parse(cancelEscrowCommandSchema, payload);
    return this.escrows.cancel(escrowId, jobId, reason, { commandId });
  }

  @MessagePattern(escrowCommands.decline)
  decline(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, commandId } = parse(declineEscrowCommandSchema, payload);
    return this.escrows.decline(escrowId, actorId, { commandId });
  }

  @MessagePattern(escrowCommands.dispute)
  dispute(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, actorId, reason, commandId } = parse(disputeEscrowCommandSchema, payload);
    return this.escrows.dispute(escrowId, actorId, reason ?? null, { commandId });
  }

  @MessagePattern(escrowCommands.resolve)
  resolve(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, outcome, counterpartyShareBps, commandId } = parse(resolveEscrowCommandSchema, payload);
    return this.escrows.resolve(escrowId, outcome, counterpartyShareBps ?? null, { commandId });
  }

  @MessagePattern(escrowCommands.get)
  get(@Payload() payload: unknown): Promise<EscrowView> {
    const { escrowId, viewerId } = parse(getEscrowCommandSchema, payload);
    return this.queries.get(escrowId, viewerId);
  }

  @MessagePattern(escrowCommands.list)
  list(@Payload() payload: unknown): Promise<EscrowListReply> {
    return this.queries.list(parse(listEscrowsCommandSchema, payload));
  }

  @MessagePattern(escrowCommands.deadlines)
  deadlines(@Payload() payload: unknown): Promise<DeadlinesReply> {
    return this.queries.deadlines(parse(deadlinesCommandSchema, payload).limit);
  }

  @MessagePattern(escrowCommands.statsHistory)
  statsHistory(@Payload() payload: unknown): Promise<StatsHistoryReply> {
    return this.queries.statsHistory(parse(statsHistoryCommandSchema, payload));
  }

  @MessagePattern(escrowCommands.stats)
  stats(): Promise<EscrowStatsReply> {
    return this.queries.stats();
  }
}
