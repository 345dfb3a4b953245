import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { isVersionConflict, nameBasedUuid, prepared, type EventStore } from '@pf/event-store';
import {
  jobDecider,
  ordersOf,
  type EscrowOrder,
  type JobCommand,
  type JobEvent,
  type JobState,
} from '../domain/job.js';
import { decodeJobState, encodeJobEvent, JOB_EVENT_SCHEMA_VERSION } from './job-codec.js';

/** Version conflicts (two posts with one caller-chosen id) are retried this many times. */
const MAX_CONFLICT_RETRIES = 10;

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

/**
 * Runs job commands: one transaction each, under the job row's lock, so that commands on one job,
 * the escrow events about it and the sweeper take turns instead of conflicting. The locked row
 * holds the job's state (the inline projection writes it in every append's transaction, so it
 * is the stream's fold) and the database's clock, the only clock decisions use. Then decide,
 * append with the row's version as the expected version, and write the escrow orders the
 * decision owes, in the same transaction.
 */
export class JobRepository {
  private readonly lockSql: string;
  private readonly clockSql = `SELECT (extract(epoch FROM now()) * 1000)::float8 AS now_ms`;
  private readonly ordersSql: string;

  constructor(readonly store: EventStore) {
    const schema = store.schema;
    this.lockSql = `SELECT job_id, state, version, (extract(epoch FROM now()) * 1000)::float8 AS now_ms FROM ${schema}.jobs WHERE job_id = $1 FOR UPDATE`;
    this.ordersSql = `
      INSERT INTO ${schema}.escrow_orders (escrow_id, kind, job_id, reason, actor_id)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
      ON CONFLICT (escrow_id, kind) DO NOTHING`;
  }

  /** `command` is built with the database's clock (`nowMs`) once the row is locked. */
  async execute(
    jobId: string,
    command: (nowMs: number) => JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.store.transaction((runner) => this.lockAndDecide(runner, jobId, command, options));
      } catch (error) {
        if (!isVersionConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  /** For callers with their own transaction (the escrow-event inbox, the sweeper). */
  async lockAndDecide(
    runner: QueryRunner,
    jobId: string,
    command: (nowMs: number) => JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    const rows: JobRow[] = await runner.query(prepared(this.lockSql), [jobId]);
    const nowMs =
      rows[0]?.now_ms ?? ((await runner.query(this.clockSql)) as Array<{ now_ms: number }>)[0]!.now_ms;
    return this.decideAndAppend(runner, jobId, rows[0], command(Math.floor(nowMs)), options);
  }

  async decideAndAppend(
    runner: QueryRunner,
    jobId: string,
    row: JobRow | undefined,
    command: JobCommand,
    options: JobExecuteOptions = {},
  ): Promise<JobDecision> {
    const before = row ? decodeJobState(row.state) : jobDecider.initialState();
    const events = jobDecider.decide(command, before);
    const state = events.reduce(jobDecider.evolve, before);
    if (events.length === 0) return { before, state, events, orders: [] };
    const streamId = jobStream(jobId);
    await this.store.appendInTransaction(
      runner,
      streamId,
      row?.version ?? 0,
      events.map((event, index) => ({
        eventId: options.commandId
          ? nameBasedUuid(`${options.commandId}/${streamId}/${index}`)
          : randomUUID(),
        ...encodeJobEvent(event),
        metadata: {
          service: 'market',
          schemaVersion: JOB_EVENT_SCHEMA_VERSION,
          ...(options.commandId ? { commandId: options.commandId } : {}),
        },
      })),
    );
    const orders = ordersOf(events, state);
    await this.writeOrders(runner, orders, jobId, state);
    return { before, state, events, orders };
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
