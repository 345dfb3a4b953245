import { chartDollars, microsFrom } from './money.js';

/** One bucket of `GET /escrow/stats/history`, as the page keeps it: money as exact strings. */
export interface HistoryBucket {
  start: string;
  released_count: number;
  volume_micros: string;
  commission_micros: string;
}

/**
 * The chart's buckets after an answer: a bucket already known is replaced (the current hour
 * grows while the page is open), a new one is appended, oldest first, at most `max` kept. The
 * first answer is the history; every later one is a live sample of the current hour.
 */
export function mergeBuckets(
  known: readonly HistoryBucket[],
  incoming: readonly HistoryBucket[],
  max: number,
): HistoryBucket[] {
  const byStart = new Map(known.map((bucket) => [bucket.start, bucket]));
  for (const bucket of incoming) byStart.set(bucket.start, bucket);
  return [...byStart.values()].sort((a, b) => Date.parse(a.start) - Date.parse(b.start)).slice(-max);
}

/** What uPlot draws: Unix seconds and whole-dollar floats, for the axes only. */
export function chartSeries(buckets: readonly HistoryBucket[]): {
  times: number[];
  volume: number[];
  commission: number[];
} {
  return {
    times: buckets.map((bucket) => Date.parse(bucket.start) / 1000),
    volume: buckets.map((bucket) => chartDollars(microsFrom(bucket.volume_micros))),
    commission: buckets.map((bucket) => chartDollars(microsFrom(bucket.commission_micros))),
  };
}
