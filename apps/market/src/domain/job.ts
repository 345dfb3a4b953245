import {
  AGENT_ID_PATTERN,
  DomainError,
  ErrorCode,
  escrowErrors,
  MARKET_LIMITS,
  sha256Hex,
  marketErrors,
  type AwardPolicy,
  type EscrowCancelReason,
  type JobStatus,
} from '@pf/contracts';
import type { Decider } from '@pf/contracts';

/**
 * The job aggregate, one stream per job. Pure: no clock and no I/O. Time enters as `nowMs` in
 * the commands (the database's clock, read by the repository in the command's transaction), and
 * the escrow ids of an award are derived from (job, bid, attempt) so that a retried or crashed
 * award names the same escrows again and the escrow service creates each one once.
 *
 * Money never moves here: an award records which escrows to create, and the market learns what
 * became of them from the escrow service's events (`observe`). The one guarantee of a race —
 * exactly one payout — is decided here: the first `completed` observed wins, every other award
 * is lost (and cancelled by the market), whatever the order or repetition of the events.
 */

export interface JobPolicy {
  minTimeoutMs: number;
  maxTimeoutMs: number;
  maxBudgetMicros: bigint;
}

export interface RaceTerms {
  workers: number;
  autoRelease: boolean;
}

export interface Bid {
  bidId: string;
  workerId: string;
  priceMicros: bigint;
  etaMinutes: number;
  note: string | null;
  placedAt: string;
}

/** What the market knows of an award's escrow, from the award's replies and escrow events. */
export type AwardEscrowStatus = 'pending' | 'funded' | 'completed' | 'released' | 'refunded';

export interface Award {
  bidId: string;
  workerId: string;
  escrowId: string;
  priceMicros: bigint;
  escrow: AwardEscrowStatus;
  race: 'won' | 'lost' | null;
}

export interface AwardTerms {
  bidId: string;
  workerId: string;
  escrowId: string;
  priceMicros: bigint;
}

export interface PostJob {
  kind: 'post';
  jobId: string;
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
  nowMs: number;
  policy: JobPolicy;
}

/** Escrow events the market follows; others (opened, funded, rejected, disputed) change nothing here. */
export type ObservedEscrowEvent = 'completed' | 'released' | 'refunded';

export type JobCommand =
  | PostJob
  | {
      kind: 'bid';
      bidId: string;
      workerId: string;
      priceMicros: bigint;
      etaMinutes: number;
      note: string | null;
      nowMs: number;
    }
  | { kind: 'withdraw'; workerId: string }
  | { kind: 'award'; actorId: string; bidIds: string[] }
  /** `workerScores`: the bidders' reputation scores (ADR 0015), read for `best_reputation`. */
  | { kind: 'close_window'; workerScores?: Readonly<Record<string, number>> }
  | {
      kind: 'record_funding';
      attempt: number;
      funded: string[];
      refused: { escrowId: string; code: string; message: string } | null;
    }
  | { kind: 'cancel'; actorId: string }
  | { kind: 'observe'; escrowId: string; escrowEvent: ObservedEscrowEvent };

export type JobEvent =
  | {
      type: 'job_posted';
      jobId: string;
      posterId: string;
      title: string;
      description: string;
      budgetMicros: bigint;
      bidWindowMs: number;
      postedAt: string;
      bidsCloseAt: string;
      timeoutMs: number;
      tags: string[];
      awardPolicy: AwardPolicy;
      race: RaceTerms | null;
      invite: string[] | null;
    }
  | {
      type: 'bid_placed';
      jobId: string;
      bidId: string;
      workerId: string;
      priceMicros: bigint;
      etaMinutes: number;
      note: string | null;
      placedAt: string;
      replacesBidId: string | null;
    }
  | { type: 'bid_withdrawn'; jobId: string; bidId: string; workerId: string }
  | {
      type: 'award_started';
      jobId: string;
      attempt: number;
      by: string;
      mode: 'single' | 'race';
      awards: AwardTerms[];
    }
  | { type: 'job_awarded'; jobId: string; attempt: number; mode: 'single' | 'race'; awards: AwardTerms[] }
  | {
      type: 'award_failed';
      jobId: string;
      attempt: number;
      code: string;
      message: string;
      cancelEscrowIds: string[];
    }
  | { type: 'job_completed'; jobId: string; escrowId: string; workerId: string }
  | { type: 'race_won'; jobId: string; escrowId: string; workerId: string }
  | { type: 'race_lost'; jobId: string; escrowId: string; workerId: string }
  | {
      type: 'award_settled';
      jobId: string;
      escrowId: string;
      workerId: string;
      outcome: 'released' | 'refunded';
    }
  | {
      type: 'job_cancelled';
      jobId: string;
      by: string;
      reason: 'poster' | 'no_bids';
      cancelEscrowIds: string[];
    };

export type JobEventType = JobEvent['type'];

export interface JobFacts {
  jobId: string;
  posterId: string;
  title: string;
  description: string;
  budgetMicros: bigint;
  bidWindowMs: number;
  postedAt: string;
  bidsCloseAt: string;
  timeoutMs: number;
  tags: string[];
  awardPolicy: AwardPolicy;
  race: RaceTerms | null;
  invite: string[] | null;
  /** Live bids, one per worker, in the order placed. */
  bids: Bid[];
  awardAttempts: number;
  mode: 'single' | 'race' | null;
  /** The current (or last) award's escrows; cleared when an award fails. */
  awards: Award[];
  winnerEscrowId: string | null;
}

export type Job = { status: JobStatus } & JobFacts;
export type JobState = { status: 'none' } | Job;

/** Who awards automatically when the bid window closes. */
export const SYSTEM_ACTOR = 'system';

export const jobDecider: Decider<JobCommand, JobEvent, JobState> = {
  initialState: () => ({ status: 'none' }),
  decide: (command, state) => {
    const events = decideCommand(command, state);
    assertOnePayout(events.reduce(evolve, state));
    return events;
  },
  evolve,
};

function decideCommand(command: JobCommand, state: JobState): JobEvent[] {
  if (command.kind === 'post') return decidePost(command, state);
  const job = requireJob(state);
  switch (command.kind) {
    case 'bid':
      return decideBid(command, job);
    case 'withdraw':
      return decideWithdraw(command, job);
    case 'award':
      return decideAward(command, job);
    case 'close_window':
      return decideCloseWindow(job, command.workerScores ?? {});
    case 'record_funding':
      return decideFunding(command, job);
    case 'cancel':
      return decideCancel(command, job);
    case 'observe':
      return decideObserve(command, job);
  }
}

/** Validation of a new job, field by field, each with its own code; nothing is recorded on a refusal. */
export function validatePost(command: PostJob): void {
  const { policy } = command;
  requireChars(
    command.title,
    MARKET_LIMITS.minTitleChars,
    MARKET_LIMITS.maxTitleChars,
    marketErrors.invalidTitle,
    'title',
  );
  requireChars(
    command.description,
    MARKET_LIMITS.minDescriptionChars,
    MARKET_LIMITS.maxDescriptionChars,
    escrowErrors.invalidDescription,
    'description',
  );
  if (command.budgetMicros < MARKET_LIMITS.minBudgetMicros || command.budgetMicros > policy.maxBudgetMicros) {
    throw new DomainError(
      marketErrors.invalidBudget,
      `budget_usd must be between ${Number(MARKET_LIMITS.minBudgetMicros) / 1e6} and ${Number(policy.maxBudgetMicros) / 1e6}`,
    );
  }
  const maxWindowMs = MARKET_LIMITS.maxBidWindowMinutes * 60_000;
  if (
    !Number.isSafeInteger(command.bidWindowMs) ||
    command.bidWindowMs < 60_000 ||
    command.bidWindowMs > maxWindowMs
  ) {
    throw new DomainError(
      marketErrors.invalidBidWindow,
      `bid_window_minutes must be between 1 and ${MARKET_LIMITS.maxBidWindowMinutes}`,
    );
  }
  if (
    !Number.isSafeInteger(command.timeoutMs) ||
    command.timeoutMs < policy.minTimeoutMs ||
    command.timeoutMs > policy.maxTimeoutMs
  ) {
    throw new DomainError(
      escrowErrors.invalidTimeout,
      `timeout_hours must be between ${policy.minTimeoutMs / 3_600_000} and ${policy.maxTimeoutMs / 3_600_000}`,
    );
  }
  validateTags(command.tags);
  if (command.race) {
    const { workers } = command.race;
    if (
      !Number.isSafeInteger(workers) ||
      workers < MARKET_LIMITS.minRaceWorkers ||
      workers > MARKET_LIMITS.maxRaceWorkers
    ) {
      throw new DomainError(
        marketErrors.raceSizeInvalid,
        `race.workers must be between ${MARKET_LIMITS.minRaceWorkers} and ${MARKET_LIMITS.maxRaceWorkers}`,
      );
    }
  }
  validateInvite(command.invite, command.posterId);
}

function validateTags(tags: readonly string[]): void {
  if (tags.length > MARKET_LIMITS.maxTags)
    throw new DomainError(marketErrors.invalidTags, `at most ${MARKET_LIMITS.maxTags} tags`);
  for (const tag of tags) {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(tag) || tag.length > MARKET_LIMITS.maxTagChars) {
      throw new DomainError(
        marketErrors.invalidTags,
        `tags are lower-case words of at most ${MARKET_LIMITS.maxTagChars} characters (a-z, 0-9, - and _)`,
      );
    }
  }
}

function validateInvite(invite: readonly string[] | null, posterId: string): void {
  if (invite === null) return;
  if (invite.length === 0 || invite.length > MARKET_LIMITS.maxInvite)
    throw new DomainError(
      marketErrors.invalidInvite,
      `invite lists 1 to ${MARKET_LIMITS.maxInvite} agent ids`,
    );
  for (const agentId of invite) {
    if (!AGENT_ID_PATTERN.test(agentId))
      throw new DomainError(marketErrors.invalidInvite, 'invite lists agent ids (ag_ + 12 hex)');
    if (agentId === posterId)
      throw new DomainError(marketErrors.invalidInvite, 'the poster cannot invite itself');
  }
}

function decidePost(command: PostJob, state: JobState): JobEvent[] {
  validatePost(command);
  // A retried post (same job id derived from the same Idempotency-Key) decides nothing new.
  if (state.status !== 'none') {
    if (state.posterId === command.posterId) return [];
    throw new DomainError(ErrorCode.idempotencyKeyReused, `job ${command.jobId} already exists`);
  }
  return [
    {
      type: 'job_posted',
      jobId: command.jobId,
      posterId: command.posterId,
      title: command.title,
      description: command.description,
      budgetMicros: command.budgetMicros,
      bidWindowMs: command.bidWindowMs,
      postedAt: new Date(command.nowMs).toISOString(),
      bidsCloseAt: new Date(command.nowMs + command.bidWindowMs).toISOString(),
      timeoutMs: command.timeoutMs,
      tags: [...new Set(command.tags)],
      awardPolicy: command.awardPolicy,
      race: command.race,
      invite: command.invite,
    },
  ];
}

function decideBid(command: Extract<JobCommand, { kind: 'bid' }>, job: Job): JobEvent[] {
  if (command.workerId === job.posterId)
    throw new DomainError(marketErrors.ownJob, 'the poster cannot bid on its own job');
  if (job.invite && !job.invite.includes(command.workerId))
    throw new DomainError(marketErrors.notInvited, 'this job takes bids from invited agents only');
  requireBidsOpen(job, command.nowMs);
  if (command.priceMicros < MARKET_LIMITS.minBudgetMicros) {
    throw new DomainError(
      marketErrors.invalidPrice,
      `price_usd must be at least ${Number(MARKET_LIMITS.minBudgetMicros) / 1e6}`,
    );
  }
  if (command.priceMicros > job.budgetMicros)
    throw new DomainError(
      marketErrors.bidAboveBudget,
      `price_usd is above the job's budget of ${Number(job.budgetMicros) / 1e6}`,
    );
  if (
    !Number.isSafeInteger(command.etaMinutes) ||
    command.etaMinutes < 1 ||
    command.etaMinutes > MARKET_LIMITS.maxEtaMinutes
  ) {
    throw new DomainError(
      marketErrors.invalidEta,
      `eta_minutes must be between 1 and ${MARKET_LIMITS.maxEtaMinutes}`,
    );
  }
  if (command.note !== null && [...command.note].length > MARKET_LIMITS.maxNoteChars) {
    throw new DomainError(
      ErrorCode.invalidRequest,
      `note must have at most ${MARKET_LIMITS.maxNoteChars} characters`,
    );
  }
  const previous = job.bids.find((bid) => bid.workerId === command.workerId);
  if (previous?.bidId === command.bidId) return [];
  if (!previous && job.bids.length >= MARKET_LIMITS.maxBidsPerJob)
    throw new DomainError(
      marketErrors.bidWindowClosed,
      `the job has the maximum of ${MARKET_LIMITS.maxBidsPerJob} bids`,
    );
  return [
    {
      type: 'bid_placed',
      jobId: job.jobId,
      bidId: command.bidId,
      workerId: command.workerId,
      priceMicros: command.priceMicros,
      etaMinutes: command.etaMinutes,
      note: command.note,
      placedAt: new Date(command.nowMs).toISOString(),
      replacesBidId: previous?.bidId ?? null,
    },
  ];
}

function requireBidsOpen(job: Job, nowMs: number): void {
  if (job.status === 'awarding' || job.status === 'awarded' || job.status === 'completed')
    throw new DomainError(marketErrors.alreadyAwarded, 'the job is awarded: bids are closed');
  if (job.status !== 'open' || nowMs >= Date.parse(job.bidsCloseAt))
    throw new DomainError(
      marketErrors.bidWindowClosed,
      `bids closed at ${job.bidsCloseAt} or when the job ended`,
    );
}

function decideWithdraw(command: Extract<JobCommand, { kind: 'withdraw' }>, job: Job): JobEvent[] {
  const bid = job.bids.find((candidate) => candidate.workerId === command.workerId);
  if (!bid) throw new DomainError(marketErrors.bidNotFound, 'you have no live bid on this job');
  if (job.status !== 'open')
    throw new DomainError(
      job.status === 'cancelled' || job.status === 'closed'
        ? marketErrors.bidWindowClosed
        : marketErrors.alreadyAwarded,
      `the job is ${job.status}`,
    );
  return [{ type: 'bid_withdrawn', jobId: job.jobId, bidId: bid.bidId, workerId: bid.workerId }];
}

function decideAward(command: Extract<JobCommand, { kind: 'award' }>, job: Job): JobEvent[] {
  if (command.actorId !== job.posterId)
    throw new DomainError(marketErrors.notPoster, 'only the poster may award the job');
  if (job.status === 'awarding') {
    // A retry of the award in progress (a lost reply, a crash) carries on with the same escrows.
    const same = sameSet(
      job.awards.map((award) => award.bidId),
      command.bidIds,
    );
    if (same) return [];
    throw new DomainError(marketErrors.awardInProgress, 'another award of this job is in progress');
  }
  requireAwardable(job);
  const size = command.bidIds.length;
  if (new Set(command.bidIds).size !== size)
    throw new DomainError(marketErrors.raceSizeInvalid, 'bid_ids lists a bid twice');
  if (job.race ? size < MARKET_LIMITS.minRaceWorkers || size > job.race.workers : size !== 1) {
    const expected = job.race ? `2 to ${job.race.workers} bids (race)` : 'exactly one bid';
    throw new DomainError(marketErrors.raceSizeInvalid, `this job is awarded to ${expected}`);
  }
  const bids = command.bidIds.map((bidId) => {
    const bid = job.bids.find((candidate) => candidate.bidId === bidId);
    if (!bid) throw new DomainError(marketErrors.bidNotFound, `no live bid ${bidId} on this job`);
    return bid;
  });
  return [awardStarted(job, bids, command.actorId)];
}

function requireAwardable(job: Job): void {
  if (job.status === 'cancelled' || job.status === 'closed')
    throw new DomainError(marketErrors.jobClosed, `the job is ${job.status}`);
  if (job.status !== 'open') throw new DomainError(marketErrors.alreadyAwarded, 'the job is already awarded');
}

function awardStarted(job: Job, bids: readonly Bid[], by: string): JobEvent {
  const attempt = job.awardAttempts + 1;
  return {
    type: 'award_started',
    jobId: job.jobId,
    attempt,
    by,
    mode: bids.length > 1 ? 'race' : 'single',
    awards: bids.map((bid) => ({
      bidId: bid.bidId,
      workerId: bid.workerId,
      escrowId: awardEscrowId(job.jobId, bid.bidId, attempt),
      priceMicros: bid.priceMicros,
    })),
  };
}

/**
 * The escrow of one bid in one award attempt: the same inputs always name the same escrow, so
 * the escrow service (idempotent on the id) creates it once however often the award is retried.
 * The attempt is part of it because an escrow refused for want of funds stays refused: a later
 * award of the same bid, after the poster topped up, needs a fresh escrow.
 */
export function awardEscrowId(jobId: string, bidId: string, attempt: number): string {
  return `esc_${sha256Hex(`market\n${jobId}\n${bidId}\n${attempt}`).slice(0, 16)}`;
}

/**
 * The bid window closed: an automatic policy awards now (a race to its N best bids), a job
 * without bids is cancelled. `best_reputation` ranks by the bidders' reputation scores (given
 * in the command, ADR 0015), then like `lowest_price`.
 */
function decideCloseWindow(job: Job, workerScores: Readonly<Record<string, number>>): JobEvent[] {
  if (job.status !== 'open' || job.awardPolicy === 'manual') return [];
  if (job.bids.length === 0)
    return [
      { type: 'job_cancelled', jobId: job.jobId, by: SYSTEM_ACTOR, reason: 'no_bids', cancelEscrowIds: [] },
    ];
  const ranked = rankBids(job.bids, job.awardPolicy, workerScores);
  return [awardStarted(job, ranked.slice(0, job.race ? job.race.workers : 1), SYSTEM_ACTOR)];
}

export function rankBids(
  bids: readonly Bid[],
  policy: AwardPolicy,
  workerScores: Readonly<Record<string, number>> = {},
): Bid[] {
  const byTime = (a: Bid, b: Bid) =>
    Date.parse(a.placedAt) - Date.parse(b.placedAt) || (a.bidId < b.bidId ? -1 : 1);
  if (policy === 'first_bid') return [...bids].sort(byTime);
  const byPrice = (a: Bid, b: Bid) =>
    a.priceMicros < b.priceMicros ? -1 : a.priceMicros > b.priceMicros ? 1 : byTime(a, b);
  if (policy !== 'best_reputation') return [...bids].sort(byPrice);
  const scoreOf = (bid: Bid) => workerScores[bid.workerId] ?? 0;
  return [...bids].sort((a, b) => scoreOf(b) - scoreOf(a) || byPrice(a, b));
}

function decideFunding(command: Extract<JobCommand, { kind: 'record_funding' }>, job: Job): JobEvent[] {
  // Only the award in progress listens; a late answer for an older attempt changes nothing.
  if (job.status !== 'awarding' || command.attempt !== job.awardAttempts) return [];
  if (command.refused) {
    // All or nothing: every other escrow of the attempt goes back (funded, or still being funded).
    const refusedId = command.refused.escrowId;
    const cancelEscrowIds = job.awards
      .filter((award) => award.escrowId !== refusedId)
      .map((award) => award.escrowId);
    return [
      {
        type: 'award_failed',
        jobId: job.jobId,
        attempt: command.attempt,
        code: command.refused.code,
        message: command.refused.message,
        cancelEscrowIds,
      },
    ];
  }
  const funded = job.awards.filter((award) => command.funded.includes(award.escrowId));
  if (funded.length < job.awards.length) return [];
  return [
    {
      type: 'job_awarded',
      jobId: job.jobId,
      attempt: command.attempt,
      mode: job.mode ?? 'single',
      awards: job.awards.map(termsOf),
    },
  ];
}

function decideCancel(command: Extract<JobCommand, { kind: 'cancel' }>, job: Job): JobEvent[] {
  if (command.actorId !== job.posterId)
    throw new DomainError(marketErrors.notPoster, 'only the poster may cancel the job');
  switch (job.status) {
    case 'cancelled':
      return [];
    case 'awarding':
      throw new DomainError(
        marketErrors.awardInProgress,
        'the award is being funded; retry in a few seconds',
      );
    case 'completed':
    case 'closed':
      throw new DomainError(
        marketErrors.jobClosed,
        `the job is ${job.status}: the work was delivered or settled`,
      );
    default: {
      // Only escrows still funded can go back; one a worker completed meanwhile is refused by escrow and paid.
      const cancelEscrowIds = job.awards
        .filter((award) => award.escrow === 'funded' || award.escrow === 'pending')
        .map((award) => award.escrowId);
      return [
        { type: 'job_cancelled', jobId: job.jobId, by: command.actorId, reason: 'poster', cancelEscrowIds },
      ];
    }
  }
}

/**
 * What an escrow event means for the job. Repeated or late events decide nothing. In a race the
 * first completion wins and every other award loses at once (its escrow is cancelled, even one
 * a worker completed a moment later: a race pays one completion).
 */
function decideObserve(command: Extract<JobCommand, { kind: 'observe' }>, job: Job): JobEvent[] {
  const award = job.awards.find((candidate) => candidate.escrowId === command.escrowId);
  if (!award) return [];
  const base = { jobId: job.jobId, escrowId: award.escrowId, workerId: award.workerId };
  if (command.escrowEvent === 'completed') {
    if (award.escrow !== 'pending' && award.escrow !== 'funded') return [];
    if (job.mode !== 'race') return job.status === 'cancelled' ? [] : [{ type: 'job_completed', ...base }];
    if (job.winnerEscrowId !== null || job.status === 'cancelled') return [];
    const losers = job.awards.filter((other) => other.escrowId !== award.escrowId && other.race === null);
    return [
      { type: 'race_won', ...base },
      { type: 'job_completed', ...base },
      ...losers.map((loser): JobEvent => ({
        type: 'race_lost',
        jobId: job.jobId,
        escrowId: loser.escrowId,
        workerId: loser.workerId,
      })),
    ];
  }
  if (award.escrow === 'released' || award.escrow === 'refunded') return [];
  return [{ type: 'award_settled', ...base, outcome: command.escrowEvent }];
}

/** For `POST /jobs/{id}/release`: the escrow the poster may have the market release. */
export function releasableEscrow(job: JobState, actorId: string): Award {
  const found = requireJob(job);
  if (actorId !== found.posterId)
    throw new DomainError(marketErrors.notPoster, 'only the poster may release the payment');
  const winner =
    found.mode === 'race'
      ? found.awards.find((award) => award.escrowId === found.winnerEscrowId)
      : found.awards[0];
  if (!winner || (found.mode === 'race' && winner.race !== 'won') || winner.escrow !== 'completed') {
    throw new DomainError(marketErrors.notRaceWinner, 'no completed work to release yet');
  }
  return winner;
}

function requireJob(state: JobState): Job {
  if (state.status === 'none') throw new DomainError(marketErrors.jobNotFound, 'no such job');
  return state;
}

function requireChars(value: string, min: number, max: number, code: string, field: string): void {
  const chars = [...value.trim()].length;
  if (chars < min || chars > max)
    throw new DomainError(code, `${field} must have ${min} to ${max} characters`);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item) => b.includes(item));
}

function termsOf(award: Award): AwardTerms {
  return {
    bidId: award.bidId,
    workerId: award.workerId,
    escrowId: award.escrowId,
    priceMicros: award.priceMicros,
  };
}

/** Invariant: a race never has two winners, and a lost award is never paid. */
function assertOnePayout(state: JobState): void {
  if (state.status === 'none') return;
  const won = state.awards.filter((award) => award.race === 'won');
  const paidLosers = state.awards.filter((award) => award.race === 'lost' && award.escrow === 'released');
  if (won.length > 1 || paidLosers.length > 0)
    throw new Error(
      `job ${state.jobId}: a race with ${won.length} winners and ${paidLosers.length} paid losers`,
    );
}

export function evolve(state: JobState, event: JobEvent): JobState {
  if (event.type === 'job_posted') {
    const { type: _type, ...facts } = event;
    return {
      status: 'open',
      ...facts,
      bids: [],
      awardAttempts: 0,
      mode: null,
      awards: [],
      winnerEscrowId: null,
    };
  }
  const job = requireJob(state);
  switch (event.type) {
    case 'bid_placed': {
      const bid: Bid = {
        bidId: event.bidId,
        workerId: event.workerId,
        priceMicros: event.priceMicros,
        etaMinutes: event.etaMinutes,
        note: event.note,
        placedAt: event.placedAt,
      };
      return { ...job, bids: [...job.bids.filter((other) => other.workerId !== event.workerId), bid] };
    }
    case 'bid_withdrawn':
      return { ...job, bids: job.bids.filter((bid) => bid.bidId !== event.bidId) };
    case 'award_started':
      return {
        ...job,
        status: 'awarding',
        awardAttempts: event.attempt,
        mode: event.mode,
        awards: event.awards.map((terms) => ({ ...terms, escrow: 'pending', race: null })),
      };
    case 'job_awarded':
      return {
        ...job,
        status: 'awarded',
        awards: job.awards.map((award) => ({
          ...award,
          escrow: award.escrow === 'pending' ? 'funded' : award.escrow,
        })),
      };
    case 'award_failed':
      return { ...job, status: 'open', mode: null, awards: [] };
    case 'job_completed':
      return { ...job, status: 'completed', awards: withEscrow(job.awards, event.escrowId, 'completed') };
    case 'race_won':
      return {
        ...job,
        winnerEscrowId: event.escrowId,
        awards: job.awards.map((award) =>
          award.escrowId === event.escrowId ? { ...award, race: 'won' } : award,
        ),
      };
    case 'race_lost':
      return {
        ...job,
        awards: job.awards.map((award) =>
          award.escrowId === event.escrowId ? { ...award, race: 'lost' } : award,
        ),
      };
    case 'award_settled': {
      const awards = withEscrow(job.awards, event.escrowId, event.outcome);
      return { ...job, awards, status: statusAfterSettlement(job, awards) };
    }
    case 'job_cancelled':
      return { ...job, status: 'cancelled' };
  }
}

function withEscrow(awards: readonly Award[], escrowId: string, escrow: AwardEscrowStatus): Award[] {
  return awards.map((award) => (award.escrowId === escrowId ? { ...award, escrow } : award));
}

/** A job is closed once the money of its work settled: the winner's (or single) escrow, or every escrow. */
function statusAfterSettlement(job: Job, awards: readonly Award[]): JobStatus {
  if (job.status === 'cancelled') return 'cancelled';
  const settled = (award: Award) => award.escrow === 'released' || award.escrow === 'refunded';
  const deciding = awards.filter((award) => award.race !== 'lost');
  return deciding.length > 0 && deciding.every(settled) ? 'closed' : job.status;
}

/** An escrow command the market owes after a decision: carried out from the order outbox. */
export interface EscrowOrder {
  escrowId: string;
  kind: 'cancel' | 'release';
  reason: EscrowCancelReason | null;
}

/** The escrow commands a decision owes, given the job after it. */
export function ordersOf(events: readonly JobEvent[], job: JobState): EscrowOrder[] {
  const orders: EscrowOrder[] = [];
  for (const event of events) {
    if (event.type === 'race_won' && job.status !== 'none' && job.race?.autoRelease)
      orders.push({ escrowId: event.escrowId, kind: 'release', reason: null });
    if (event.type === 'race_lost')
      orders.push({ escrowId: event.escrowId, kind: 'cancel', reason: 'race_lost' });
    if (event.type === 'job_cancelled')
      orders.push(
        ...event.cancelEscrowIds.map((escrowId): EscrowOrder => ({
          escrowId,
          kind: 'cancel',
          reason: 'job_cancelled',
        })),
      );
    if (event.type === 'award_failed')
      orders.push(
        ...event.cancelEscrowIds.map((escrowId): EscrowOrder => ({
          escrowId,
          kind: 'cancel',
          reason: 'award_failed',
        })),
      );
  }
  return orders;
}
