import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { casinoCommands, DomainError, ErrorCode, type OperationReply } from '@pf/contracts';
import { CommandPipeline, loadByFolding, type EventStore, type RecordedEvent } from '@pf/event-store';
import type { QueryRunner } from 'typeorm';
import { SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { faucetAmounts, type FaucetConfig } from '../config.js';
import { nextFunding, TREASURY_STREAM, treasuryDecider, type TreasuryState } from '../domain/treasury.js';
import { decodeTreasuryEvent, encodeFaucetEvent } from '../infrastructure/faucet-codec.js';
import { BackgroundTask, type NextStep } from './background-task.js';
import { FAUCET_EVENT_STORE } from './tokens.js';

/** How long after start an unanswering ledger reads as "peers still starting" (info), not a failure (warn). */
const PEER_STARTUP_GRACE_MS = 30_000;

/** The ledger's name for the faucet's account (casino's system account). */
export const TREASURY_ACCOUNT = 'faucet_treasury';
/** Funding rounds one attempt may record; more means replicas disagree on the budget. */
const MAX_ROUNDS_PER_ATTEMPT = 3;
const RETRY_INITIAL_MS = 200;
const RETRY_MAX_MS = 5_000;

/**
 * Funds the treasury from `world` up to the budget (FAUCET_BUDGET_MICROS) at start, in the background: casino
 * may not be up yet, so it retries with a bounded backoff until the ledger confirms. Until
 * then this instance answers claims with 503 service_unavailable.
 */
@Injectable()
export class TreasuryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private funded = false;
  private inlineFunding?: Promise<void>;
  private retryDelayMs = RETRY_INITIAL_MS;
  private readonly task: BackgroundTask;
  private readonly pipeline: CommandPipeline;

  constructor(
    @Inject(FAUCET_EVENT_STORE) private readonly store: EventStore,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext<FaucetConfig>,
  ) {
    this.pipeline = new CommandPipeline(store);
    this.task = new BackgroundTask('treasury-funding', context.logger, () => this.fundStep());
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  isFunded(): boolean {
    return this.funded;
  }

  /**
   * Claims need a funded treasury. If the background funding has not got through yet (casino
   * was slower to start), the first claim tries it itself once — the funding round is an
   * idempotent transfer, so racing the background task or other replicas is harmless — and
   * only if that fails too does the claim get 503.
   */
  async ensureFunded(): Promise<void> {
    if (this.funded) return;
    this.inlineFunding ??= this.fundToBudget().finally(() => (this.inlineFunding = undefined));
    try {
      await this.inlineFunding;
      this.funded = true;
    } catch {
      throw new DomainError(
        ErrorCode.serviceUnavailable,
        'the faucet treasury is not funded yet (the ledger has not answered): retry shortly',
      );
    }
  }

  /** One attempt; the task retries it until the treasury holds the configured budget. */
  private async fundStep(): Promise<NextStep> {
    try {
      await this.fundToBudget();
      this.funded = true;
      this.context.logger.info(
        { budgetMicros: faucetAmounts(this.context.config).budgetMicros.toString() },
        'faucet treasury funded',
      );
      return 'done';
    } catch (error) {
      const delayMs = this.retryDelayMs;
      this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
      const code = (error as { code?: string }).code;
      const fields = { err: (error as Error).message, code, retryInMs: delayMs };
      if (code !== ErrorCode.serviceUnavailable) {
        this.context.logger.error(fields, 'faucet treasury funding failed, retrying');
      } else if (Date.now() - this.context.startedAtMs < PEER_STARTUP_GRACE_MS) {
        // Casino usually starts a moment after the faucet: waiting for it is expected, not a failure.
        this.context.logger.info(fields, 'faucet treasury: waiting for the ledger (casino) to answer');
      } else {
        this.context.logger.warn(
          fields,
          'faucet treasury funding failed: the ledger is not answering, retrying',
        );
      }
      return { againInMs: delayMs };
    }
  }

  /**
   * Sends the next funding round (an idempotent ledger transfer with a fixed id), then records
   * it through the pipeline with the transfer id as command id. A crash between the two resends
   * the same round at the next start; another replica recording it first is a replay (the
   * pipeline finds the command id in the stream) or, by the decider, a no-op.
   */
  private async fundToBudget(): Promise<void> {
    for (let pass = 1; pass <= MAX_ROUNDS_PER_ATTEMPT; pass += 1) {
      const { state } = await this.store.transaction((runner) => this.loadTreasury(runner));
      const next = nextFunding(state, faucetAmounts(this.context.config).budgetMicros);
      if (!next) return;
      const reply = await this.context.commands.request<OperationReply>(
        casinoCommands.transfer,
        {
          transferId: next.transferId,
          from: 'world',
          to: TREASURY_ACCOUNT,
          amountMicros: next.amountMicros.toString(),
          reason: 'faucet_funding',
          service: 'faucet',
        },
        this.context.config.FAUCET_LEDGER_TIMEOUT_MS,
      );
      if (BigInt(reply.amountMicros) !== next.amountMicros)
        throw new Error(
          `funding ${next.transferId}: the ledger moved ${reply.amountMicros}, expected ${next.amountMicros}`,
        );
      await this.pipeline.execute({
        streamId: TREASURY_STREAM,
        commandId: next.transferId,
        metadata: { service: 'faucet', schemaVersion: 1 },
        load: (runner) => this.loadTreasury(runner),
        decide: (loaded) => treasuryDecider.decide({ kind: 'record_funding', ...next }, loaded.state),
        encode: (event) => encodeFaucetEvent(event),
        reply: () => undefined,
      });
    }
    throw new Error(`the treasury is still below the budget after ${MAX_ROUNDS_PER_ATTEMPT} funding rounds`);
  }

  private loadTreasury(
    runner: QueryRunner,
  ): Promise<{ state: TreasuryState; version: number; history: RecordedEvent[] }> {
    return loadByFolding(this.store, runner, TREASURY_STREAM, treasuryDecider, (event) =>
      decodeTreasuryEvent(event.type, event.data),
    );
  }
}
