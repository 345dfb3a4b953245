import { describeHours } from './escrow.js';

describe('timeout bounds in messages', () => {
  it.each([
    [60_000, '0.016667 (60 s)'],
    [720 * 3_600_000, '720'],
    [3_600_000, '1'],
    [90 * 60_000, '1.5 (5400 s)'],
  ])('%i ms reads %s', (durationMs, text) => {
    expect(describeHours(durationMs)).toBe(text);
  });
});
