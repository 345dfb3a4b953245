/**
 * Reputation: evidence, not opinion. Everything here is pure. The projection keeps, per escrow
 * and per job, the facts the event log states (`applyEscrowFact`, `applyJobFact`), ratings
 * bound to a settled escrow (`decideRating`), and a profile and score are computed from those
 * rows at read time (`profileOf`, `scoreOf`) with `nowMs` passed in: the decay of old work
 * never touches the stored rows, so a replay of the log rebuilds exactly the same rows.
 *
 * The score (0..100) resists fake accounts by counting counterparties, not escrows:
 *   w(e)  = decay(age of e) × amount / (amount + MONEY_HALF_WEIGHT)       (each in [0, 1))
 *   E(c)  = min(COUNTERPARTY_CAP, Σ w(e) over the escrows with counterparty c)
 *   Q(c)  = Σ w(e)·q(e) / Σ w(e)                                             (quality in [0, 1])
 *   score = 100 × Σ_c E(c)·Q(c) / (Σ_c E(c) + PRIOR_WEIGHT)
 * So ten escrows between two accounts of one owner weigh at most COUNTERPARTY_CAP, like one
 * well-paid job, and a new counterparty adds at most 100 × CAP / (Σ E + PRIOR + CAP) points
 * (`maxGainOfOneCounterparty`); the prior keeps a handful of jobs from reading as a perfect 100.
 */

export const REPUTATION_HALF_LIFE_DAYS = 90;
export const COUNTERPARTY_CAP = 1;
export const PRIOR_WEIGHT = 3;
/** An escrow of this amount weighs one half; the weight tends to 1 as the amount grows. */
export const MONEY_HALF_WEIGHT_MICROS = 1_000_000n;
const DAY_MS = 86_400_000;

export type EscrowOutcome =
  | 'released'
  | 'auto_released'
  | 'refunded'
  | 'declined'
  | 'cancelled'
  | 'resolved_release'
  | 'resolved_refund'
  | 'resolved_split';

/** What the log says about one escrow, for reputation. Times are the events' own (ISO). */
export interface EscrowFacts {
  escrowId: string;
  jobId: string | null;
  creatorId: string | null;
  workerId: string | null;
  amountMicros: bigint;
  timeoutMs: number;
  fundedAt: string | null;
  completedAt: string | null;
  disputedBy: string | null;
  settledAt: string | null;
  outcome: EscrowOutcome | null;
  /** What reached the worker (payout.counterpartyMicros), exact. */
  earnedMicros: bigint;
}

export interface JobFacts {
  jobId: string;
  posterId: string;
  postedAt: string;
  /** Workers of the funded award (several in a race). */
  awardedWorkers: string[];
}

export interface Rating {
  escrowId: string;
  raterId: string;
  rateeId: string;
  score: number;
  comment: string | null;
  ratedAt: string;
}

/** The subset of an event envelope the fold reads. */
export interface FactEvent {
  type: string;
  occurredAt: string;
  data: Record<string, unknown>;
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const micros = (value: unknown): bigint =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' ? BigInt(value) : 0n;

export function emptyEscrowFacts(escrowId: string): EscrowFacts {
  return {
    escrowId,
    jobId: null,
    creatorId: null,
    workerId: null,
    amountMicros: 0n,
    timeoutMs: 0,
    fundedAt: null,
    completedAt: null,
    disputedBy: null,
    settledAt: null,
    outcome: null,
    earnedMicros: 0n,
  };
}

function settle(facts: EscrowFacts, event: FactEvent, outcome: EscrowOutcome): EscrowFacts {
  // A settlement is final: a late or repeated one changes nothing.
  if (facts.outcome !== null) return facts;
  const payout = event.data.payout as Record<string, unknown> | null | undefined;
  return {
    ...facts,
    outcome,
    settledAt: event.occurredAt,
    earnedMicros: payout ? micros(payout.counterpartyMicros) : 0n,
  };
}

const RESOLVED: Record<string, EscrowOutcome> = {
  release: 'resolved_release',
  refund: 'resolved_refund',
  split: 'resolved_split',
};

/**
 * The escrow's facts after one of its events (`undefined`: the event says nothing reputation
 * needs). Events of one escrow may arrive redelivered or re-published: every step is a no-op
 * when its fact is already there.
 */
export function applyEscrowFact(facts: EscrowFacts, event: FactEvent): EscrowFacts | undefined {
  const data = event.data;
  switch (event.type) {
    case 'opened':
      return {
        ...facts,
        jobId: str(data.jobId),
        creatorId: str(data.creatorId),
        workerId: str(data.counterpartyId),
        amountMicros: micros(data.amountMicros),
        timeoutMs: typeof data.timeoutMs === 'number' ? data.timeoutMs : 0,
      };
    case 'funded':
      return facts.fundedAt ? facts : { ...facts, fundedAt: event.occurredAt };
    case 'completed':
      return facts.completedAt ? facts : { ...facts, completedAt: event.occurredAt };
    case 'disputed':
      return facts.disputedBy ? facts : { ...facts, disputedBy: str(data.by) };
    case 'released':
      return settle(facts, event, data.trigger === 'timeout' ? 'auto_released' : 'released');
    case 'refunded':
      return settle(facts, event, 'refunded');
    case 'declined':
      return settle(facts, event, 'declined');
    // Both parties agreeing to call it off (docs/adr/0016) is, like the market's cancel, no verdict.
    case 'cancelled':
    case 'mutually_cancelled':
      return settle(facts, event, 'cancelled');
    // The evaluator judged the work and gave the money back: a refund, as by the deadline.
    case 'evaluator_refunded':
      return settle(facts, event, 'refunded');
    case 'resolved':
      return settle(facts, event, RESOLVED[String(data.outcome)] ?? 'resolved_split');
    default:
      return undefined;
  }
}

/** A job's facts after one market event (`undefined`: nothing reputation needs). */
export function applyJobFact(facts: JobFacts | undefined, event: FactEvent): JobFacts | undefined {
  const data = event.data;
  if (event.type === 'job_posted') {
    return (
      facts ?? {
        jobId: String(data.jobId),
        posterId: String(data.posterId),
        postedAt: str(data.postedAt) ?? event.occurredAt,
        awardedWorkers: [],
      }
    );
  }
  if (event.type === 'job_awarded' && facts) {
    const awards = Array.isArray(data.awards) ? (data.awards as Array<Record<string, unknown>>) : [];
    return { ...facts, awardedWorkers: awards.map((award) => String(award.workerId)) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Ratings

export type RatingRefusal = 'rating_not_allowed' | 'already_rated' | 'not_a_party';

export const RATABLE_OUTCOMES: ReadonlySet<EscrowOutcome> = new Set<EscrowOutcome>([
  'released',
  'auto_released',
  'resolved_release',
  'resolved_refund',
  'resolved_split',
]);

/**
 * Who may rate: a party of an escrow that was released or resolved (so a rating always stands
 * on a settled job), once per (escrow, rater); the ratee is the other party.
 */
export function decideRating(
  facts: EscrowFacts | undefined,
  raterId: string,
  alreadyRated: boolean,
): { rateeId: string } | { refused: RatingRefusal } {
  if (!facts || facts.creatorId === null || facts.workerId === null) return { refused: 'not_a_party' };
  if (raterId !== facts.creatorId && raterId !== facts.workerId) return { refused: 'not_a_party' };
  if (facts.outcome === null || !RATABLE_OUTCOMES.has(facts.outcome))
    return { refused: 'rating_not_allowed' };
  if (alreadyRated) return { refused: 'already_rated' };
  return { rateeId: raterId === facts.creatorId ? facts.workerId : facts.creatorId };
}

// ---------------------------------------------------------------------------------------------
// Score

export type Role = 'worker' | 'poster';

/** One piece of evidence: a settled escrow, seen from the agent's side. */
export interface Evidence {
  counterpartyId: string;
  amountMicros: bigint;
  settledAtMs: number;
  /** How well the agent did on it, 0..1. */
  quality: number;
}

export function decayOf(ageMs: number, halfLifeDays = REPUTATION_HALF_LIFE_DAYS): number {
  return Math.pow(0.5, Math.max(0, ageMs) / (halfLifeDays * DAY_MS));
}

export function moneyWeightOf(amountMicros: bigint): number {
  if (amountMicros <= 0n) return 0;
  return Number(amountMicros) / Number(amountMicros + MONEY_HALF_WEIGHT_MICROS);
}

/** The score, 0..100, of a set of evidence at `nowMs` (formula at the top of this file). */
export function scoreOf(evidence: readonly Evidence[], nowMs: number): number {
  const byCounterparty = new Map<string, { weight: number; weighted: number }>();
  for (const item of evidence) {
    const weight = decayOf(nowMs - item.settledAtMs) * moneyWeightOf(item.amountMicros);
    const entry = byCounterparty.get(item.counterpartyId) ?? { weight: 0, weighted: 0 };
    entry.weight += weight;
    entry.weighted += weight * Math.min(1, Math.max(0, item.quality));
    byCounterparty.set(item.counterpartyId, entry);
  }
  let numerator = 0;
  let evidenceWeight = 0;
  for (const { weight, weighted } of byCounterparty.values()) {
    if (weight <= 0) continue;
    const capped = Math.min(COUNTERPARTY_CAP, weight);
    numerator += capped * (weighted / weight);
    evidenceWeight += capped;
  }
  return (100 * numerator) / (evidenceWeight + PRIOR_WEIGHT);
}

/** The most one more counterparty can add to a score whose evidence weighs `evidenceWeight`. */
export function maxGainOfOneCounterparty(evidenceWeight: number): number {
  return (100 * COUNTERPARTY_CAP) / (evidenceWeight + PRIOR_WEIGHT + COUNTERPARTY_CAP);
}

/** Quality of a settled escrow for its worker: delivered and paid is 1, never delivered is 0. */
const WORKER_QUALITY: Partial<Record<EscrowOutcome, number>> = {
  released: 1,
  auto_released: 1,
  resolved_release: 0.75,
  resolved_split: 0.5,
  declined: 0.25,
  resolved_refund: 0,
  refunded: 0,
};

/** Quality for its poster: paid promptly is 1; silence (auto-release) or a refund after delivery cost. */
function posterQuality(facts: EscrowFacts): number | undefined {
  switch (facts.outcome) {
    case 'released':
      return 1;
    case 'auto_released':
      return 0.5;
    case 'resolved_release':
      return facts.disputedBy === facts.creatorId ? 0.25 : 0.75;
    case 'resolved_split':
      return 0.5;
    case 'resolved_refund':
      return facts.completedAt ? 0.25 : 1;
    case 'refunded':
    case 'declined':
      return 1;
    default:
      return undefined;
  }
}

/** Evidence of an agent in a role; a rating of the agent on that escrow counts half its quality. */
export function evidenceOf(
  agentId: string,
  role: Role,
  escrows: readonly EscrowFacts[],
  ratings: readonly Rating[],
): Evidence[] {
  const ratingOf = new Map(ratings.filter((r) => r.rateeId === agentId).map((r) => [r.escrowId, r.score]));
  const evidence: Evidence[] = [];
  for (const facts of escrows) {
    const self = role === 'worker' ? facts.workerId : facts.creatorId;
    const other = role === 'worker' ? facts.creatorId : facts.workerId;
    if (self !== agentId || other === null || other === agentId || facts.settledAt === null) continue;
    const base = role === 'worker' ? WORKER_QUALITY[facts.outcome as EscrowOutcome] : posterQuality(facts);
    if (base === undefined) continue;
    const rating = ratingOf.get(facts.escrowId);
    const quality = rating === undefined ? base : (base + (rating - 1) / 4) / 2;
    evidence.push({
      counterpartyId: other,
      amountMicros: facts.amountMicros,
      settledAtMs: Date.parse(facts.settledAt),
      quality,
    });
  }
  return evidence;
}

// ---------------------------------------------------------------------------------------------
// Profile

export interface WorkerFigures {
  jobsWon: number;
  completed: number;
  released: number;
  autoReleased: number;
  refundedUndelivered: number;
  declined: number;
  disputed: number;
  disputeOutcomes: { release: number; refund: number; split: number };
  onTimeRate: number | null;
  medianFundedToCompletedMs: number | null;
  p90FundedToCompletedMs: number | null;
  earnedMicros: bigint;
  uniquePayingCounterparties: number;
  score: number;
}

export interface PosterFigures {
  jobsPosted: number;
  jobsAwarded: number;
  released: number;
  disputesOpened: number;
  medianCompletedToReleaseMs: number | null;
  refundsAfterDelivery: number;
  score: number;
}

export interface ReputationProfile {
  agentId: string;
  worker: WorkerFigures;
  poster: PosterFigures;
}

/** The nearest-rank percentile of sorted values (null when there are none). */
export function percentile(sorted: readonly number[], fraction: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(fraction * sorted.length));
  return sorted[rank - 1] ?? null;
}

const msBetween = (from: string, to: string) => Date.parse(to) - Date.parse(from);
const ascending = (a: number, b: number) => a - b;

export function workerFiguresOf(
  agentId: string,
  escrows: readonly EscrowFacts[],
  jobs: readonly JobFacts[],
  ratings: readonly Rating[],
  nowMs: number,
): WorkerFigures {
  const mine = escrows.filter((e) => e.workerId === agentId);
  const count = (outcome: EscrowOutcome) => mine.filter((e) => e.outcome === outcome).length;
  const completed = mine.filter((e) => e.completedAt !== null && e.fundedAt !== null);
  const onTime = completed.filter(
    (e) => msBetween(e.fundedAt as string, e.completedAt as string) <= e.timeoutMs,
  ).length;
  const durations = completed
    .map((e) => msBetween(e.fundedAt as string, e.completedAt as string))
    .sort(ascending);
  const paying = new Set(mine.filter((e) => e.earnedMicros > 0n).map((e) => e.creatorId));
  return {
    jobsWon: jobs.reduce((sum, job) => sum + job.awardedWorkers.filter((w) => w === agentId).length, 0),
    completed: mine.filter((e) => e.completedAt !== null).length,
    released: count('released'),
    autoReleased: count('auto_released'),
    refundedUndelivered: mine.filter((e) => e.outcome === 'refunded' && e.completedAt === null).length,
    declined: count('declined'),
    disputed: mine.filter((e) => e.disputedBy !== null).length,
    disputeOutcomes: {
      release: count('resolved_release'),
      refund: count('resolved_refund'),
      split: count('resolved_split'),
    },
    onTimeRate: completed.length === 0 ? null : onTime / completed.length,
    medianFundedToCompletedMs: percentile(durations, 0.5),
    p90FundedToCompletedMs: percentile(durations, 0.9),
    earnedMicros: mine.reduce((sum, e) => sum + e.earnedMicros, 0n),
    uniquePayingCounterparties: paying.size,
    score: scoreOf(evidenceOf(agentId, 'worker', escrows, ratings), nowMs),
  };
}

export function posterFiguresOf(
  agentId: string,
  escrows: readonly EscrowFacts[],
  jobs: readonly JobFacts[],
  ratings: readonly Rating[],
  nowMs: number,
): PosterFigures {
  const mine = escrows.filter((e) => e.creatorId === agentId);
  const posted = jobs.filter((job) => job.posterId === agentId);
  const paid = mine.filter((e) => e.outcome === 'released' || e.outcome === 'auto_released');
  const delays = paid
    .filter((e) => e.completedAt !== null && e.settledAt !== null)
    .map((e) => msBetween(e.completedAt as string, e.settledAt as string))
    .sort(ascending);
  return {
    jobsPosted: posted.length,
    jobsAwarded: posted.filter((job) => job.awardedWorkers.length > 0).length,
    released: paid.length,
    disputesOpened: mine.filter((e) => e.disputedBy === agentId).length,
    medianCompletedToReleaseMs: percentile(delays, 0.5),
    refundsAfterDelivery: mine.filter(
      (e) => e.completedAt !== null && (e.outcome === 'resolved_refund' || e.outcome === 'refunded'),
    ).length,
    score: scoreOf(evidenceOf(agentId, 'poster', escrows, ratings), nowMs),
  };
}

/** The whole profile of an agent from the rows that concern it. */
export function profileOf(
  agentId: string,
  escrows: readonly EscrowFacts[],
  jobs: readonly JobFacts[],
  ratings: readonly Rating[],
  nowMs: number,
): ReputationProfile {
  return {
    agentId,
    worker: workerFiguresOf(agentId, escrows, jobs, ratings, nowMs),
    poster: posterFiguresOf(agentId, escrows, jobs, ratings, nowMs),
  };
}
