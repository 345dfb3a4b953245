import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  reputationErrors,
  type EventEnvelope,
  type LeaderboardQuery,
  type LeaderboardView,
  type RatingView,
  type ReputationView,
} from '@pf/contracts';
import { CommandPipeline, prepared, type EventStore, type LoadedBase } from '@pf/event-store';
import {
  decideRating,
  profileOf,
  type EscrowFacts,
  type JobFacts,
  type Rating,
  type RatingRefusal,
  type ReputationProfile,
} from '../domain/reputation.js';
import {
  decodeEscrowFacts,
  observedEventId,
  REPUTATION_EVENT_TYPES,
  reputationStreamOf,
  type ObservedEscrowData,
  type RatingGivenData,
} from '../infrastructure/reputation-projection.js';
import { MARKET_EVENT_STORE } from './tokens.js';

/** Escrow event types reputation records; the others (rejected: the escrow never existed) say nothing. */
const RECORDED_ESCROW_EVENTS = new Set([
  'opened',
  'funded',
  'completed',
  'disputed',
  'released',
  'refunded',
  'declined',
  'cancelled',
  'resolved',
  // docs/adr/0016: an evaluator's refund and a cancel by agreement settle an escrow too.
  'evaluator_refunded',
  'mutually_cancelled',
]);

/**
 * The fields of an escrow event reputation reads, and only those: descriptions and result
 * summaries stay in escrow's log. `jobId` is renamed (see reputation-projection.ts).
 */
function factsOf(data: Record<string, unknown>): Record<string, unknown> {
  const facts: Record<string, unknown> = {};
  for (const name of ['creatorId', 'counterpartyId', 'amountMicros', 'timeoutMs', 'by', 'trigger', 'outcome'])
    if (data[name] !== undefined) facts[name] = data[name];
  if (data.jobId !== undefined) facts.escrowJobId = data.jobId;
  const payout = data.payout as Record<string, unknown> | null | undefined;
  if (payout) facts.payout = { counterpartyMicros: payout.counterpartyMicros };
  return facts;
}

const REFUSAL_MESSAGES: Record<RatingRefusal, string> = {
  not_a_party: 'only the creator or the counterparty of this escrow may rate it',
  rating_not_allowed: 'an escrow can be rated only once it was released or resolved',
  already_rated: 'you already rated this escrow',
};

/** A leaderboard is recomputed from every row at most this often (it reads the whole projection). */
const LEADERBOARD_CACHE_MS = 2_000;
const LATEST_RATINGS = 10;

/** What a rating is decided on: the escrow's facts (its row locked) and the rater's earlier rating. */
interface RatingLoaded extends LoadedBase {
  facts: EscrowFacts | undefined;
  existing: RatingRow | undefined;
}

interface RatingRow {
  escrow_id: string;
  rater_id: string;
  ratee_id: string;
  score: number;
  comment: string | null;
  amount_micros: string;
  rated_at: Date;
}

/**
 * Reputation over the market's log: records escrow facts as they arrive, takes ratings, and
 * computes profiles and leaderboards at read time from the reputation tables (the database's
 * clock is `now` for the decay, so every reader sees the same score at the same moment).
 */
@Injectable()
export class ReputationService {
  private readonly tables: { escrows: string; jobs: string; ratings: string };
  private leaderboardCache?: { atMs: number; profiles: ReputationProfile[] };
  private readonly pipeline: CommandPipeline;

  constructor(@Inject(MARKET_EVENT_STORE) private readonly store: EventStore) {
    this.pipeline = new CommandPipeline(store);
    const table = (name: string) => store.liveTarget.table(name);
    this.tables = { escrows: table('rep_escrows'), jobs: table('rep_jobs'), ratings: table('rep_ratings') };
  }

  /**
   * Records one escrow event in the market's log (stream `rep-<escrowId>`). The event id is
   * derived from the escrow event's id and the append is idempotent on it, so a redelivery or
   * re-publication records nothing twice.
   */
  async onEscrowEvent(envelope: EventEnvelope): Promise<void> {
    const escrowId = envelope.data.escrowId;
    if (!RECORDED_ESCROW_EVENTS.has(envelope.type) || typeof escrowId !== 'string') return;
    const data: ObservedEscrowData = {
      escrowId,
      sourceEventId: envelope.id,
      escrowEvent: envelope.type,
      occurredAt: envelope.occurred_at,
      facts: factsOf(envelope.data),
    };
    await this.store.append(reputationStreamOf(escrowId), 'any', [
      { eventId: observedEventId(envelope.id), type: REPUTATION_EVENT_TYPES.observed, data: { ...data } },
    ]);
  }

  /**
   * One rating per (escrow, rater), only by a party of a released or resolved escrow. An escrow
   * event recorded on the same stream at the same instant can win the stream's next version (or
   * deadlock with the row lock): the pipeline decides again on the fresh state.
   */
  rate(escrowId: string, raterId: string, score: number, comment: string | null): Promise<RatingView> {
    return this.pipeline.execute<RatingLoaded, RatingGivenData, RatingView>({
      streamId: reputationStreamOf(escrowId),
      load: async (runner) => {
        // The escrow's row is the lock: two ratings of one escrow take turns, the second sees the first.
        const rows: Array<{ facts: Record<string, unknown> }> = await runner.query(
          prepared(`SELECT facts FROM ${this.tables.escrows} WHERE escrow_id = $1 FOR UPDATE`),
          [escrowId],
        );
        const existing: RatingRow[] = await runner.query(
          prepared(`SELECT * FROM ${this.tables.ratings} WHERE escrow_id = $1 AND rater_id = $2`),
          [escrowId, raterId],
        );
        // Escrow facts and ratings share the stream with no single writer's order: 'any' version.
        return {
          version: 'any',
          facts: rows[0] ? decodeEscrowFacts(rows[0].facts) : undefined,
          existing: existing[0],
        };
      },
      decide: ({ facts, existing }) => {
        const decision = decideRating(facts, raterId, existing !== undefined);
        if ('refused' in decision) {
          // A retried request (same score and comment) answers the rating it already made.
          if (existing && existing.score === score && existing.comment === comment) return [];
          throw new DomainError(
            reputationErrors[camel(decision.refused)],
            REFUSAL_MESSAGES[decision.refused],
          );
        }
        return [
          {
            escrowId,
            raterId,
            rateeId: decision.rateeId,
            score,
            comment,
            amountMicros: (facts as EscrowFacts).amountMicros.toString(),
          },
        ];
      },
      encode: (data) => ({ type: REPUTATION_EVENT_TYPES.rating, data: { ...data } }),
      reply: ({ loaded, events, recorded }) =>
        events[0]
          ? { ...events[0], ratedAt: recorded[0]!.recordedAt.toISOString() }
          : ratingView(loaded.existing!),
    });
  }

  async reputation(agentId: string): Promise<ReputationView> {
    const nowMs = await this.nowMs();
    const [escrows, jobs, ratings] = await Promise.all([
      this.escrowsOf(agentId),
      this.jobsOf(agentId),
      this.ratingsOf(agentId),
    ]);
    const profile = profileOf(agentId, escrows, jobs, ratings.map(ratingOf), nowMs);
    const latest = ratings.filter((row) => row.ratee_id === agentId).slice(0, LATEST_RATINGS);
    return {
      ...profileView(profile),
      latestRatings: latest.map(ratingView),
      computedAt: new Date(nowMs).toISOString(),
    };
  }

  async leaderboard(query: Required<LeaderboardQuery>): Promise<LeaderboardView> {
    const nowMs = await this.nowMs();
    const profiles = await this.allProfiles(nowMs);
    const figures = (profile: ReputationProfile) =>
      query.role === 'worker' ? profile.worker : profile.poster;
    const active = profiles.filter((profile) =>
      query.role === 'worker'
        ? profile.worker.jobsWon + profile.worker.completed > 0
        : profile.poster.released + profile.poster.jobsPosted > 0,
    );
    const sortKey = (profile: ReputationProfile): number => {
      if (query.by === 'earned') return Number(profile.worker.earnedMicros);
      if (query.by === 'completed') return profile.worker.completed;
      if (query.by === 'on_time') return profile.worker.onTimeRate ?? -1;
      return figures(profile).score;
    };
    const sorted = [...active].sort((a, b) => sortKey(b) - sortKey(a) || a.agentId.localeCompare(b.agentId));
    return {
      by: query.by,
      role: query.role,
      entries: sorted.slice(0, query.limit).map((profile, index) => ({
        rank: index + 1,
        agentId: profile.agentId,
        score: figures(profile).score,
        earnedMicros: profile.worker.earnedMicros.toString(),
        completed: profile.worker.completed,
        onTimeRate: profile.worker.onTimeRate,
      })),
      computedAt: new Date(nowMs).toISOString(),
    };
  }

  /** Worker scores of the given agents (the `best_reputation` award policy ranks bids by them). */
  async workerScores(agentIds: readonly string[]): Promise<Map<string, number>> {
    const nowMs = await this.nowMs();
    const scores = new Map<string, number>();
    for (const agentId of new Set(agentIds)) {
      const [escrows, ratings] = await Promise.all([this.escrowsOf(agentId), this.ratingsOf(agentId)]);
      scores.set(agentId, profileOf(agentId, escrows, [], ratings.map(ratingOf), nowMs).worker.score);
    }
    return scores;
  }

  private async allProfiles(nowMs: number): Promise<ReputationProfile[]> {
    const cached = this.leaderboardCache;
    if (cached && nowMs - cached.atMs < LEADERBOARD_CACHE_MS && nowMs >= cached.atMs) return cached.profiles;
    const query = (sql: string) => this.store.dataSource.query(prepared(sql));
    const [escrowRows, jobRows, ratingRows] = await Promise.all([
      query(`SELECT facts FROM ${this.tables.escrows}`) as Promise<Array<{ facts: Record<string, unknown> }>>,
      query(`SELECT * FROM ${this.tables.jobs}`) as Promise<JobRow[]>,
      query(`SELECT * FROM ${this.tables.ratings}`) as Promise<RatingRow[]>,
    ]);
    // Each agent's rows, grouped once: a profile then reads only its own (linear in the rows).
    const rowsOf = new Map<string, { escrows: EscrowFacts[]; jobs: JobFacts[]; ratings: Rating[] }>();
    const of = (agentId: string) => {
      let entry = rowsOf.get(agentId);
      if (!entry) rowsOf.set(agentId, (entry = { escrows: [], jobs: [], ratings: [] }));
      return entry;
    };
    for (const facts of escrowRows.map((row) => decodeEscrowFacts(row.facts)))
      for (const id of new Set([facts.creatorId, facts.workerId])) if (id) of(id).escrows.push(facts);
    for (const job of jobRows.map(jobFactsOf))
      for (const id of new Set([job.posterId, ...job.awardedWorkers])) of(id).jobs.push(job);
    for (const rating of ratingRows.map(ratingOf))
      for (const id of new Set([rating.raterId, rating.rateeId])) of(id).ratings.push(rating);
    const profiles = [...rowsOf].map(([agentId, rows]) =>
      profileOf(agentId, rows.escrows, rows.jobs, rows.ratings, nowMs),
    );
    this.leaderboardCache = { atMs: nowMs, profiles };
    return profiles;
  }

  private async nowMs(): Promise<number> {
    const rows: Array<{ now: Date }> = await this.store.dataSource.query(prepared('SELECT now() AS now'));
    return rows[0]!.now.getTime();
  }

  private async escrowsOf(agentId: string): Promise<EscrowFacts[]> {
    const rows: Array<{ facts: Record<string, unknown> }> = await this.store.dataSource.query(
      prepared(`SELECT facts FROM ${this.tables.escrows} WHERE creator_id = $1 OR worker_id = $1`),
      [agentId],
    );
    return rows.map((row) => decodeEscrowFacts(row.facts));
  }

  private async jobsOf(agentId: string): Promise<JobFacts[]> {
    const rows: JobRow[] = await this.store.dataSource.query(
      prepared(
        `SELECT * FROM ${this.tables.jobs} WHERE poster_id = $1 OR awarded_workers @> ARRAY[$1]::text[]`,
      ),
      [agentId],
    );
    return rows.map(jobFactsOf);
  }

  private ratingsOf(agentId: string): Promise<RatingRow[]> {
    return this.store.dataSource.query(
      prepared(
        `SELECT * FROM ${this.tables.ratings} WHERE ratee_id = $1 OR rater_id = $1 ORDER BY position DESC`,
      ),
      [agentId],
    );
  }
}

interface JobRow {
  job_id: string;
  poster_id: string;
  posted_at: string;
  awarded_workers: string[];
}

const jobFactsOf = (row: JobRow): JobFacts => ({
  jobId: row.job_id,
  posterId: row.poster_id,
  postedAt: row.posted_at,
  awardedWorkers: row.awarded_workers,
});

const ratingOf = (row: RatingRow): Rating => ({
  escrowId: row.escrow_id,
  raterId: row.rater_id,
  rateeId: row.ratee_id,
  score: row.score,
  comment: row.comment,
  ratedAt: row.rated_at.toISOString(),
});

const ratingView = (row: RatingRow): RatingView => ({
  ...ratingOf(row),
  amountMicros: String(row.amount_micros),
});

function camel(code: RatingRefusal): keyof typeof reputationErrors {
  return (
    {
      not_a_party: 'notAParty',
      rating_not_allowed: 'ratingNotAllowed',
      already_rated: 'alreadyRated',
    } as const
  )[code];
}

/** Scores rounded to 2 decimals for display; the ranking uses the exact value. */
function profileView(profile: ReputationProfile): Omit<ReputationView, 'latestRatings' | 'computedAt'> {
  const round = (score: number) => Math.round(score * 100) / 100;
  return {
    agentId: profile.agentId,
    worker: {
      ...profile.worker,
      earnedMicros: profile.worker.earnedMicros.toString(),
      score: round(profile.worker.score),
    },
    poster: { ...profile.poster, score: round(profile.poster.score) },
  };
}
