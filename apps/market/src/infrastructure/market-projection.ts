import type { QueryRunner } from 'typeorm';
import { prepared, type Projection, type ProjectionTarget, type RecordedEvent } from '@pf/event-store';
import { jobDecider, type JobEvent, type JobState } from '../domain/job.js';
import { decodeJobEvent, decodeJobState, encodeJobState, JOB_EVENT_TYPES } from './job-codec.js';

/**
 * The market's inline projection, written in the append's transaction:
 * - `jobs`: one row per job with its whole state (the fold of its stream, as JSON), which is
 *   what a command locks and decides on, plus the columns the board filters and sorts by;
 * - `bids`: every bid with its fate (live, replaced, withdrawn, awarded, not_awarded);
 * - `awards`: escrow id → job, so an escrow event finds its job;
 * - `deadlines`: one row per open job with an automatic award policy, due when its bid window
 *   closes; the sweeper claims due rows with FOR UPDATE SKIP LOCKED. Deleted by the award or
 *   the cancellation, so it fires once.
 * A pure function of the log (times are the events' own), so a rebuild equals it.
 */
export const marketProjection: Projection = {
  name: 'market_read_model',
  tables: ['jobs', 'bids', 'awards', 'deadlines'],
  createTables: (target) => [
    `CREATE TABLE ${target.table('jobs')} (
      job_id text PRIMARY KEY,
      poster_id text NOT NULL,
      status text NOT NULL,
      title text NOT NULL,
      tags text[] NOT NULL,
      budget_micros bigint NOT NULL CHECK (budget_micros > 0),
      posted_position bigint NOT NULL,
      posted_at timestamptz NOT NULL,
      awarding_since timestamptz NULL,
      state jsonb NOT NULL,
      version integer NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('jobs')} (status, posted_position DESC)`,
    `CREATE INDEX ON ${target.table('jobs')} (posted_position DESC)`,
    `CREATE INDEX ON ${target.table('jobs')} (poster_id, posted_position DESC)`,
    `CREATE INDEX ON ${target.table('jobs')} (awarding_since) WHERE status = 'awarding'`,
    `CREATE TABLE ${target.table('bids')} (
      bid_id text PRIMARY KEY,
      job_id text NOT NULL,
      worker_id text NOT NULL,
      price_micros bigint NOT NULL,
      eta_minutes integer NOT NULL,
      note text NULL,
      status text NOT NULL,
      placed_at timestamptz NOT NULL,
      position bigint NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('bids')} (job_id, position)`,
    `CREATE INDEX ON ${target.table('bids')} (worker_id, position DESC)`,
    `CREATE TABLE ${target.table('awards')} (
      escrow_id text PRIMARY KEY,
      job_id text NOT NULL,
      bid_id text NOT NULL,
      worker_id text NOT NULL,
      attempt integer NOT NULL,
      price_micros bigint NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('awards')} (job_id)`,
    `CREATE TABLE ${target.table('deadlines')} (
      job_id text PRIMARY KEY,
      due_at timestamptz NOT NULL
    )`,
    `CREATE INDEX ON ${target.table('deadlines')} (due_at)`,
  ],
  apply: async (runner, events, target) => {
    for (const recorded of events) {
      if (!JOB_EVENT_TYPES.has(recorded.type)) continue;
      await applyEvent(runner, decodeJobEvent(recorded.type, recorded.data), recorded, target);
    }
  },
};

async function applyEvent(
  runner: QueryRunner,
  event: JobEvent,
  recorded: RecordedEvent,
  target: ProjectionTarget,
): Promise<void> {
  const jobs = target.table('jobs');
  if (event.type === 'job_posted') {
    const state = jobDecider.evolve(jobDecider.initialState(), event);
    await runner.query(
      prepared(`INSERT INTO ${jobs} (job_id, poster_id, status, title, tags, budget_micros, posted_position, posted_at, state, version, position)
       VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $6)`),
      [
        event.jobId,
        event.posterId,
        event.title,
        event.tags,
        event.budgetMicros.toString(),
        recorded.globalPosition,
        recorded.recordedAt,
        JSON.stringify(encodeJobState(state)),
        recorded.streamVersion,
      ],
    );
    if (event.awardPolicy !== 'manual') {
      await runner.query(
        prepared(`INSERT INTO ${target.table('deadlines')} (job_id, due_at) VALUES ($1, $2)`),
        [event.jobId, event.bidsCloseAt],
      );
    }
    return;
  }
  const rows: Array<{ state: Record<string, unknown> }> = await runner.query(
    prepared(`SELECT state FROM ${jobs} WHERE job_id = $1`),
    [event.jobId],
  );
  if (!rows[0]) throw new Error(`job event ${event.type} for unknown job ${event.jobId}`);
  const state = jobDecider.evolve(decodeJobState(rows[0].state), event);
  await applySideTables(runner, event, recorded, target);
  await updateJob(runner, jobs, event, state, recorded);
}

async function updateJob(
  runner: QueryRunner,
  jobs: string,
  event: JobEvent,
  state: JobState,
  recorded: RecordedEvent,
): Promise<void> {
  // `awarding_since` is the award's start (the recovery sweep's clock); any other event keeps it.
  const awarding = event.type === 'award_started' ? recorded.recordedAt : null;
  await runner.query(
    prepared(`UPDATE ${jobs} SET status = $2::text, state = $3, version = $4, position = $5,
       awarding_since = CASE WHEN $2::text = 'awarding' THEN COALESCE($6::timestamptz, awarding_since) ELSE NULL END
     WHERE job_id = $1`),
    [
      event.jobId,
      state.status,
      JSON.stringify(encodeJobState(state)),
      recorded.streamVersion,
      recorded.globalPosition,
      awarding,
    ],
  );
}

async function applySideTables(
  runner: QueryRunner,
  event: JobEvent,
  recorded: RecordedEvent,
  target: ProjectionTarget,
): Promise<void> {
  const bids = target.table('bids');
  switch (event.type) {
    case 'bid_placed':
      if (event.replacesBidId)
        await runner.query(prepared(`UPDATE ${bids} SET status = 'replaced' WHERE bid_id = $1`), [
          event.replacesBidId,
        ]);
      await runner.query(
        prepared(`INSERT INTO ${bids} (bid_id, job_id, worker_id, price_micros, eta_minutes, note, status, placed_at, position)
         VALUES ($1, $2, $3, $4, $5, $6, 'live', $7, $8)`),
        [
          event.bidId,
          event.jobId,
          event.workerId,
          event.priceMicros.toString(),
          event.etaMinutes,
          event.note,
          event.placedAt,
          recorded.globalPosition,
        ],
      );
      return;
    case 'bid_withdrawn':
      await runner.query(prepared(`UPDATE ${bids} SET status = 'withdrawn' WHERE bid_id = $1`), [
        event.bidId,
      ]);
      return;
    case 'award_started':
      await runner.query(prepared(`DELETE FROM ${target.table('deadlines')} WHERE job_id = $1`), [
        event.jobId,
      ]);
      await runner.query(
        prepared(`INSERT INTO ${target.table('awards')} (escrow_id, job_id, bid_id, worker_id, attempt, price_micros)
         SELECT escrow_id, $1, bid_id, worker_id, $2, price FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[]) AS a(escrow_id, bid_id, worker_id, price)`),
        [
          event.jobId,
          event.attempt,
          event.awards.map((award) => award.escrowId),
          event.awards.map((award) => award.bidId),
          event.awards.map((award) => award.workerId),
          event.awards.map((award) => award.priceMicros.toString()),
        ],
      );
      return;
    case 'job_awarded':
      await runner.query(
        prepared(
          `UPDATE ${bids} SET status = CASE WHEN bid_id = ANY($2::text[]) THEN 'awarded' ELSE 'not_awarded' END WHERE job_id = $1 AND status = 'live'`,
        ),
        [event.jobId, event.awards.map((award) => award.bidId)],
      );
      return;
    case 'job_cancelled':
      await runner.query(prepared(`DELETE FROM ${target.table('deadlines')} WHERE job_id = $1`), [
        event.jobId,
      ]);
      return;
    default:
      return;
  }
}
