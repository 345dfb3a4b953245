import { formatUsd } from '@pf/money';
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import {
  casinoCommands,
  casinoErrors,
  DomainError,
  ErrorCode,
  faucetErrors,
  type AgentView,
  type ClaimReply,
} from '@pf/contracts';
import {
  CommandPipeline,
  loadByFolding,
  type EventStore,
  type LoadedBase,
  type PipelineCommand,
} from '@pf/event-store';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { faucetAmounts, type FaucetConfig } from '../config.js';
import {
  claimDecider,
  claimStream,
  type Claim,
  type ClaimCommand,
  type ClaimEvent,
  type ClaimState,
  type ClaimStatus,
} from '../domain/claim.js';
import { assertIpAllowance, limitedAddress } from '../domain/ip-allowance.js';
import { decodeClaimEvent, encodeFaucetEvent } from '../infrastructure/faucet-codec.js';
import {
  addressClaims,
  forgetAddress,
  hasDeposited,
  lockAddress,
  lockTreasury,
  recordAddress,
} from '../infrastructure/faucet-tables.js';
import { FAUCET_EVENT_STORE } from './tokens.js';
import { TREASURY_ACCOUNT, TreasuryService } from './treasury.service.js';

interface Decided {
  status: ClaimStatus;
  events: readonly ClaimEvent[];
}

/** What a claim command decides on: the agent's claim stream folded, the treasury, the command. */
interface ClaimLoaded extends LoadedBase {
  state: ClaimState;
  command: ClaimCommand;
}

/**
 * Claims, end to end. The intent is committed before any money moves, and money moves only
 * by casino's idempotent transfer whose id is the claim id, so there is never money without
 * a claim; a claim without its money stays pending until a retry or the recovery sweep sends
 * the same transfer again and records the outcome.
 */
@Injectable()
export class ClaimsService {
  /**
   * One transaction per claim command (no group commit): claims serialize on the treasury row
   * anyway, and a batch would hold address locks across claims, which only adds deadlocks.
   */
  private readonly pipeline: CommandPipeline;

  constructor(
    @Inject(FAUCET_EVENT_STORE) private readonly store: EventStore,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<FaucetConfig>,
    private readonly treasury: TreasuryService,
  ) {
    this.pipeline = new CommandPipeline(store);
  }

  /** API.md's order: address limit (429), unknown agent (404), then the decider's checks. */
  async claim(input: { agentId: string; clientIp: string | null }): Promise<ClaimReply> {
    await this.treasury.ensureFunded();
    const limitPerDay = this.context.config.FAUCET_IP_LIMIT_PER_DAY;
    const clientIp = limitedAddress(limitPerDay, input.clientIp);
    if (clientIp)
      assertIpAllowance(limitPerDay, await addressClaims(this.store.dataSource, clientIp, input.agentId));
    await this.context.commands.request<AgentView>(
      casinoCommands.getAgent,
      { agentId: input.agentId },
      this.context.config.FAUCET_LEDGER_TIMEOUT_MS,
    );
    const { status, events } = await this.record(input.agentId, clientIp);
    if (status.status === 'completed') return toReply(status.claim, status.claimedAtMs);
    if (status.status !== 'pending')
      throw new Error(`claim of ${input.agentId} is ${status.status} right after the request`);
    return this.payOut(status.claim, events.length > 0);
  }

  /** The recovery sweep's entry: sends a pending claim's transfer again and records the outcome. */
  async resume(claim: Claim): Promise<ClaimReply> {
    return this.payOut(claim, false);
  }

  /**
   * One transaction: the address lock and its re-check (the pre-check ran without a lock),
   * the treasury lock (budget and clock), the agent's stream and deposits, the decision, the
   * append (with its inline projection) and the address row.
   */
  private record(agentId: string, clientIp: string | null): Promise<Decided> {
    const claimId = randomUUID();
    return this.pipeline.execute({
      ...this.claimCommand(agentId, claimId),
      load: async (runner) => {
        if (clientIp) {
          await lockAddress(runner, clientIp);
          assertIpAllowance(
            this.context.config.FAUCET_IP_LIMIT_PER_DAY,
            await addressClaims(runner, clientIp, agentId),
          );
        }
        const treasury = await lockTreasury(runner);
        const hasDeposits = await hasDeposited(runner, agentId);
        return this.loadClaim(
          runner,
          agentId,
          { hasDeposits, remainingBudgetMicros: treasury.remainingMicros },
          {
            kind: 'request',
            claimId,
            agentId,
            amountMicros: faucetAmounts(this.context.config).claimMicros,
            nowMs: treasury.nowMs,
            leaseMs: this.context.config.FAUCET_CLAIM_LEASE_MS,
          },
        );
      },
      afterAppend: async (runner, decision) => {
        if (decision.events.length > 0 && clientIp) await recordAddress(runner, claimId, clientIp, agentId);
      },
    });
  }

  private async payOut(claim: Claim, inFirstRequest: boolean): Promise<ClaimReply> {
    try {
      await this.context.commands.request(
        casinoCommands.transfer,
        {
          transferId: claim.claimId,
          from: TREASURY_ACCOUNT,
          to: claim.agentId,
          amountMicros: claim.amountMicros.toString(),
          reason: 'faucet_claim',
          service: 'faucet',
        },
        this.context.config.FAUCET_LEDGER_TIMEOUT_MS,
      );
    } catch (error) {
      throw await this.transferFailed(claim, error);
    }
    const { status } = await this.update(claim, (nowMs) => ({
      kind: 'complete',
      claimId: claim.claimId,
      inFirstRequest,
      nowMs,
    }));
    if (status.status !== 'completed')
      throw new Error(`claim ${claim.claimId} is ${status.status} after its transfer`);
    // The business fact of the faucet, once the money has moved and the claim is recorded.
    this.context.logger.info(
      { claimId: claim.claimId, agentId: claim.agentId, amount_usd: formatUsd(claim.amountMicros) },
      'faucet claim paid',
    );
    return toReply(status.claim, status.claimedAtMs);
  }

  /** Records what a failed transfer means for the claim and returns the error for the caller. */
  private async transferFailed(claim: Claim, error: unknown): Promise<unknown> {
    const code = error instanceof DomainError ? error.code : ErrorCode.internalError;
    if (code === casinoErrors.insufficientBalance) {
      // The budget reservation should make this impossible: only something else draining the
      // treasury leads here. The ledger moved nothing, so the claim ends and frees the agent.
      this.context.logger.error(
        { claimId: claim.claimId },
        'the ledger refused a reserved faucet claim: the treasury holds less than the budget says',
      );
      await this.update(claim, (nowMs) => ({ kind: 'reject', claimId: claim.claimId, nowMs }));
      return new DomainError(
        faucetErrors.faucetEmpty,
        'the faucet treasury is spent; try again after a refill',
      );
    }
    // Whether the transfer ran is unknown: the claim stays pending, marked free for a retry
    // (best effort: if this fails too, the lease runs out and the sweep takes it).
    await this.update(claim, (nowMs) => ({
      kind: 'fail_transfer',
      claimId: claim.claimId,
      code,
      nowMs,
    })).catch((failure: unknown) =>
      this.context.logger.warn(
        { err: (failure as Error).message, claimId: claim.claimId },
        'could not mark a claim as stalled',
      ),
    );
    if (code === ErrorCode.serviceUnavailable || code === ErrorCode.internalError) {
      return new DomainError(
        ErrorCode.serviceUnavailable,
        'the ledger is not answering; your claim is recorded: retry to complete it',
        { claim_id: claim.claimId },
      );
    }
    this.context.logger.error(
      { err: (error as Error).message, code, claimId: claim.claimId },
      'the ledger refused a faucet transfer',
    );
    return error;
  }

  /** Complete, fail or reject: the treasury lock first, as every claim transaction. */
  private update(claim: Claim, build: (nowMs: number) => ClaimCommand): Promise<Decided> {
    return this.pipeline.execute({
      ...this.claimCommand(claim.agentId, claim.claimId),
      load: async (runner) => {
        const treasury = await lockTreasury(runner);
        return this.loadClaim(
          runner,
          claim.agentId,
          { hasDeposits: false, remainingBudgetMicros: treasury.remainingMicros },
          build(treasury.nowMs),
        );
      },
      afterAppend: async (runner, decision) => {
        if (decision.events.some((event) => event.type === 'claim_rejected'))
          await forgetAddress(runner, claim.claimId);
      },
    });
  }

  /**
   * What every claim command shares: its stream, decider, codec, metadata and reply. No
   * pipeline command id: a claim's later commands (complete, reject) carry the claim id too and
   * must not read as repeats of its request; the id goes into the metadata, as before.
   */
  private claimCommand(
    agentId: string,
    claimId: string,
  ): Omit<PipelineCommand<ClaimLoaded, ClaimEvent, Decided>, 'load'> {
    return {
      streamId: claimStream(agentId),
      metadata: { service: 'faucet', commandId: claimId, correlationId: claimId, schemaVersion: 1 },
      decide: (loaded) => claimDecider.decide(loaded.command, loaded.state),
      encode: (event) => encodeFaucetEvent(event),
      reply: (decision) => ({
        status: decision.events.reduce(claimDecider.evolve, decision.loaded.state).claim,
        events: decision.events,
      }),
    };
  }

  private async loadClaim(
    runner: QueryRunner,
    agentId: string,
    context: { hasDeposits: boolean; remainingBudgetMicros: bigint },
    command: ClaimCommand,
  ): Promise<ClaimLoaded> {
    const { state, version } = await loadByFolding(
      this.store,
      runner,
      claimStream(agentId),
      claimDecider,
      (event) => decodeClaimEvent(event.type, event.data),
    );
    return { version, state: { ...state, ...context }, command };
  }
}

function toReply(claim: Claim, claimedAtMs: number): ClaimReply {
  return {
    claimId: claim.claimId,
    agentId: claim.agentId,
    amountMicros: claim.amountMicros.toString(),
    claimedAt: new Date(claimedAtMs).toISOString(),
  };
}
