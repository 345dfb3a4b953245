/**
 * Where `ops verify` leaves its last result so the gateway, which owns no service database, can
 * show the cross-checks in the operator view (issue #21). One small stream, created by ops on
 * first use, keeping only the last message per subject: the dashboard shows the last run, not a
 * history, and a run's summary is bounded (at most VERIFY_RESULT_LINES_MAX violation lines).
 */
export const opsResultsStream = { name: 'OPS_RESULTS', subjects: 'ops.results.>' } as const;
/** The subject (and so the only retained message) of the last `ops verify` run. */
export const verifyLastSubject = 'ops.results.verify.last';
/** Violation lines kept in a recorded result; the counts per check are always complete. */
export const VERIFY_RESULT_LINES_MAX = 20;
/** Each kept line is cut to this many characters. */
export const VERIFY_RESULT_LINE_CHARS_MAX = 300;
/** The stream refuses anything larger (a summary is a few KiB at most). */
export const VERIFY_RESULT_BYTES_MAX = 64 * 1024;

/** What `ops verify` records and `GET /admin/verify/last` answers. No secrets: ids, counts and checks only. */
export interface VerifyResultRecord {
  finished_at: string;
  /** The selection given to `ops verify` (casino, faucet, escrow, market or all). */
  selection: string;
  /** Services whose own verify ran. */
  services_verified: string[];
  ok: boolean;
  /** Exit code of the run: 0 ok, 1 violations, 2 could not run. */
  exit_code: number;
  violations: number;
  /** Every check that ran or was skipped, with its violation count. */
  checks: Array<{ name: string; status: 'ran' | 'skipped'; violations: number }>;
  /** At most VERIFY_RESULT_LINES_MAX violation lines, each cut to VERIFY_RESULT_LINE_CHARS_MAX. */
  lines: string[];
  lines_truncated: boolean;
}
