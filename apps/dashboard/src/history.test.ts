import { chartSeries, mergeBuckets, type HistoryBucket } from './history.js';

const bucket = (hour: number, volumeMicros: string, commissionMicros = '0'): HistoryBucket => ({
  start: new Date(Date.UTC(2026, 0, 1, hour)).toISOString(),
  released_count: volumeMicros === '0' ? 0 : 1,
  volume_micros: volumeMicros,
  commission_micros: commissionMicros,
});

describe('mergeBuckets: the history, then live samples of the current hour', () => {
  it('given a history, when the current hour is sampled again, then that bucket is replaced, not added', () => {
    const history = [bucket(8, '0'), bucket(9, '1000000', '10000')];
    const merged = mergeBuckets(history, [bucket(9, '3234570', '32345')], 24);
    expect(merged).toEqual([bucket(8, '0'), bucket(9, '3234570', '32345')]);
  });

  it('given a history, when a sample of a new hour arrives, then it is appended and the oldest dropped past the maximum', () => {
    const merged = mergeBuckets([bucket(8, '0'), bucket(9, '5')], [bucket(10, '7')], 2);
    expect(merged.map((item) => item.start)).toEqual([bucket(9, '5').start, bucket(10, '7').start]);
  });

  it('given a live sample that arrived before the history, then the result is still oldest first', () => {
    const merged = mergeBuckets([bucket(10, '7')], [bucket(8, '0'), bucket(9, '5'), bucket(10, '7')], 24);
    expect(merged.map((item) => item.volume_micros)).toEqual(['0', '5', '7']);
  });
});

describe('chartSeries', () => {
  it('draws Unix seconds and dollars; the exact strings stay in the buckets', () => {
    const buckets = [bucket(9, '3234570', '32345')];
    expect(chartSeries(buckets)).toEqual({
      times: [Date.UTC(2026, 0, 1, 9) / 1000],
      volume: [3.23457],
      commission: [0.032345],
    });
    expect(buckets[0]!.volume_micros).toBe('3234570');
  });
});
