import { Inject, Injectable } from '@nestjs/common';
import { prepared, type EventStore } from '@pf/event-store';
import { CONFIG, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import type { MarketConfig } from '../config.js';
import type { Job } from '../domain/job.js';
import { decodeJobState } from '../infrastructure/job-codec.js';
import type { JobRepository, JobRow } from '../infrastructure/job-repository.js';
import { EscrowOrdersService } from './escrow-orders.service.js';
import { JobsService } from './jobs.service.js';
import { ReputationService } from './reputation.service.js';
import { JOB_REPOSITORY, MARKET_EVENT_STORE } from './tokens.js';

/** Stuck awards finished per pass. */
const RECOVERY_BATCH_SIZE = 50;
/** Log a failing pass the first time and then every this many passes. */
const FAILURE_LOG_EVERY = 30;

export interface MarketSweepStats {
  passes: number;
  windowsClosed: number;
  awardsRecovered: number;
  ordersSent: number;
  failedPasses: number;
}

/**
 * The market's background work, every MARKET_SWEEP_INTERVAL_MS (and at start):
 * 1. The bid-window saga: due deadline rows (`due_at <= now()`, the database's clock) are claimed
 *    with FOR UPDATE SKIP LOCKED with their job rows, so replicas never close one twice; each
 *    becomes the automatic award (or a cancellation without bids) in the transaction that
 *    deletes the row. The award's escrows are created right after.
 * 2. Awards cut off between their start and the record of their escrows (a crash, escrow away)
 *    are finished with the same escrow ids.
 * 3. The escrow-order outbox: cancels and releases not yet confirmed by escrow are sent again.
 */
@Injectable()
export class MarketSweeper {
  readonly stats: MarketSweepStats = {
    passes: 0,
    windowsClosed: 0,
    awardsRecovered: 0,
    ordersSent: 0,
    failedPasses: 0,
  };
  private readonly claimSql: string;
  private readonly stuckSql: string;
  private running?: Promise<void>;
  private stopping = false;
  private wake?: () => void;

  constructor(
    @Inject(JOB_REPOSITORY) private readonly repository: JobRepository,
    @Inject(MARKET_EVENT_STORE) store: EventStore,
    @Inject(CONFIG) private readonly config: MarketConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly jobs: JobsService,
    private readonly orders: EscrowOrdersService,
    private readonly reputation: ReputationService,
  ) {
    const schema = store.schema;
    this.claimSql = `
      SELECT j.job_id, j.state, j.version, (extract(epoch FROM now()) * 1000)::float8 AS now_ms
      FROM ${schema}.deadlines d JOIN ${schema}.jobs j USING (job_id)
      WHERE d.due_at <= now() ORDER BY d.due_at LIMIT $1
      FOR UPDATE OF d, j SKIP LOCKED`;
    this.stuckSql = `SELECT job_id FROM ${schema}.jobs WHERE status = 'awarding' AND awarding_since < now() - $1 * interval '1 millisecond' ORDER BY awarding_since LIMIT $2`;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    this.running = undefined;
    this.orders.stop();
  }

  async sweepOnce(): Promise<void> {
    const awarding = await this.closeDueWindows();
    await Promise.all(awarding.map((job) => this.finishAward(job)));
    await this.recoverStuckAwards();
    this.stats.ordersSent += await this.orders.sendDue();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.sweepOnce();
        this.stats.passes += 1;
      } catch (error) {
        this.stats.failedPasses += 1;
        if (this.stats.failedPasses % FAILURE_LOG_EVERY === 1)
          this.context.logger.warn({ err: (error as Error).message }, 'market sweep failed; retrying');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.config.MARKET_SWEEP_INTERVAL_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One transaction: claim due windows (SKIP LOCKED), decide each, delete the rows the decision did not. */
  private async closeDueWindows(): Promise<Job[]> {
    const schema = this.repository.store.schema;
    return this.repository.store.transaction(async (runner) => {
      const rows: JobRow[] = await runner.query(prepared(this.claimSql), [
        this.config.MARKET_SWEEP_BATCH_SIZE,
      ]);
      const awarding: Job[] = [];
      for (const row of rows) {
        const decision = await this.repository.decideAndAppend(runner, row.job_id, row, {
          kind: 'close_window',
          workerScores: await this.bidderScores(row),
        });
        if (decision.state.status === 'awarding') awarding.push(decision.state);
        this.stats.windowsClosed += 1;
      }
      if (rows.length > 0)
        await runner.query(`DELETE FROM ${schema}.deadlines WHERE job_id = ANY($1::text[])`, [
          rows.map((row) => row.job_id),
        ]);
      return awarding;
    });
  }

  /** Reputation scores of the bidders of a `best_reputation` job (ADR 0015); other policies need none. */
  private async bidderScores(row: JobRow): Promise<Record<string, number>> {
    const job = decodeJobState(row.state);
    if (job.status === 'none' || job.awardPolicy !== 'best_reputation') return {};
    return Object.fromEntries(await this.reputation.workerScores(job.bids.map((bid) => bid.workerId)));
  }

  private async recoverStuckAwards(): Promise<void> {
    const rows: Array<{ job_id: string }> = await this.repository.store.dataSource.query(this.stuckSql, [
      this.config.MARKET_AWARD_RECOVERY_AFTER_MS,
      RECOVERY_BATCH_SIZE,
    ]);
    for (const row of rows) {
      const state = await this.repository.load(row.job_id);
      if (state.status !== 'awarding') continue;
      if (await this.finishAward(state)) {
        this.stats.awardsRecovered += 1;
        this.context.logger.info(
          { jobId: row.job_id },
          'finished an award cut off before its escrows were recorded',
        );
      }
    }
  }

  /** Creates the award's escrows; a refusal (the poster's balance) or escrow away is logged, not thrown. */
  private async finishAward(job: Job): Promise<boolean> {
    try {
      await this.jobs.fund(job);
      return true;
    } catch (error) {
      this.context.logger.warn(
        { jobId: job.jobId, err: (error as Error).message },
        'automatic award not funded',
      );
      return false;
    }
  }
}
