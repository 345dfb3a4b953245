import { MoneyRangeError } from './errors.js';

/** 100% in basis points. */
export const BPS_PER_WHOLE = 10_000n;
/** The creator's referrer gets 15% of the commission on release (API.md, Escrow). */
export const REFERRAL_SHARE_BPS = 1_500n;
/** Bound on the number of parts in one split; real splits have 2 or 3. */
export const MAX_SPLIT_PARTS = 100;

export function addMicros(a: bigint, b: bigint): bigint {
  return a + b;
}

/**
 * a - b. Throws `negative_result` when the result would be below zero unless the caller says
 * `allowNegative: true`: the safe default, because only system accounts (`world`) may go
 * negative and a caller handling one of those should say so where it does it.
 */
export function subMicros(a: bigint, b: bigint, options: { allowNegative?: boolean } = {}): bigint {
  const result = a - b;
  if (result < 0n && options.allowNegative !== true) {
    throw new MoneyRangeError('negative_result', `${a} - ${b} micros would be negative`);
  }
  return result;
}

/** A basis-point rate as bigint: an integer in [0, 10000]. */
function toBps(value: bigint | number, label: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new MoneyRangeError(
      'invalid_basis_points',
      `${label} must be an integer number of basis points, got ${value}`,
    );
  }
  const bps = BigInt(value);
  if (bps < 0n || bps > BPS_PER_WHOLE) {
    throw new MoneyRangeError(
      'invalid_basis_points',
      `${label} must be between 0 and 10000 basis points, got ${bps}`,
    );
  }
  return bps;
}

function assertNonNegative(micros: bigint, label: string): void {
  if (micros < 0n)
    throw new MoneyRangeError('negative_result', `${label} must not be negative, got ${micros}`);
}

/**
 * floor(amount * bps / 10000). Rounds down so that a fee never exceeds its rate: 1% of
 * $5 is 50_000 micros, 1% of $0.10 is 1_000, 1% of 99 micros is 0.
 */
export function basisPointsOf(amountMicros: bigint, bps: bigint | number): bigint {
  assertNonNegative(amountMicros, 'amountMicros');
  return (amountMicros * toBps(bps, 'bps')) / BPS_PER_WHOLE;
}

/**
 * Splits a total into parts by basis points with exact conservation: the parts always sum to
 * the total, and each part is within 1 micro of its exact share. Each part starts at the floor
 * of its share; the micros left over (fewer than the number of parts) go one each to the parts
 * with the largest dropped fraction, ties to the earliest index (deterministic, so replaying a
 * decision gives the same split).
 */
export function splitByBasisPoints(totalMicros: bigint, sharesBps: readonly (bigint | number)[]): bigint[] {
  assertNonNegative(totalMicros, 'totalMicros');
  if (sharesBps.length === 0 || sharesBps.length > MAX_SPLIT_PARTS) {
    throw new MoneyRangeError(
      'invalid_split',
      `a split needs 1 to ${MAX_SPLIT_PARTS} shares, got ${sharesBps.length}`,
    );
  }
  const bps = sharesBps.map((share, index) => toBps(share, `share ${index}`));
  const bpsSum = bps.reduce((sum, share) => sum + share, 0n);
  if (bpsSum !== BPS_PER_WHOLE) {
    throw new MoneyRangeError('invalid_split', `shares must sum to 10000 basis points, got ${bpsSum}`);
  }
  const parts = bps.map((share) => (totalMicros * share) / BPS_PER_WHOLE);
  const droppedFractions = bps.map((share) => (totalMicros * share) % BPS_PER_WHOLE);
  const leftoverMicros = totalMicros - parts.reduce((sum, part) => sum + part, 0n);
  const order = parts.map((_, index) => index);
  order.sort((a, b) => compareDesc(droppedFractions[a], droppedFractions[b]) || a - b);
  for (let rank = 0; rank < Number(leftoverMicros); rank += 1) parts[order[rank]] += 1n;
  return parts;
}

function compareDesc(a: bigint, b: bigint): number {
  return a === b ? 0 : a > b ? -1 : 1;
}

export interface ReleaseSplit {
  /** amount - commission: what the worker receives. */
  counterpartyMicros: bigint;
  /** commission - referrer share: the house revenue account. */
  houseMicros: bigint;
  /** REFERRAL_SHARE_BPS of the commission when the creator has a referrer, else 0. */
  referrerMicros: bigint;
  /** basisPointsOf(amount, commissionBps) = houseMicros + referrerMicros. */
  commissionMicros: bigint;
}

/**
 * How an escrow's amount is divided on release. The three destinations always sum to the
 * amount exactly (asserted): the commission rounds down, and the house gets the commission's
 * remainder after the (rounded-down) referral share.
 */
export function releaseSplit(
  amountMicros: bigint,
  commissionBps: bigint | number,
  hasReferrer: boolean,
): ReleaseSplit {
  const commissionMicros = basisPointsOf(amountMicros, commissionBps);
  const referrerMicros = hasReferrer ? basisPointsOf(commissionMicros, REFERRAL_SHARE_BPS) : 0n;
  const split: ReleaseSplit = {
    counterpartyMicros: amountMicros - commissionMicros,
    houseMicros: commissionMicros - referrerMicros,
    referrerMicros,
    commissionMicros,
  };
  if (split.counterpartyMicros + split.houseMicros + split.referrerMicros !== amountMicros) {
    throw new MoneyRangeError('invalid_split', `release split of ${amountMicros} micros does not add up`);
  }
  return split;
}
