import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import {
  awardJobCommandSchema,
  cancelJobCommandSchema,
  eventStreams,
  getJobCommandSchema,
  listJobsCommandSchema,
  marketCommands,
  myJobsCommandSchema,
  parseOrThrow as parse,
  placeBidCommandSchema,
  postJobCommandSchema,
  releaseJobCommandSchema,
  withdrawBidCommandSchema,
  type EventEnvelope,
  type JobListReply,
  type JobView,
} from '@pf/contracts';
import type { NatsEventContext } from '@pf/messaging';
import { EscrowEventsService } from '../application/escrow-events.service.js';
import { JobQueriesService, jobView } from '../application/job-queries.service.js';
import { JobsService } from '../application/jobs.service.js';
import { ReputationService } from '../application/reputation.service.js';

/** Market's command handlers and the escrow events it follows: validate the payload, call one service, reply. */
@Controller()
export class MarketHandlers {
  constructor(
    private readonly jobs: JobsService,
    private readonly queries: JobQueriesService,
    private readonly escrowEvents: EscrowEventsService,
    private readonly reputation: ReputationService,
  ) {}

  @MessagePattern(marketCommands.post)
  async post(@Payload() payload: unknown): Promise<JobView> {
    const input = parse(postJobCommandSchema, payload);
    const job = await this.jobs.post({
      ...input,
      race: input.race ? { workers: input.race.workers, autoRelease: input.race.autoRelease } : null,
    });
    return jobView(job);
  }

  @MessagePattern(marketCommands.bid)
  async bid(@Payload() payload: unknown): Promise<{ job: JobView; bidId: string }> {
    const { jobId, commandId, ...input } = parse(placeBidCommandSchema, payload);
    const { job, bidId } = await this.jobs.bid(jobId, input, { commandId });
    return { job: jobView(job), bidId };
  }

  @MessagePattern(marketCommands.withdraw)
  async withdraw(@Payload() payload: unknown): Promise<JobView> {
    const { jobId, workerId, commandId } = parse(withdrawBidCommandSchema, payload);
    return jobView(await this.jobs.withdraw(jobId, workerId, { commandId }));
  }

  @MessagePattern(marketCommands.award)
  async award(@Payload() payload: unknown): Promise<JobView> {
    const { jobId, actorId, bidIds } = parse(awardJobCommandSchema, payload);
    return jobView(await this.jobs.award(jobId, actorId, bidIds));
  }

  @MessagePattern(marketCommands.cancel)
  async cancel(@Payload() payload: unknown): Promise<JobView> {
    const { jobId, actorId, commandId } = parse(cancelJobCommandSchema, payload);
    return jobView(await this.jobs.cancel(jobId, actorId, { commandId }));
  }

  @MessagePattern(marketCommands.release)
  async release(@Payload() payload: unknown): Promise<JobView> {
    const { jobId, actorId } = parse(releaseJobCommandSchema, payload);
    return jobView(await this.jobs.release(jobId, actorId));
  }

  @MessagePattern(marketCommands.get)
  get(@Payload() payload: unknown): Promise<JobView> {
    const { jobId, viewerId } = parse(getJobCommandSchema, payload);
    return this.queries.get(jobId, viewerId);
  }

  @MessagePattern(marketCommands.list)
  list(@Payload() payload: unknown): Promise<JobListReply> {
    return this.queries.list(parse(listJobsCommandSchema, payload));
  }

  @MessagePattern(marketCommands.mine)
  mine(@Payload() payload: unknown): Promise<JobListReply> {
    return this.queries.mine(parse(myJobsCommandSchema, payload));
  }

  /** Every escrow event: reputation records it; only those about this market's escrows decide a job (see EscrowEventsService). */
  @EventPattern<string>(eventStreams.escrow.subjects)
  async onEscrowEvent(@Payload() envelope: EventEnvelope, @Ctx() context: NatsEventContext): Promise<void> {
    // Reputation records every escrow's facts first (idempotent on the event id), then the job decides.
    await this.reputation.onEscrowEvent(envelope);
    await this.escrowEvents.onEscrowEvent(envelope, context.getConsumer());
  }
}
