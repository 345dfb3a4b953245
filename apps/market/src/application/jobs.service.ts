import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  casinoErrors,
  DomainError,
  ErrorCode,
  escrowCommands,
  escrowErrors,
  JOB_ID_PATTERN,
  marketErrors,
  type AwardPolicy,
  type EscrowView,
} from '@pf/contracts';
import { CONFIG, SERVICE_CONTEXT, type ServiceContext } from '@pf/platform';
import { jobPolicy, type MarketConfig } from '../config.js';
import {
  releasableEscrow,
  type Award,
  type Job,
  type JobCommand,
  type JobState,
  type RaceTerms,
} from '../domain/job.js';
import type { JobDecision, JobExecuteOptions, JobRepository } from '../infrastructure/job-repository.js';
import { EscrowOrdersService } from './escrow-orders.service.js';
import { JOB_REPOSITORY } from './tokens.js';

/** Refusals of an escrow create that mean "no" (the award fails and the job stays open); anything else may succeed on retry. */
const FINAL_CREATE_REFUSALS: ReadonlySet<string> = new Set([
  casinoErrors.insufficientBalance,
  casinoErrors.accountNotFound,
  escrowErrors.counterpartyNotFound,
  escrowErrors.escrowIdReused,
  escrowErrors.invalidDescription,
  escrowErrors.invalidTimeout,
  escrowErrors.selfEscrow,
  ErrorCode.invalidAmount,
]);

export interface PostJobInput {
  jobId?: string;
  posterId: string;
  title: string;
  description: string;
  budgetMicros: bigint;
  bidWindowMs: number;
  timeoutMs: number;
  tags: string[];
  awardPolicy: AwardPolicy;
  race: RaceTerms | null;
  invite: string[] | null;
}

type Funding =
  | { escrowId: string; outcome: 'funded' }
  | { escrowId: string; outcome: 'refused'; error: DomainError }
  | { escrowId: string; outcome: 'unknown' };

/**
 * The market's write side: jobs, bids, awards (the escrows they create), cancellations, and
 * what escrow events mean for a job. Money moves only by escrow commands: created here for an
 * award, and cancelled or released from the order outbox (EscrowOrdersService).
 */
@Injectable()
export class JobsService {
  constructor(
    @Inject(JOB_REPOSITORY) private readonly repository: JobRepository,
    @Inject(CONFIG) private readonly config: MarketConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly orders: EscrowOrdersService,
  ) {}

  async post(input: PostJobInput): Promise<Job> {
    const jobId = input.jobId ?? `job_${randomBytes(8).toString('hex')}`;
    const decision = await this.repository.execute(jobId, (nowMs) => ({
      kind: 'post',
      ...input,
      title: input.title.trim(),
      description: input.description.trim(),
      jobId,
      nowMs,
      policy: jobPolicy(this.config),
    }));
    return requireJob(decision.state);
  }

  async bid(
    jobId: string,
    input: { workerId: string; priceMicros: bigint; etaMinutes: number; note: string | null },
    options: JobExecuteOptions,
  ): Promise<{ job: Job; bidId: string }> {
    // A retried bid (same command id) gets the same bid id, so it is recognised and not placed twice.
    const bidId = `bid_${options.commandId ? createHash('sha256').update(`bid\n${jobId}\n${options.commandId}`).digest('hex').slice(0, 16) : randomBytes(8).toString('hex')}`;
    const decision = await this.execute(jobId, (nowMs) => ({ kind: 'bid', bidId, ...input, nowMs }), options);
    return { job: requireJob(decision.state), bidId };
  }

  async withdraw(jobId: string, workerId: string, options: JobExecuteOptions): Promise<Job> {
    return requireJob((await this.execute(jobId, () => ({ kind: 'withdraw', workerId }), options)).state);
  }

  async cancel(jobId: string, actorId: string, options: JobExecuteOptions): Promise<Job> {
    const decision = await this.execute(jobId, () => ({ kind: 'cancel', actorId }), options);
    if (decision.orders.length > 0) this.orders.wakeSoon();
    return requireJob(decision.state);
  }

  /**
   * Records the award (which escrows, with ids derived from job, bid and attempt), then creates
   * them. A retry of the same award, or the recovery sweep, creates the same escrows again and
   * escrow answers with the existing ones: never two escrows for one bid.
   */
  async award(jobId: string, actorId: string, bidIds: string[]): Promise<Job> {
    const decision = await this.execute(jobId, () => ({ kind: 'award', actorId, bidIds }));
    return this.fund(requireJob(decision.state));
  }

  /** Creates the escrows of an award in progress and records the outcome; throws the refusal (402) or a 503. */
  async fund(job: Job): Promise<Job> {
    if (job.status !== 'awarding') return job;
    const fundings = await Promise.all(job.awards.map((award) => this.createEscrow(job, award)));
    if (this.config.MARKET_FAULT === 'after_escrows') process.kill(process.pid, 'SIGKILL');
    const refused = fundings.find((funding) => funding.outcome === 'refused');
    const decision = await this.repository.execute(job.jobId, () => ({
      kind: 'record_funding',
      attempt: job.awardAttempts,
      funded: fundings.filter((funding) => funding.outcome === 'funded').map((funding) => funding.escrowId),
      refused: refused
        ? { escrowId: refused.escrowId, code: refused.error.code, message: refused.error.message }
        : null,
    }));
    if (decision.orders.length > 0) this.orders.wakeSoon();
    if (refused) throw refused.error;
    const after = requireJob(decision.state);
    if (after.status === 'awarding') {
      throw new DomainError(
        ErrorCode.serviceUnavailable,
        `the award of job ${job.jobId} is recorded but escrow did not confirm every escrow; it finishes automatically within seconds. Retrying the same award is safe.`,
        { job_id: job.jobId },
      );
    }
    return after;
  }

  /** The poster has the market release the completed work of a race's winner (or of a single award). */
  async release(jobId: string, actorId: string): Promise<Job> {
    const winner = releasableEscrow(await this.repository.load(this.requireJobId(jobId)), actorId);
    const job = requireJob(await this.repository.load(jobId));
    await this.context.commands.request(
      escrowCommands.release,
      { escrowId: winner.escrowId, actorId, jobId, commandId: `market-release-${winner.escrowId}` },
      this.config.MARKET_ESCROW_TIMEOUT_MS,
    );
    return job;
  }

  private async createEscrow(job: Job, award: Award): Promise<Funding> {
    try {
      await this.context.commands.request<EscrowView>(
        escrowCommands.create,
        {
          escrowId: award.escrowId,
          creatorId: job.posterId,
          counterpartyId: award.workerId,
          amountMicros: award.priceMicros.toString(),
          description: job.description,
          timeoutMs: job.timeoutMs,
          jobId: job.jobId,
          race: job.mode === 'race',
        },
        this.config.MARKET_ESCROW_TIMEOUT_MS,
      );
      return { escrowId: award.escrowId, outcome: 'funded' };
    } catch (error) {
      if (error instanceof DomainError && FINAL_CREATE_REFUSALS.has(error.code))
        return { escrowId: award.escrowId, outcome: 'refused', error };
      this.context.logger.warn(
        { jobId: job.jobId, escrowId: award.escrowId, err: (error as Error).message },
        'escrow create outcome unknown; the award finishes later',
      );
      return { escrowId: award.escrowId, outcome: 'unknown' };
    }
  }

  private execute(
    jobId: string,
    command: (nowMs: number) => JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    return this.repository.execute(this.requireJobId(jobId), command, options);
  }

  private requireJobId(jobId: string): string {
    if (!JOB_ID_PATTERN.test(jobId)) throw new DomainError(marketErrors.jobNotFound, 'no such job');
    return jobId;
  }
}

export function requireJob(state: JobState): Job {
  if (state.status === 'none') throw new DomainError(marketErrors.jobNotFound, 'no such job');
  return state;
}
