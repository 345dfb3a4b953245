import fc from 'fast-check';
import {
  applyEscrowFact,
  applyJobFact,
  COUNTERPARTY_CAP,
  decideRating,
  emptyEscrowFacts,
  maxGainOfOneCounterparty,
  moneyWeightOf,
  percentile,
  profileOf,
  scoreOf,
  type Evidence,
  type EscrowFacts,
  type FactEvent,
  type JobFacts,
  type Rating,
} from './reputation.js';

const poster = 'ag_00000000000a';
const worker = 'ag_00000000000b';
const other = 'ag_00000000000c';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const MIN = 60_000;
const at = (minutes: number) => new Date(T0 + minutes * MIN).toISOString();
const usd = (amount: number) => BigInt(Math.round(amount * 1_000_000));

interface Step {
  type: string;
  minute: number;
  data?: Record<string, unknown>;
}

/** Given these escrow events (in order, some repeated), the escrow's facts. */
function escrowOf(escrowId: string, creator: string, amountMicros: bigint, steps: Step[]): EscrowFacts {
  const opened: Step = {
    type: 'opened',
    minute: 0,
    data: {
      creatorId: creator,
      counterpartyId: worker,
      amountMicros: String(amountMicros),
      timeoutMs: 60 * MIN,
    },
  };
  return [opened, ...steps].reduce<EscrowFacts>((facts, step) => {
    const event: FactEvent = {
      type: step.type,
      occurredAt: at(step.minute),
      data: { escrowId, ...step.data },
    };
    return applyEscrowFact(facts, event) ?? facts;
  }, emptyEscrowFacts(escrowId));
}

const paid = (amount: bigint) => ({ payout: { counterpartyMicros: String(amount - amount / 100n) } });

describe('reputation facts, given scripted escrow histories', () => {
  const released = escrowOf('esc_1', poster, usd(5), [
    { type: 'funded', minute: 1 },
    { type: 'completed', minute: 11 },
    { type: 'completed', minute: 30 },
    { type: 'released', minute: 15, data: { trigger: 'creator', ...paid(usd(5)) } },
    { type: 'released', minute: 16, data: { trigger: 'creator', ...paid(usd(5)) } },
  ]);
  const late = escrowOf('esc_2', poster, usd(2), [
    { type: 'funded', minute: 0 },
    { type: 'completed', minute: 90 },
    { type: 'released', minute: 150, data: { trigger: 'timeout', ...paid(usd(2)) } },
  ]);
  const neverDelivered = escrowOf('esc_3', other, usd(1), [
    { type: 'funded', minute: 0 },
    { type: 'refunded', minute: 60, data: { trigger: 'timeout' } },
  ]);
  const declined = escrowOf('esc_4', other, usd(1), [
    { type: 'funded', minute: 0 },
    { type: 'declined', minute: 2, data: { by: worker } },
  ]);
  const disputed = escrowOf('esc_5', other, usd(3), [
    { type: 'funded', minute: 0 },
    { type: 'completed', minute: 20 },
    { type: 'disputed', minute: 25, data: { by: other } },
    { type: 'resolved', minute: 40, data: { outcome: 'refund', payout: null } },
  ]);
  const escrows = [released, late, neverDelivered, declined, disputed];
  const job: JobFacts = [
    { type: 'job_posted', data: { jobId: 'job_1', posterId: poster, postedAt: at(0) } },
    { type: 'job_awarded', data: { jobId: 'job_1', awards: [{ workerId: worker }] } },
  ].reduce<JobFacts | undefined>(
    (facts, event) => applyJobFact(facts, { ...event, occurredAt: at(0) }) ?? facts,
    undefined,
  ) as JobFacts;
  const profile = profileOf(worker, escrows, [job], [], T0);

  it('then a repeated completion or release changes nothing (the first fact stands)', () => {
    expect(released.completedAt).toBe(at(11));
    expect(released.settledAt).toBe(at(15));
    expect(released.outcome).toBe('released');
  });

  it('then the worker figures count each path once', () => {
    expect(profile.worker).toMatchObject({
      jobsWon: 1,
      completed: 3,
      released: 1,
      autoReleased: 1,
      refundedUndelivered: 1,
      declined: 1,
      disputed: 1,
      disputeOutcomes: { release: 0, refund: 1, split: 0 },
    });
  });

  it('then on-time counts completions within the deadline, and the durations are exact', () => {
    // 10 min, 90 min (late: timeout 60 min), 20 min
    expect(profile.worker.onTimeRate).toBeCloseTo(2 / 3);
    expect(profile.worker.medianFundedToCompletedMs).toBe(20 * MIN);
    expect(profile.worker.p90FundedToCompletedMs).toBe(90 * MIN);
  });

  it('then earnings are exact micro-dollars and count paying counterparties once', () => {
    expect(profile.worker.earnedMicros).toBe(usd(5) - usd(5) / 100n + usd(2) - usd(2) / 100n);
    expect(profile.worker.uniquePayingCounterparties).toBe(1);
  });

  it('then the poster figures say whether it pays promptly and refunds after delivery', () => {
    const posterProfile = profileOf(poster, escrows, [job], [], T0).poster;
    expect(posterProfile).toMatchObject({ jobsPosted: 1, jobsAwarded: 1, released: 2, disputesOpened: 0 });
    expect(posterProfile.medianCompletedToReleaseMs).toBe(4 * MIN);
    const otherProfile = profileOf(other, escrows, [job], [], T0).poster;
    expect(otherProfile).toMatchObject({ disputesOpened: 1, refundsAfterDelivery: 1, released: 0 });
    expect(otherProfile.medianCompletedToReleaseMs).toBeNull();
  });

  it('then ratings are allowed only to a party of a released or resolved escrow, once', () => {
    expect(decideRating(released, poster, false)).toEqual({ rateeId: worker });
    expect(decideRating(released, worker, false)).toEqual({ rateeId: poster });
    expect(decideRating(released, worker, true)).toEqual({ refused: 'already_rated' });
    expect(decideRating(released, other, false)).toEqual({ refused: 'not_a_party' });
    expect(decideRating(disputed, other, false)).toEqual({ rateeId: worker });
    expect(decideRating(neverDelivered, other, false)).toEqual({ refused: 'rating_not_allowed' });
    expect(decideRating(declined, other, false)).toEqual({ refused: 'rating_not_allowed' });
    const funded = escrowOf('esc_6', poster, usd(1), [{ type: 'funded', minute: 0 }]);
    expect(decideRating(funded, poster, false)).toEqual({ refused: 'rating_not_allowed' });
    expect(decideRating(undefined, poster, false)).toEqual({ refused: 'not_a_party' });
  });

  it('then a one-star rating lowers the score and five stars on a paid job keep it', () => {
    const rating = (score: number): Rating => ({
      escrowId: 'esc_1',
      raterId: poster,
      rateeId: worker,
      score,
      comment: null,
      ratedAt: at(20),
    });
    const plain = profile.worker.score;
    expect(profileOf(worker, escrows, [job], [rating(1)], T0).worker.score).toBeLessThan(plain);
    expect(profileOf(worker, [released], [job], [rating(5)], T0).worker.score).toBe(
      profileOf(worker, [released], [job], [], T0).worker.score,
    );
  });
});

describe('the score', () => {
  const evidence = (counterpartyId: string, amountMicros: bigint, quality = 1, ageDays = 0): Evidence => ({
    counterpartyId,
    amountMicros,
    quality,
    settledAtMs: T0 - ageDays * 86_400_000,
  });

  it('is 0 without evidence and grows with unique counterparties, never past 100', () => {
    expect(scoreOf([], T0)).toBe(0);
    const one = scoreOf([evidence('ag_1', usd(100))], T0);
    const five = scoreOf(
      ['ag_1', 'ag_2', 'ag_3', 'ag_4', 'ag_5'].map((id) => evidence(id, usd(100))),
      T0,
    );
    expect(one).toBeGreaterThan(0);
    expect(five).toBeGreaterThan(one);
    expect(five).toBeLessThan(100);
  });

  it('ten escrows with one counterparty weigh no more than its cap', () => {
    const ten = Array.from({ length: 10 }, () => evidence('ag_1', usd(100)));
    expect(scoreOf(ten, T0)).toBeCloseTo((100 * COUNTERPARTY_CAP) / (COUNTERPARTY_CAP + 3));
    expect(scoreOf(ten, T0)).toBeLessThan(
      scoreOf([evidence('ag_1', usd(1)), evidence('ag_2', usd(1))], T0) * 2,
    );
  });

  it('halves the weight of work a half-life old (decay at read time)', () => {
    const recent = scoreOf([evidence('ag_1', usd(1))], T0);
    const old = scoreOf([evidence('ag_1', usd(1), 1, 90)], T0);
    // weight 0.5 → 100·0.5/3.5; weight 0.25 → 100·0.25/3.25
    expect(recent).toBeCloseTo(100 * (0.5 / 3.5));
    expect(old).toBeCloseTo(100 * (0.25 / 3.25));
    expect(moneyWeightOf(usd(1))).toBe(0.5);
    expect(moneyWeightOf(0n)).toBe(0);
  });

  it('percentile is nearest-rank', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
  });

  const anEvidence = fc.record({
    counterpartyId: fc.constantFrom('ag_1', 'ag_2', 'ag_3', 'ag_4', 'ag_5'),
    amountMicros: fc.bigInt({ min: 1n, max: 1_000_000_000_000n }),
    quality: fc.double({ min: 0, max: 1, noNaN: true }),
    settledAtMs: fc.integer({ min: T0 - 400 * 86_400_000, max: T0 }),
  });

  it('property: a self-dealing counterparty, however many escrows, adds at most its cap', () => {
    fc.assert(
      fc.property(
        fc.array(anEvidence, { maxLength: 20 }),
        fc.array(fc.bigInt({ min: 1n, max: 1_000_000_000_000n }), { minLength: 1, maxLength: 50 }),
        (honest, sybilAmounts) => {
          const before = scoreOf(honest, T0);
          const sybil = sybilAmounts.map((amountMicros) => ({
            counterpartyId: 'ag_sybil',
            amountMicros,
            quality: 1,
            settledAtMs: T0,
          }));
          const after = scoreOf([...honest, ...sybil], T0);
          expect(after - before).toBeLessThanOrEqual(maxGainOfOneCounterparty(0) + 1e-9);
          expect(after).toBeLessThanOrEqual(100);
          expect(after).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  it('property: more escrows with the same counterparty never beat the same weight spread over new ones', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 30 }), (count) => {
        const same = Array.from({ length: count }, () => evidence('ag_1', usd(10)));
        const spread = Array.from({ length: count }, (_, index) => evidence(`ag_${index}`, usd(10)));
        expect(scoreOf(same, T0)).toBeLessThan(scoreOf(spread, T0));
      }),
    );
  });
});
