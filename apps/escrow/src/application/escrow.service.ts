import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  casinoCommands,
  casinoErrors,
  DomainError,
  ErrorCode,
  ESCROW_ID_PATTERN,
  ESCROW_LIMITS,
  mandateErrors,
  type Deliverable,
  type EscrowCancelReason,
  type MilestoneInput,
  type EscrowView,
  type ResolutionOutcome,
} from '@pf/contracts';
import { CONFIG, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { escrowPolicy, type EscrowConfig } from '../config.js';
import { validateOpen, type EscrowCommand, type OpenEscrow } from '../domain/escrow.js';
import type { SettlementOrder } from '../infrastructure/escrow-repository.js';
import { rowToView, type EscrowRow } from '../infrastructure/escrow-row.js';
import { AgentDirectory } from './agent-directory.js';
import { EscrowCommands, type EscrowDecision, type ExecuteOptions } from './escrow-commands.js';
import { SettlementService } from './settlement.service.js';
import { logEscrowFacts } from './escrow-facts.js';

/** Refusals of a hold that mean "no": recorded as the escrow's rejection. Anything else may succeed on retry. */
const FINAL_HOLD_REFUSALS: ReadonlySet<string> = new Set([
  casinoErrors.insufficientBalance,
  casinoErrors.accountNotFound,
  // A sub-key's mandate said no (ADR 0019): a retry later must not lock money the creator was refused.
  mandateErrors.mandateExceeded,
  mandateErrors.mandatePayeeNotAllowed,
  mandateErrors.mandateActionNotAllowed,
  mandateErrors.keyExpired,
  mandateErrors.keyRevoked,
  ErrorCode.unauthorized,
  ErrorCode.forbidden,
]);

export interface CreateEscrowInput {
  escrowId?: string;
  creatorId: string;
  counterpartyId: string;
  amountMicros: bigint;
  description: string;
  timeoutMs?: number;
  jobId?: string;
  race?: boolean;
  evaluatorId?: string;
  evaluatorFeeBps?: number;
  /** Amounts as micro-dollar strings from the bus; the domain checks them (invalid_milestones). */
  milestones?: MilestoneInput[];
  keyId?: string;
}

type HoldOutcome = Extract<EscrowCommand, { kind: 'record_hold' }>;

/**
 * The escrow's write side: the create saga (opened → casino hold → funded | rejected), the
 * parties' actions and the operator's resolution. Each decision is recorded first, with the
 * settlement it owes in the outbox, and then carried out on casino at once; if casino is away
 * the sweeper finishes it (see TimeoutSaga).
 */
@Injectable()
export class EscrowService {
  private readonly holdTimeoutMs: number;

  constructor(
    private readonly commands: EscrowCommands,
    @Inject(CONFIG) private readonly config: EscrowConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly agents: AgentDirectory,
    private readonly settlements: SettlementService,
  ) {
    // Shorter than the recovery delay, so the sweep never re-sends a hold that create still awaits.
    this.holdTimeoutMs = Math.min(3_000, Math.floor(config.ESCROW_RECOVERY_AFTER_MS / 2));
  }

  async create(input: CreateEscrowInput): Promise<EscrowView> {
    const open: OpenEscrow = {
      kind: 'open',
      escrowId: input.escrowId ?? newEscrowId(),
      creatorId: input.creatorId,
      counterpartyId: input.counterpartyId.trim(),
      amountMicros: input.amountMicros,
      description: input.description.trim(),
      timeoutMs: input.timeoutMs ?? ESCROW_LIMITS.defaultTimeoutMs,
      referrerId: null,
      policy: escrowPolicy(this.config),
      ...(input.jobId ? { jobId: input.jobId, race: input.race === true } : {}),
      ...(input.evaluatorId !== undefined ? { evaluatorId: input.evaluatorId.trim() } : {}),
      ...(input.evaluatorFeeBps !== undefined ? { evaluatorFeeBps: input.evaluatorFeeBps } : {}),
      ...(input.milestones
        ? {
            milestones: input.milestones.map((milestone) => ({
              description: milestone.description.trim(),
              amountMicros: BigInt(milestone.amountMicros),
            })),
          }
        : {}),
      ...(input.keyId ? { keyId: input.keyId } : {}),
    };
    // API order: the 400s, then 404 counterparty_not_found / evaluator_not_found, then 402 from the hold.
    validateOpen(open);
    const [referrerId] = await Promise.all([
      this.agents.referrerOf(open.creatorId),
      this.agents.counterparty(open.counterpartyId),
      open.evaluatorId ? this.agents.evaluator(open.evaluatorId) : null,
    ]);
    let decision = await this.execute(
      open.escrowId,
      { ...open, referrerId },
      { freshId: input.escrowId === undefined },
    );
    if (decision.state.status === 'opened') {
      const outcome = await this.placeHold(open.escrowId, open.creatorId, open.amountMicros, {
        keyId: open.keyId ?? null,
        counterpartyId: open.counterpartyId,
      });
      if (!outcome) throw this.fundingPending(open.escrowId);
      // Decided on the row create just wrote: no lock, the expected version catches a recovery.
      decision = await this.recordHold(open.escrowId, outcome, decision.row);
    }
    const row = decision.row!;
    if (row.status === 'rejected') throw rejectionOf(row.rejection ?? {});
    return rowToView(row);
  }

  /**
   * Sends the hold (id = escrow id, so a retry can never lock twice). Returns the outcome to
   * record, or null when casino did not answer and the outcome is still unknown.
   */
  async placeHold(
    escrowId: string,
    creatorId: string,
    amountMicros: bigint,
    mandate: { keyId: string | null; counterpartyId: string },
  ): Promise<HoldOutcome | null> {
    try {
      await this.context.commands.request(
        casinoCommands.hold,
        {
          holdId: escrowId,
          from: creatorId,
          amountMicros: amountMicros.toString(),
          reason: 'escrow',
          service: 'escrow',
          // Made with a sub-key: casino decides its mandate in the hold's transaction.
          ...(mandate.keyId
            ? { mandate: { keyId: mandate.keyId, action: 'escrow_create', payeeId: mandate.counterpartyId } }
            : {}),
        },
        this.holdTimeoutMs,
      );
      return { kind: 'record_hold', outcome: 'held' };
    } catch (error) {
      if (!(error instanceof DomainError) || !FINAL_HOLD_REFUSALS.has(error.code)) {
        this.context.logger.warn(
          { escrowId, err: (error as Error).message },
          'hold outcome unknown; the recovery sweep will finish it',
        );
        return null;
      }
      const available = error.details?.available_micros;
      const details = Object.fromEntries(
        Object.entries(error.details ?? {}).filter(
          ([name, value]) => name !== 'available_micros' && typeof value === 'string',
        ),
      ) as Record<string, string>;
      return {
        kind: 'record_hold',
        outcome: 'refused',
        code: error.code,
        message: error.message,
        availableMicros: typeof available === 'string' ? BigInt(available) : null,
        ...(Object.keys(details).length > 0 ? { details } : {}),
      };
    }
  }

  /** Records the hold's outcome and carries out a compensation (a late hold on a rejected escrow). */
  async recordHold(escrowId: string, outcome: HoldOutcome, knownRow?: EscrowRow): Promise<EscrowDecision> {
    const decision = await this.execute(escrowId, outcome, knownRow ? { knownRow } : {});
    if (decision.settlement) await this.settlements.carryOut(decision.settlement).catch(() => undefined);
    return decision;
  }

  complete(
    escrowId: string,
    actorId: string,
    resultSummary: string | null,
    deliverable: Deliverable | null,
    options: ExecuteOptions,
    milestone?: number,
  ): Promise<EscrowView> {
    return this.act(
      escrowId,
      {
        kind: 'complete',
        actorId,
        resultSummary,
        deliverable,
        ...(milestone === undefined ? {} : { milestone }),
      },
      options,
    );
  }

  /** The evaluator sends the work back (funded again) or, with `refund`, gives the money back. */
  reject(
    escrowId: string,
    actorId: string,
    reason: string,
    refund: boolean,
    options: ExecuteOptions,
  ): Promise<EscrowView> {
    return this.act(escrowId, { kind: 'reject', actorId, reason, refund }, options);
  }

  /** One half of a cancel by agreement: the creator's request or the counterparty's consent. */
  agreeToCancel(
    escrowId: string,
    actorId: string,
    half: 'request_cancel' | 'consent_cancel',
    options: ExecuteOptions,
  ): Promise<EscrowView> {
    return this.act(escrowId, { kind: half, actorId }, options);
  }

  release(
    escrowId: string,
    actorId: string,
    options: ExecuteOptions,
    jobId: string | null = null,
    milestone?: number,
  ): Promise<EscrowView> {
    return this.act(
      escrowId,
      { kind: 'release', actorId, jobId, ...(milestone === undefined ? {} : { milestone }) },
      options,
    );
  }

  /** The market's cancel of a job escrow (full refund, no commission). */
  cancel(
    escrowId: string,
    jobId: string,
    reason: EscrowCancelReason,
    options: ExecuteOptions,
  ): Promise<EscrowView> {
    return this.act(escrowId, { kind: 'cancel', jobId, reason }, options);
  }

  decline(escrowId: string, actorId: string, options: ExecuteOptions): Promise<EscrowView> {
    return this.act(escrowId, { kind: 'decline', actorId }, options);
  }

  dispute(
    escrowId: string,
    actorId: string,
    reason: string | null,
    options: ExecuteOptions,
  ): Promise<EscrowView> {
    return this.act(escrowId, { kind: 'dispute', actorId, reason }, options);
  }

  resolve(
    escrowId: string,
    outcome: ResolutionOutcome,
    counterpartyShareBps: number | null,
    options: ExecuteOptions,
  ): Promise<EscrowView> {
    return this.act(escrowId, { kind: 'resolve', outcome, counterpartyShareBps }, options);
  }

  private async act(escrowId: string, command: EscrowCommand, options: ExecuteOptions): Promise<EscrowView> {
    if (!ESCROW_ID_PATTERN.test(escrowId)) throw new DomainError(ErrorCode.notFound, 'no such escrow');
    const decision = await this.execute(escrowId, command, options);
    if (decision.settlement) {
      await this.settle(escrowId, decision, decision.settlement);
    } else if (decision.replayed) {
      // The first run of this command may have found casino away: finish its settlement now.
      for (const pending of await this.settlements.pendingFor(escrowId))
        await this.settle(escrowId, decision, pending);
    }
    return rowToView(decision.row!);
  }

  /** Carries out the decision on casino now; if casino is away the decision stands and the sweep pays. */
  private async settle(escrowId: string, decision: EscrowDecision, order: SettlementOrder): Promise<void> {
    try {
      await this.settlements.carryOut(order);
    } catch (error) {
      if (error instanceof DomainError && error.code === ErrorCode.serviceUnavailable) {
        throw new DomainError(
          ErrorCode.serviceUnavailable,
          `escrow ${escrowId} is ${decision.state.status}; the ledger is unavailable, so the money moves automatically when it is back. Retrying with the same Idempotency-Key is safe.`,
          { escrow_id: escrowId, status: decision.state.status },
        );
      }
      throw error;
    }
  }

  /** Every command goes through here, so each new fact is logged once, after its commit. */
  private async execute(
    escrowId: string,
    command: EscrowCommand,
    options?: ExecuteOptions,
  ): Promise<EscrowDecision> {
    const decision = await this.commands.execute(escrowId, command, options);
    if (!decision.replayed) logEscrowFacts(this.context.logger, decision.events);
    return decision;
  }

  private fundingPending(escrowId: string): DomainError {
    return new DomainError(
      ErrorCode.serviceUnavailable,
      `the ledger did not answer; escrow ${escrowId} is recorded and will be funded or cancelled automatically within seconds of the ledger being back. Retry with the same Idempotency-Key to get the outcome.`,
      { escrow_id: escrowId },
    );
  }
}

export function newEscrowId(): string {
  return `esc_${randomBytes(8).toString('hex')}`;
}

/** The refusal recorded in a `rejected` event, as the error the creator sees (402 with the balance). */
function rejectionOf(rejected: Record<string, unknown>): DomainError {
  const code = typeof rejected.code === 'string' ? rejected.code : casinoErrors.insufficientBalance;
  const available = rejected.availableMicros;
  return new DomainError(
    code,
    typeof rejected.message === 'string' ? rejected.message : 'the hold was refused',
    {
      ...(typeof rejected.details === 'object' && rejected.details !== null ? rejected.details : {}),
      ...(typeof available === 'string' ? { available_micros: available } : {}),
    },
  );
}
