import { createHash } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { prepared, type Projection, type ProjectionTarget, type RecordedEvent } from '@pf/event-store';
import {
  applyEscrowFact,
  applyJobFact,
  emptyEscrowFacts,
  type EscrowFacts,
  type JobFacts,
} from '../domain/reputation.js';

/**
 * The market's log carries, besides its own job events, the escrow facts reputation needs:
 * `escrow_observed` (one per escrow event, stream `rep-<escrowId>`, event id derived from the
 * escrow event's id so a redelivery appends nothing) and `rating_given` (same stream). So the
 * reputation tables are a pure function of the market's log and `ops replay market` rebuilds
 * them. These events carry no `jobId`: they are not job events (the job SSE skips them).
 */
export const REPUTATION_EVENT_TYPES = { observed: 'escrow_observed', rating: 'rating_given' } as const;

export const reputationStreamOf = (escrowId: string) => `rep-${escrowId}`;

/** A uuid derived from the escrow event's id: the same escrow event is recorded once. */
export function observedEventId(escrowEventId: string): string {
  const hex = createHash('sha256').update(`reputation:${escrowEventId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export interface ObservedEscrowData {
  escrowId: string;
  sourceEventId: string;
  escrowEvent: string;
  occurredAt: string;
  /** The escrow event's data; `jobId` renamed `escrowJobId` (see above). */
  facts: Record<string, unknown>;
}

export interface RatingGivenData {
  escrowId: string;
  raterId: string;
  rateeId: string;
  score: number;
  comment: string | null;
  amountMicros: string;
}

export function encodeEscrowFacts(facts: EscrowFacts): Record<string, unknown> {
  return {
    ...facts,
    amountMicros: facts.amountMicros.toString(),
    earnedMicros: facts.earnedMicros.toString(),
  };
}

export function decodeEscrowFacts(json: Record<string, unknown>): EscrowFacts {
  return {
    ...(json as unknown as EscrowFacts),
    amountMicros: BigInt(json.amountMicros as string),
    earnedMicros: BigInt(json.earnedMicros as string),
  };
}

export const reputationProjection: Projection = {
  name: 'reputation_read_model',
  tables: ['rep_escrows', 'rep_jobs', 'rep_ratings'],
  createTables: (target) => [
    `CREATE TABLE ${target.table('rep_escrows')} (
      escrow_id text PRIMARY KEY,
      creator_id text NULL,
      worker_id text NULL,
      facts jsonb NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('rep_escrows')} (creator_id)`,
    `CREATE INDEX ON ${target.table('rep_escrows')} (worker_id)`,
    `CREATE TABLE ${target.table('rep_jobs')} (
      job_id text PRIMARY KEY,
      poster_id text NOT NULL,
      posted_at text NOT NULL,
      awarded_workers text[] NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('rep_jobs')} (poster_id)`,
    `CREATE INDEX ON ${target.table('rep_jobs')} USING gin (awarded_workers)`,
    `CREATE TABLE ${target.table('rep_ratings')} (
      escrow_id text NOT NULL,
      rater_id text NOT NULL,
      ratee_id text NOT NULL,
      score smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
      comment text NULL,
      amount_micros bigint NOT NULL,
      rated_at timestamptz NOT NULL,
      position bigint NOT NULL,
      PRIMARY KEY (escrow_id, rater_id)
    )`,
    `CREATE INDEX ON ${target.table('rep_ratings')} (ratee_id, position DESC)`,
  ],
  apply: async (runner, events, target) => {
    for (const recorded of events) {
      if (recorded.type === REPUTATION_EVENT_TYPES.observed) await applyObserved(runner, recorded, target);
      else if (recorded.type === REPUTATION_EVENT_TYPES.rating) await applyRating(runner, recorded, target);
      else if (recorded.type === 'job_posted' || recorded.type === 'job_awarded')
        await applyJob(runner, recorded, target);
    }
  },
};

async function applyObserved(runner: QueryRunner, recorded: RecordedEvent, target: ProjectionTarget) {
  const data = recorded.data as unknown as ObservedEscrowData;
  const table = target.table('rep_escrows');
  const rows: Array<{ facts: Record<string, unknown> }> = await runner.query(
    prepared(`SELECT facts FROM ${table} WHERE escrow_id = $1`),
    [data.escrowId],
  );
  const before = rows[0] ? decodeEscrowFacts(rows[0].facts) : emptyEscrowFacts(data.escrowId);
  const { escrowJobId, ...rest } = data.facts;
  const after = applyEscrowFact(before, {
    type: data.escrowEvent,
    occurredAt: data.occurredAt,
    data: { ...rest, jobId: escrowJobId ?? null },
  });
  if (!after) return;
  await runner.query(
    prepared(`INSERT INTO ${table} (escrow_id, creator_id, worker_id, facts) VALUES ($1, $2, $3, $4)
     ON CONFLICT (escrow_id) DO UPDATE SET creator_id = $2, worker_id = $3, facts = $4`),
    [data.escrowId, after.creatorId, after.workerId, JSON.stringify(encodeEscrowFacts(after))],
  );
}

async function applyRating(runner: QueryRunner, recorded: RecordedEvent, target: ProjectionTarget) {
  const data = recorded.data as unknown as RatingGivenData;
  await runner.query(
    prepared(`INSERT INTO ${target.table('rep_ratings')} (escrow_id, rater_id, ratee_id, score, comment, amount_micros, rated_at, position)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
    [
      data.escrowId,
      data.raterId,
      data.rateeId,
      data.score,
      data.comment,
      data.amountMicros,
      recorded.recordedAt,
      recorded.globalPosition,
    ],
  );
}

async function applyJob(runner: QueryRunner, recorded: RecordedEvent, target: ProjectionTarget) {
  const table = target.table('rep_jobs');
  const jobId = String(recorded.data.jobId);
  const rows: Array<{ poster_id: string; posted_at: string; awarded_workers: string[] }> = await runner.query(
    prepared(`SELECT poster_id, posted_at, awarded_workers FROM ${table} WHERE job_id = $1`),
    [jobId],
  );
  const before: JobFacts | undefined = rows[0]
    ? {
        jobId,
        posterId: rows[0].poster_id,
        postedAt: rows[0].posted_at,
        awardedWorkers: rows[0].awarded_workers,
      }
    : undefined;
  const after = applyJobFact(before, {
    type: recorded.type,
    occurredAt: recorded.recordedAt.toISOString(),
    data: recorded.data,
  });
  if (!after) return;
  await runner.query(
    prepared(`INSERT INTO ${table} (job_id, poster_id, posted_at, awarded_workers) VALUES ($1, $2, $3, $4)
     ON CONFLICT (job_id) DO UPDATE SET awarded_workers = $4`),
    [after.jobId, after.posterId, after.postedAt, after.awardedWorkers],
  );
}
