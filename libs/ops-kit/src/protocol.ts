/**
 * What a service's ops entry (`node dist/apps/<service>/src/ops.js replay|verify …`) writes on
 * stdout: one JSON object per line, so the `ops` CLI can show progress, print violations and
 * join facts across services without importing any service's code. The last line is a
 * `result` (or an `error`); the exit code says the same (0 ok, 1 violations, 2 error).
 */

export type OpsPhase = 'replay' | 'catch_up' | 'swap' | 'compare' | 'check' | 'facts';

export interface ProgressMessage {
  type: 'progress';
  service: string;
  phase: OpsPhase;
  done: number;
  total: number;
}

/** One broken invariant, with the ids an operator needs to look it up. */
export interface Violation {
  /** Which check found it, e.g. `books_unbalanced`, `projection_differs`, `hold_without_escrow`. */
  check: string;
  ids: Record<string, string>;
  detail: string;
  expected?: string;
  actual?: string;
}

export interface ViolationMessage extends Violation {
  type: 'violation';
  service: string;
}

/**
 * Facts a service states from its own log for the cross-service checks the `ops` CLI runs
 * (no service reads another's tables). `at` is when the fact last changed (the recorded_at of
 * the newest event behind it): the CLI gives facts younger than its grace period the benefit
 * of the doubt, since a saga in flight is briefly half done on purpose.
 */
export type VerifyFact =
  /** casino: a hold placed and neither posted nor voided. */
  | { kind: 'live_hold'; holdId: string; from: string; amountMicros: string; service: string; at: string }
  /** casino: a transfer out of the faucet treasury (a claim paid). */
  | { kind: 'faucet_transfer'; transferId: string; to: string; amountMicros: string; at: string }
  /** escrow: an escrow whose money must be locked right now (funded, completed or disputed). */
  | {
      kind: 'locked_escrow';
      escrowId: string;
      holdId: string;
      status: string;
      amountMicros: string;
      at: string;
    }
  /**
   * escrow: an escrow whose settlement (post or void of its hold) casino has not confirmed yet:
   * its hold may still be live, or already gone.
   */
  | { kind: 'settling_escrow'; escrowId: string; holdId: string; settlement: string; at: string }
  /** escrow: an escrow opened by the market for a job (any status but rejected: a refused one never existed). */
  | { kind: 'job_escrow'; escrowId: string; jobId: string; status: string; at: string }
  /** market: an escrow an award recorded as funded (`job_awarded`), with its job's current status. */
  | { kind: 'market_award'; jobId: string; escrowId: string; bidId: string; jobStatus: string; at: string }
  /** faucet: a claim and its status, with the casino transfer id the faucet uses for it. */
  | {
      kind: 'faucet_claim';
      claimId: string;
      transferId: string;
      agentId: string;
      amountMicros: string;
      status: 'pending' | 'completed' | 'rejected';
      at: string;
    };

export interface FactMessage {
  type: 'fact';
  service: string;
  fact: VerifyFact;
}

export interface NoteMessage {
  type: 'note';
  service: string;
  message: string;
}

export interface ReplayResult {
  type: 'result';
  command: 'replay';
  service: string;
  ok: true;
  events: number;
  goalPosition: number;
  tables: string[];
  swapped: boolean;
  durationMs: number;
  eventsPerSecond: number;
  maxRssBytes: number;
}

export interface VerifyResult {
  type: 'result';
  command: 'verify';
  service: string;
  ok: boolean;
  violations: number;
  eventsChecked: number;
  durationMs: number;
  maxRssBytes: number;
}

/** The service has no event log in this database (never deployed): nothing to do. */
export interface SkippedResult {
  type: 'result';
  command: 'replay' | 'verify';
  service: string;
  ok: true;
  skipped: string;
  maxRssBytes: number;
}

export interface ErrorMessage {
  type: 'error';
  service: string;
  message: string;
}

export type OpsMessage =
  | ProgressMessage
  | ViolationMessage
  | FactMessage
  | NoteMessage
  | ReplayResult
  | VerifyResult
  | SkippedResult
  | ErrorMessage;

const MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'progress',
  'violation',
  'fact',
  'note',
  'result',
  'error',
]);

export function encodeMessage(message: OpsMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/** A protocol line, or undefined for anything else (stray output is shown, not trusted). */
export function decodeMessage(line: string): OpsMessage | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as { type?: unknown; service?: unknown };
    if (typeof value.type !== 'string' || !MESSAGE_TYPES.has(value.type) || typeof value.service !== 'string')
      return undefined;
    return value as OpsMessage;
  } catch {
    return undefined;
  }
}
