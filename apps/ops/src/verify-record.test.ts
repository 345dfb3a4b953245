import { VERIFY_RESULT_LINE_CHARS_MAX, VERIFY_RESULT_LINES_MAX } from '@pf/contracts';
import { verifyResultRecord } from './verify-record.js';

describe('the recorded ops verify result (what the operator view shows)', () => {
  const finishedAt = new Date('2026-01-02T03:04:05.000Z');

  it('given a clean run, records ok, the time, the scope and every check at zero', () => {
    const record = verifyResultRecord(
      {
        selection: 'all',
        servicesVerified: ['casino', 'escrow'],
        exitCode: 0,
        checks: [
          { name: 'casino', status: 'ran', violations: 0 },
          { name: 'holds vs escrows', status: 'ran', violations: 0 },
          { name: 'market awards vs escrows', status: 'skipped', violations: 0 },
        ],
        lines: [],
      },
      finishedAt,
    );
    expect(record).toEqual({
      finished_at: '2026-01-02T03:04:05.000Z',
      selection: 'all',
      services_verified: ['casino', 'escrow'],
      ok: true,
      exit_code: 0,
      violations: 0,
      checks: [
        { name: 'casino', status: 'ran', violations: 0 },
        { name: 'holds vs escrows', status: 'ran', violations: 0 },
        { name: 'market awards vs escrows', status: 'skipped', violations: 0 },
      ],
      lines: [],
      lines_truncated: false,
    });
  });

  it('given many long violation lines, keeps the full counts but only the first lines, each cut short', () => {
    const lines = Array.from(
      { length: 50 },
      (_, index) => `VIOLATION cross-service hold_without_escrow ${index} ${'x'.repeat(500)}`,
    );
    const record = verifyResultRecord(
      {
        selection: 'all',
        servicesVerified: ['casino', 'escrow'],
        exitCode: 1,
        checks: [{ name: 'holds vs escrows', status: 'ran', violations: 50 }],
        lines,
      },
      finishedAt,
    );
    expect(record.ok).toBe(false);
    expect(record.violations).toBe(50);
    expect(record.lines).toHaveLength(VERIFY_RESULT_LINES_MAX);
    expect(record.lines_truncated).toBe(true);
    expect(record.lines[0]!.startsWith('VIOLATION cross-service hold_without_escrow 0 ')).toBe(true);
    expect(Math.max(...record.lines.map((line) => line.length))).toBe(VERIFY_RESULT_LINE_CHARS_MAX);
  });

  it('given a run that could not verify a service (exit code 2), records it as not ok even with no violations', () => {
    const record = verifyResultRecord(
      { selection: 'casino', servicesVerified: [], exitCode: 2, checks: [], lines: [] },
      finishedAt,
    );
    expect([record.ok, record.exit_code, record.violations]).toEqual([false, 2, 0]);
  });
});
