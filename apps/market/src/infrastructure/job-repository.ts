import type { QueryRunner } from 'typeorm';
import {
  CommandPipeline,
  prepared,
  type Decision,
  type EventStore,
  type GroupCommitOptions,
  type LoadedBase,
  type PipelineCommand,
} from '@pf/event-store';
import {
  jobDecider,
  ordersOf,
  type EscrowOrder,
  type JobCommand,
  type JobEvent,
  type JobState,
} from '../domain/job.js';
import { decodeJobState, encodeJobEvent, JOB_EVENT_SCHEMA_VERSION } from './job-codec.js';

export interface JobRow {
  job_id: string;
  state: Record<string, unknown>;
  version: number;
  now_ms: number;
}

export interface JobDecision {
  before: JobState;
  state: JobState;
  events: JobEvent[];
  orders: EscrowOrder[];
}

export interface JobExecuteOptions {
  commandId?: string;
}

export function jobStream(jobId: string): string {
  return `job-${jobId}`;
}

/** What a job command decides on: the locked row's state and the command built with its clock. */
interface JobLoaded extends LoadedBase {
  before: JobState;
  command: JobCommand;
}

export interface JobRepositoryOptions {
  /** Group commit for `execute` (off when absent): commands arriving meanwhile share the next transaction. */
  groupCommit?: GroupCommitOptions;
}

/**
 * Runs job commands through the CommandPipeline (ADR 0021): one transaction each (or one per
 * group-commit batch), under the job row's lock, so that commands on one job, the escrow events
 * about it and the sweeper take turns instead of conflicting. The locked row holds the job's
 * state (the inline projection writes it in every append's transaction, so it is the stream's
 * fold) and the database's clock, the only clock decisions use. Then decide, append with the
 * row's version as the expected version, and write the escrow orders the decision owes, in the
 * same transaction.
 */
export class JobRepository {
  private readonly lockSql: string;
  private readonly clockSql = `SELECT (extract(epoch FROM now()) * 1000)::float8 AS now_ms`;
  private readonly ordersSql: string;
  private readonly pipeline: CommandPipeline;

  constructor(
    readonly store: EventStore,
    options: JobRepositoryOptions = {},
  ) {
    const schema = store.schema;
    this.lockSql = `SELECT job_id, state, version, (extract(epoch FROM now()) * 1000)::float8 AS now_ms FROM ${schema}.jobs WHERE job_id = $1 FOR UPDATE`;
    this.ordersSql = `
      INSERT INTO ${schema}.escrow_orders (escrow_id, kind, job_id, reason, actor_id)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
      ON CONFLICT (escrow_id, kind) DO NOTHING`;
    this.pipeline = new CommandPipeline(store, { groupCommit: options.groupCommit });
  }

  /** `command` is built with the database's clock (`nowMs`) once the row is locked. */
  execute(
    jobId: string,
    command: (nowMs: number) => JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    return this.pipeline.execute(
      this.jobCommand(jobId, (runner) => this.lockRow(runner, jobId, command), options),
    );
  }

  /** For callers with their own transaction (the escrow-event inbox). */
  async lockAndDecide(
    runner: QueryRunner,
    jobId: string,
    command: (nowMs: number) => JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    const spec = this.jobCommand(jobId, (inner) => this.lockRow(inner, jobId, command), options);
    return spec.reply(await this.pipeline.decideIn(runner, spec));
  }

  /** For callers that locked the row themselves (the sweeper, SKIP LOCKED). */
  async decideAndAppend(
    runner: QueryRunner,
    jobId: string,
    row: JobRow | undefined,
    command: JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    const spec = this.jobCommand(jobId, async () => this.loaded(row, command), options);
    return spec.reply(await this.pipeline.decideIn(runner, spec));
  }

  private async lockRow(
    runner: QueryRunner,
    jobId: string,
    command: (nowMs: number) => JobCommand,
  ): Promise<JobLoaded> {
    const rows: JobRow[] = await runner.query(prepared(this.lockSql), [jobId]);
    const nowMs =
      rows[0]?.now_ms ?? ((await runner.query(this.clockSql)) as Array<{ now_ms: number }>)[0]!.now_ms;
    return this.loaded(rows[0], command(Math.floor(nowMs)));
  }

  private loaded(row: JobRow | undefined, command: JobCommand): JobLoaded {
    return {
      version: row?.version ?? 0,
      before: row ? decodeJobState(row.state) : jobDecider.initialState(),
      command,
    };
  }

  private jobCommand(
    jobId: string,
    load: (runner: QueryRunner) => Promise<JobLoaded>,
    options: JobExecuteOptions,
  ): PipelineCommand<JobLoaded, JobEvent, JobDecision> {
    return {
      streamId: jobStream(jobId),
      // Event ids derive from the command id, so a retried post or bid is recognised by the store.
      commandId: options.commandId,
      metadata: { service: 'market', schemaVersion: JOB_EVENT_SCHEMA_VERSION },
      load,
      decide: (loaded) => jobDecider.decide(loaded.command, loaded.before),
      encode: (event) => encodeJobEvent(event),
      afterAppend: (runner, decision) => {
        const { state, orders } = this.outcome(decision);
        return this.writeOrders(runner, orders, jobId, state);
      },
      reply: (decision) => ({ before: decision.loaded.before, ...this.outcome(decision) }),
    };
  }

  private outcome(decision: Decision<JobLoaded, JobEvent>): Omit<JobDecision, 'before'> {
    const events = [...decision.events];
    const state = events.reduce(jobDecider.evolve, decision.loaded.before);
    return { state, events, orders: events.length > 0 ? ordersOf(events, state) : [] };
  }

  private async writeOrders(
    runner: QueryRunner,
    orders: readonly EscrowOrder[],
    jobId: string,
    state: JobState,
  ): Promise<void> {
    if (orders.length === 0) return;
    if (state.status === 'none') throw new Error('escrow orders for a job that does not exist');
    await runner.query(prepared(this.ordersSql), [
      orders.map((order) => order.escrowId),
      orders.map((order) => order.kind),
      orders.map(() => jobId),
      orders.map((order) => order.reason),
      orders.map(() => state.posterId),
    ]);
  }

  /** The job's state as last committed (no lock). */
  async load(jobId: string): Promise<JobState> {
    const rows: Array<{ state: Record<string, unknown> }> = await this.store.dataSource.query(
      prepared(`SELECT state FROM ${this.store.schema}.jobs WHERE job_id = $1`),
      [jobId],
    );
    return rows[0] ? decodeJobState(rows[0].state) : jobDecider.initialState();
  }
}
