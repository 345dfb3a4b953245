import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  JOB_ID_PATTERN,
  marketErrors,
  type BidStatus,
  type BidView,
  type JobListReply,
  type JobView,
  type ListJobsCommand,
  type MyJobsCommand,
} from '@pf/contracts';
import { prepared, type EventStore } from '@pf/event-store';
import type { Job } from '../domain/job.js';
import { decodeJobState } from '../infrastructure/job-codec.js';
import { MARKET_EVENT_STORE } from './tokens.js';

interface JobRow {
  state: Record<string, unknown>;
  posted_position: string;
  bid_count?: number;
}

interface BidRow {
  bid_id: string;
  job_id: string;
  worker_id: string;
  price_micros: string;
  eta_minutes: number;
  note: string | null;
  status: BidStatus;
  placed_at: Date;
}

/** The board and a job's page, read from the inline projection (committed with every append). */
@Injectable()
export class JobQueriesService {
  private readonly schema: string;

  constructor(@Inject(MARKET_EVENT_STORE) private readonly store: EventStore) {
    this.schema = store.schema;
  }

  /** Newest first; the cursor is the last job's place on the previous page. */
  async list(
    query: Required<Pick<ListJobsCommand, 'status' | 'limit'>> & Pick<ListJobsCommand, 'tag' | 'cursor'>,
  ): Promise<JobListReply> {
    const cursor = query.cursor && /^\d{1,18}$/.test(query.cursor) ? query.cursor : null;
    const rows: JobRow[] = await this.store.dataSource.query(
      prepared(`SELECT state, posted_position::text AS posted_position FROM ${this.schema}.jobs
       WHERE ($1::text = 'all' OR status = $1::text) AND ($2::text IS NULL OR $2::text = ANY(tags)) AND ($3::bigint IS NULL OR posted_position < $3::bigint)
       ORDER BY posted_position DESC LIMIT $4`),
      [query.status, query.tag ?? null, cursor, query.limit + 1],
    );
    const page = rows.slice(0, query.limit);
    return {
      jobs: page.map((row) => jobView(decodeJob(row))),
      nextCursor: rows.length > query.limit ? page[page.length - 1]!.posted_position : null,
    };
  }

  /** The poster and the bidders see the bids; anyone else sees how many there are. */
  async get(jobId: string, viewerId?: string): Promise<JobView> {
    if (!JOB_ID_PATTERN.test(jobId)) throw new DomainError(marketErrors.jobNotFound, 'no such job');
    const rows: JobRow[] = await this.store.dataSource.query(
      prepared(
        `SELECT state, posted_position::text AS posted_position FROM ${this.schema}.jobs WHERE job_id = $1`,
      ),
      [jobId],
    );
    if (!rows[0]) throw new DomainError(marketErrors.jobNotFound, 'no such job');
    const job = decodeJob(rows[0]);
    const view = jobView(job);
    if (!viewerId) return view;
    const bids: BidRow[] = await this.store.dataSource.query(
      prepared(`SELECT bid_id, job_id, worker_id, price_micros::text AS price_micros, eta_minutes, note, status, placed_at FROM ${this.schema}.bids
       WHERE job_id = $1 AND status NOT IN ('replaced', 'withdrawn') ORDER BY position`),
      [jobId],
    );
    const isBidder =
      bids.some((bid) => bid.worker_id === viewerId) || job.bids.some((bid) => bid.workerId === viewerId);
    return viewerId === job.posterId || isBidder ? { ...view, bids: bids.map(bidView) } : view;
  }

  async mine(query: Required<MyJobsCommand>): Promise<JobListReply> {
    const sql =
      query.role === 'poster'
        ? `SELECT state, posted_position::text AS posted_position FROM ${this.schema}.jobs WHERE poster_id = $1 ORDER BY posted_position DESC LIMIT $2`
        : `SELECT j.state, j.posted_position::text AS posted_position FROM ${this.schema}.jobs j
           WHERE j.job_id IN (SELECT DISTINCT job_id FROM ${this.schema}.bids WHERE worker_id = $1) ORDER BY j.posted_position DESC LIMIT $2`;
    const rows: JobRow[] = await this.store.dataSource.query(prepared(sql), [query.agentId, query.limit]);
    return { jobs: rows.map((row) => jobView(decodeJob(row))), nextCursor: null };
  }
}

function decodeJob(row: JobRow): Job {
  return decodeJobState(row.state) as Job;
}

export function jobView(job: Job): JobView {
  return {
    jobId: job.jobId,
    posterId: job.posterId,
    title: job.title,
    description: job.description,
    budgetMicros: job.budgetMicros.toString(),
    status: job.status,
    tags: job.tags,
    awardPolicy: job.awardPolicy,
    race: job.race,
    invite: job.invite,
    timeoutMs: job.timeoutMs,
    postedAt: job.postedAt,
    bidsCloseAt: job.bidsCloseAt,
    bidCount: job.bids.length,
    awards: job.awards.map((award) => ({
      bidId: award.bidId,
      workerId: award.workerId,
      escrowId: award.escrowId,
      priceMicros: award.priceMicros.toString(),
      escrowStatus: award.escrow,
      race: award.race,
    })),
    winnerEscrowId: job.winnerEscrowId,
  };
}

function bidView(row: BidRow): BidView {
  return {
    bidId: row.bid_id,
    jobId: row.job_id,
    workerId: row.worker_id,
    priceMicros: row.price_micros,
    etaMinutes: row.eta_minutes,
    note: row.note,
    status: row.status,
    placedAt: row.placed_at.toISOString(),
  };
}
